// Bench-only node: stores readings the way the official node-red-node-sqlite is commonly used,
// one INSERT per message in autocommit with the default rollback journal: the anchor.
const Database = require('better-sqlite3');
module.exports = function (RED) {
  function Anchor(config) {
    RED.nodes.createNode(this, config);
    const db = new Database(config.file + '.anchor');
    db.exec(
      'CREATE TABLE IF NOT EXISTS readings (device_id TEXT, ts INTEGER, power_w REAL, voltage_v REAL, current_a REAL, total_wh REAL)',
    );
    const insert = db.prepare('INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)');
    this.on('input', (msg, send, done) => {
      const r = msg.payload;
      insert.run(r.device_id, r.ts, r.power_w, r.voltage_v, r.current_a, r.total_wh);
      done();
    });
    this.on('close', (removed, done) => {
      db.close();
      done();
    });
  }
  RED.nodes.registerType('kasa-bench-anchor', Anchor);
};
