// Storage benchmark inside a real Node-RED 4.1 child process (test/support/node-red-process.ts):
// a bench-only feeder node sends readings into kasa-sqlite-store, and into an "anchor" node that
// stores the way the official node-red-node-sqlite is commonly used (one INSERT per message,
// autocommit, default rollback journal), and measures rows/s until every row is in the file.
// Run `npm run build` first; `npx tsx bench/store.ts` prints the table. BENCH_NODE_ARGS passes
// arguments to the Node-RED process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { type NodeRedProcess, startNodeRed } from '../test/support/node-red-process';
import { makeTempDir, removeTempDir } from '../test/support/temp-dir';

export interface Throughput {
  /** Median of the runs, rows/s. */
  rowsPerSec: number;
  /** Every run, rows/s. */
  runs: number[];
  rowsPerRun: number;
}

export interface StoreBenchResult {
  /** How Node-RED ran: a child process started through test/support/node-red-process.ts. */
  runtime: string;
  /** (a) one message per reading into kasa-sqlite-store. */
  perMessage: Throughput;
  /** (b) arrays of 1,000 readings per message. */
  perArray: Throughput;
  /** The official sqlite node's pattern: one INSERT per message, autocommit, DELETE journal. */
  anchor: Throughput;
  /** Database file size over raw readings after a checkpoint (100 devices, interleaved), bytes. */
  bytesPerReading: number;
  /** perMessage and perArray over the anchor. */
  ratios: { perMessage: number; perArray: number };
  durationMs: number;
}

const RUNS = 3;
const DEVICES = 100;
const PER_MESSAGE_ROWS = 100_000;
const PER_ARRAY_ROWS = 300_000;
const ANCHOR_ROWS = 2_000;
/** Rows the feeder sends per event-loop turn: a busy source, but one that yields. */
const ROWS_PER_TICK = 5000;

interface RunResult {
  rows: number;
  ms: number;
  sendMs: number;
}

/** Runs the three scenarios (medians of `RUNS` runs each) and the size measurement. */
export async function runStoreBench(): Promise<StoreBenchResult> {
  const started = performance.now();
  const work = makeTempDir('kasa-bench-');
  const nodesDir = join(work, 'nodes');
  writeBenchNodes(nodesDir);
  let red: NodeRedProcess;
  try {
    red = await startNodeRed({
      settings: { nodesDir },
      nodeArgs: process.env.BENCH_NODE_ARGS?.split(' ') ?? [],
    });
  } catch (error) {
    removeTempDir(work);
    throw error;
  }
  let runNo = 0;
  const run = async (
    target: 'store' | 'anchor',
    rows: number,
    perMessage: number,
  ): Promise<RunResult & { file: string }> => {
    const file = join(work, `run-${++runNo}-${target}.db`);
    await red.deploy(benchFlow(file));
    const response = await fetch(`${red.url}/kasa-bench/run`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        output: target === 'store' ? 0 : 1,
        rows,
        perMessage,
        devices: DEVICES,
        file: target === 'store' ? file : `${file}.anchor`,
      }),
    });
    if (!response.ok) throw new Error(`bench run failed: ${await response.text()}\n${red.log()}`);
    return { ...((await response.json()) as RunResult), file };
  };

  try {
    const perMessage: number[] = [];
    const perArray: number[] = [];
    const anchor: number[] = [];
    let sizeFile = '';
    for (let i = 0; i < RUNS; i++) {
      perMessage.push(rate(await run('store', PER_MESSAGE_ROWS, 1)));
      const batched = await run('store', PER_ARRAY_ROWS, 1000);
      perArray.push(rate(batched));
      sizeFile = batched.file;
      anchor.push(rate(await run('anchor', ANCHOR_ROWS, 1)));
    }
    // An empty deploy closes the last database: its WAL is checkpointed into the file.
    await red.deploy([]);
    const errors = red.log().match(/^.*\[error\].*$/gm);
    if (errors !== null) throw new Error(`Node-RED logged errors:\n${errors.join('\n')}`);
    const bytesPerReading = fileBytes(sizeFile) / PER_ARRAY_ROWS;
    const result: StoreBenchResult = {
      runtime: 'Node-RED 4.1 child process (test/support/node-red-process.ts)',
      perMessage: throughput(perMessage, PER_MESSAGE_ROWS),
      perArray: throughput(perArray, PER_ARRAY_ROWS),
      anchor: throughput(anchor, ANCHOR_ROWS),
      bytesPerReading,
      ratios: { perMessage: 0, perArray: 0 },
      durationMs: 0,
    };
    result.ratios = {
      perMessage: result.perMessage.rowsPerSec / result.anchor.rowsPerSec,
      perArray: result.perArray.rowsPerSec / result.anchor.rowsPerSec,
    };
    result.durationMs = performance.now() - started;
    return result;
  } finally {
    await red.stop();
    removeTempDir(work);
  }
}

/** Prints the medians, the anchor ratios and the targets. */
export function printStoreBench(result: StoreBenchResult): void {
  const row = (name: string, t: Throughput, target: string) =>
    `${name.padEnd(34)} ${fmt(t.rowsPerSec).padStart(9)} ${`x${(t.rowsPerSec / result.anchor.rowsPerSec).toFixed(1)}`.padStart(8)}  ${target.padEnd(12)} ${t.runs.map(fmt).join(' / ')}`;
  console.log(`kasa-sqlite-store in ${result.runtime}, median of ${RUNS} runs`);
  console.log(
    `${'scenario'.padEnd(34)} ${'rows/s'.padStart(9)} ${'vs anchor'.padStart(8)}  ${'target'.padEnd(12)} runs`,
  );
  console.log(row(`(a) 1 reading per message`, result.perMessage, '>= 50,000'));
  console.log(row(`(b) arrays of 1,000 readings`, result.perArray, '>= 200,000'));
  console.log(row(`anchor: INSERT per msg, autocommit`, result.anchor, '~1,350'));
  console.log(
    `bytes on disk per raw reading: ${result.bytesPerReading.toFixed(1)} (target <= 64; ${DEVICES} devices, ${fmt(PER_ARRAY_ROWS)} readings, after checkpoint)`,
  );
  console.log(`total bench time: ${(result.durationMs / 1000).toFixed(1)} s`);
}

