// Bench-only node: feeds pre-built readings (100 plugs interleaved by time, realistic decimals,
// integer Wh counters as newer firmware reports them) into its first output (kasa-sqlite-store)
// or its second (the anchor), and answers the admin request once every row is in the file.
const Database = require('better-sqlite3');
/** Rows the feeder sends per event-loop turn: a busy source, but one that yields. */
const ROWS_PER_TICK = 5000;
module.exports = function (RED) {
  let current = null;
  function Feeder(config) {
    RED.nodes.createNode(this, config);
    current = this;
    this.on('close', () => {
      if (current === this) current = null;
    });
  }
  RED.nodes.registerType('kasa-bench-feeder', Feeder);
  const T0 = Date.parse('2024-05-01T00:00:00Z');
  function reading(i, devices) {
    const d = i % devices,
      step = Math.floor(i / devices);
    const power = Math.round((20 + d * 3.7 + 15 * Math.sin(step / 10 + d)) * 1000) / 1000;
    return {
      device_id: '8006' + String(d).padStart(36, '0'),
      ts: T0 + step * 10000 + d * 37,
      power_w: power,
      voltage_v: Math.round((230 + 2 * Math.sin(step / 7 + d)) * 1000) / 1000,
      current_a: Math.round((power / 230) * 1000) / 1000,
      total_wh: 1000 * d + Math.floor((step * (20 + d * 3.7)) / 360),
      alias: 'plug ' + d,
      model: 'KP115(EU)',
      host: '127.0.0.' + (2 + d),
      port: 9999,
      child_id: null,
      relay_on: true,
    };
  }
  RED.httpAdmin.post('/kasa-bench/run', (req, res) => {
    const { output, rows, perMessage, devices, file } = req.body;
    const node = current;
    if (!node) return res.status(500).send('no feeder deployed');
    const messages = [];
    for (let i = 0; i < rows; i += perMessage) {
      const payload =
        perMessage === 1
          ? reading(i, devices)
          : Array.from({ length: perMessage }, (_, k) => reading(i + k, devices));
      messages.push(
        output === 0 ? [{ topic: 'bench', payload }, null] : [null, { topic: 'bench', payload }],
      );
    }
    const chunk = Math.max(1, Math.floor(ROWS_PER_TICK / perMessage));
    const started = performance.now();
    let next = 0;
    let sendMs = 0;
    const pump = () => {
      const end = Math.min(next + chunk, messages.length);
      for (; next < end; next++) node.send(messages[next]);
      if (next < messages.length) return setImmediate(pump);
      sendMs = performance.now() - started;
      waitForRows();
    };
    let db = null;
    const waitForRows = () => {
      try {
        db = db || new Database(file, { readonly: true, fileMustExist: true });
        const count = db.prepare('SELECT count(*) FROM readings').pluck().get();
        if (count >= rows) {
          const ms = performance.now() - started;
          db.close();
          return res.json({ rows: count, ms, sendMs });
        }
      } catch (error) {
        if (!/does not exist|no such table/.test(String(error))) {
          if (db) db.close();
          return res.status(500).send(String(error));
        }
      }
      setTimeout(waitForRows, 5);
    };
    pump();
  });
};
