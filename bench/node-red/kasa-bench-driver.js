// Bench-only node: drives kasa-poll in a closed loop (trigger a poll of every device, wait until
// the store has accepted each reading, trigger the next) and measures this process's CPU time
// and the latency from trigger to acceptance. Controlled over the admin API.
module.exports = function (RED) {
  const drivers = new Map();

  function KasaBenchDriver(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const expected = Number(config.readingsPerRound);
    let run = null;

    node.start = (rounds) =>
      new Promise((resolve) => {
        run = {
          rounds,
          round: 0,
          pending: 0,
          latencies: [],
          started: 0,
          cpu: null,
          resolve,
          triggeredAt: 0,
        };
        run.cpu = process.cpuUsage();
        run.started = performance.now();
        trigger();
      });

    function trigger() {
      run.pending = expected;
      run.triggeredAt = performance.now();
      node.send({ payload: 'poll' });
    }

    node.on('input', (msg, send, done) => {
      if (run !== null) {
        const accepted = Array.isArray(msg.payload) ? msg.payload.length : 1;
        const now = performance.now();
        for (let index = 0; index < accepted; index += 1) run.latencies.push(now - run.triggeredAt);
        run.pending -= accepted;
        if (run.pending <= 0) {
          run.round += 1;
          if (run.round < run.rounds) {
            setImmediate(trigger);
          } else {
            const cpu = process.cpuUsage(run.cpu);
            const finished = run;
            run = null;
            finished.resolve({
              readings: finished.latencies.length,
              cpu_us: cpu.user + cpu.system,
              elapsed_ms: performance.now() - finished.started,
              latencies: finished.latencies,
            });
          }
        }
      }
      done();
    });
    drivers.set(node.id, node);
    node.on('close', (removed, done) => {
      drivers.delete(node.id);
      done();
    });
  }
  RED.nodes.registerType('kasa-bench-driver', KasaBenchDriver);

  RED.httpAdmin.post('/kasa-bench/:id/run', (req, res) => {
    const driver = drivers.get(req.params.id);
    if (driver === undefined) return res.status(404).json({ error: 'no such driver' });
    driver.start(Number(req.query.rounds ?? 100)).then((result) => res.json(result));
  });
};