function rate(run: RunResult): number {
  return (run.rows / run.ms) * 1000;
}

function throughput(runs: number[], rowsPerRun: number): Throughput {
  const sorted = [...runs].sort((a, b) => a - b);
  return { rowsPerSec: sorted[Math.floor(sorted.length / 2)] ?? 0, runs, rowsPerRun };
}

function fmt(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function fileBytes(file: string): number {
  return statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
}

function benchFlow(file: string): object[] {
  return [
    { id: 'bench-tab', type: 'tab', label: 'bench' },
    { id: 'bench-db', type: 'kasa-sqlite-db', name: '', path: file },
    {
      id: 'feeder',
      type: 'kasa-bench-feeder',
      z: 'bench-tab',
      x: 100,
      y: 100,
      wires: [['store'], ['anchor']],
    },
    {
      id: 'store',
      type: 'kasa-sqlite-store',
      z: 'bench-tab',
      x: 300,
      y: 100,
      name: '',
      db: 'bench-db',
      mode: 'store',
      batchSize: 1000,
      flushInterval: 1,
      wires: [],
    },
    { id: 'anchor', type: 'kasa-bench-anchor', z: 'bench-tab', x: 300, y: 200, file, wires: [] },
  ];
}

/**
 * The bench-only nodes, written into a nodesDir of the temp user dir: plain CommonJS, as
 * Node-RED loads them. The feeder pre-builds the messages so the clock measures delivery and
 * storage, not test-data generation; data is 100 plugs interleaved by time with realistic
 * decimals and integer Wh counters (newer firmware).
 */
function writeBenchNodes(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const betterSqlite = JSON.stringify(require.resolve('better-sqlite3'));
  const feeder = `
const Database = require(${betterSqlite});
const ROWS_PER_TICK = ${ROWS_PER_TICK};
module.exports = function (RED) {
  let current = null;
  function Feeder(config) {
    RED.nodes.createNode(this, config);
    current = this;
    this.on('close', () => { if (current === this) current = null; });
  }
  RED.nodes.registerType('kasa-bench-feeder', Feeder);
  const T0 = Date.parse('2024-05-01T00:00:00Z');
  function reading(i, devices) {
    const d = i % devices, step = Math.floor(i / devices);
    const power = Math.round((20 + d * 3.7 + 15 * Math.sin(step / 10 + d)) * 1000) / 1000;
    return {
      device_id: '8006' + String(d).padStart(36, '0'), ts: T0 + step * 10000 + d * 37,
      power_w: power, voltage_v: Math.round((230 + 2 * Math.sin(step / 7 + d)) * 1000) / 1000,
      current_a: Math.round((power / 230) * 1000) / 1000, total_wh: 1000 * d + Math.floor(step * (20 + d * 3.7) / 360),
      alias: 'plug ' + d, model: 'KP115(EU)', host: '127.0.0.' + (2 + d), port: 9999, child_id: null, relay_on: true,
    };
  }
  RED.httpAdmin.post('/kasa-bench/run', (req, res) => {
    const { output, rows, perMessage, devices, file } = req.body;
    const node = current;
    if (!node) return res.status(500).send('no feeder deployed');
    const messages = [];
    for (let i = 0; i < rows; i += perMessage) {
      const payload = perMessage === 1 ? reading(i, devices) : Array.from({ length: perMessage }, (_, k) => reading(i + k, devices));
      messages.push(output === 0 ? [{ topic: 'bench', payload }, null] : [null, { topic: 'bench', payload }]);
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
        if (!/does not exist|no such table/.test(String(error))) { if (db) db.close(); return res.status(500).send(String(error)); }
      }
      setTimeout(waitForRows, 5);
    };
    pump();
  });
};
`;
  const anchor = `
const Database = require(${betterSqlite});
module.exports = function (RED) {
  function Anchor(config) {
    RED.nodes.createNode(this, config);
    const db = new Database(config.file + '.anchor');
    db.exec('CREATE TABLE IF NOT EXISTS readings (device_id TEXT, ts INTEGER, power_w REAL, voltage_v REAL, current_a REAL, total_wh REAL)');
    const insert = db.prepare('INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)');
    this.on('input', (msg, send, done) => {
      const r = msg.payload;
      insert.run(r.device_id, r.ts, r.power_w, r.voltage_v, r.current_a, r.total_wh);
      done();
    });
    this.on('close', (removed, done) => { db.close(); done(); });
  }
  RED.nodes.registerType('kasa-bench-anchor', Anchor);
};
`;
  const html = (type: string, outputs: number) =>
    `<script type="text/javascript">RED.nodes.registerType('${type}', { category: 'bench', defaults: {}, inputs: ${outputs === 2 ? 0 : 1}, outputs: ${outputs} });</script>\n`;
  writeFileSync(join(dir, 'kasa-bench-feeder.js'), feeder);
  writeFileSync(join(dir, 'kasa-bench-feeder.html'), html('kasa-bench-feeder', 2));
  writeFileSync(join(dir, 'kasa-bench-anchor.js'), anchor);
  writeFileSync(join(dir, 'kasa-bench-anchor.html'), html('kasa-bench-anchor', 0));
}

if (require.main === module) {
  runStoreBench().then(printStoreBench, (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
