// Bench-only node: sends N reading messages (keys spread over `keys` devices) into one of its
// outputs, counts them back on its input, and answers the admin request with this process's CPU
// time and the elapsed time for the whole batch. Output 0: kasa-cache set, 1: kasa-cache get,
// 2: the anchor (a core change node), 3: kasa-cache set with Redis; each wired back to this node.
/** Messages sent per event-loop turn: a busy source, but one that yields. */
const PER_TICK = 2000;
const OUTPUTS = 4;
module.exports = function (RED) {
  let current = null;
  function Driver(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    current = node;
    node.run = null;
    node.on('input', (msg, send, done) => {
      const run = node.run;
      if (run !== null) {
        run.received += 1;
        if (run.received === run.messages) {
          const cpu = process.cpuUsage(run.cpu);
          node.run = null;
          run.resolve({
            messages: run.messages,
            cpu_us: cpu.user + cpu.system,
            elapsed_ms: performance.now() - run.started,
          });
        }
      }
      done();
    });
    node.on('close', () => {
      if (current === node) current = null;
    });
  }
  RED.nodes.registerType('kasa-bench-cache-driver', Driver);

  RED.httpAdmin.post('/kasa-bench-cache/run', (req, res) => {
    const node = current;
    if (node === null) return res.status(500).send('no driver deployed');
    const { output, messages, keys } = req.body;
    const batch = [];
    for (let i = 0; i < messages; i += 1) {
      const device = 'bench-' + String(i % keys).padStart(4, '0');
      const msg = {
        topic: device,
        payload: {
          device_id: device,
          ts: 1714564800000 + i,
          power_w: 20 + (i % 7),
          relay_on: true,
        },
      };
      const ports = new Array(OUTPUTS).fill(null);
      ports[output] = msg;
      batch.push(ports);
    }
    new Promise((resolve) => {
      node.run = {
        messages,
        received: 0,
        resolve,
        cpu: process.cpuUsage(),
        started: performance.now(),
      };
      let next = 0;
      const pump = () => {
        const end = Math.min(next + PER_TICK, batch.length);
        for (; next < end; next += 1) node.send(batch[next]);
        if (next < batch.length) setImmediate(pump);
      };
      pump();
    }).then((result) => res.json(result));
  });
};
