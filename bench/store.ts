// Storage benchmark inside a real Node-RED 4.1 child process (test/support/node-red-process.ts):
// a bench-only feeder node sends readings into kasa-sqlite-store, and into an "anchor" node that
// stores the way the official node-red-node-sqlite is commonly used (one INSERT per message,
// autocommit, default rollback journal), and measures rows/s until every row is in the file.
// Run `npm run build` first; `npx tsx bench/store.ts` prints the table. BENCH_NODE_ARGS passes
// arguments to the Node-RED process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
import { statSync } from 'node:fs';
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

interface RunResult {
  rows: number;
  ms: number;
  sendMs: number;
}

/** Runs the three scenarios (medians of `RUNS` runs each) and the size measurement. */
export async function runStoreBench(): Promise<StoreBenchResult> {
  const started = performance.now();
  const work = makeTempDir('kasa-bench-');
  let red: NodeRedProcess;
  try {
    red = await startNodeRed({
      settings: { nodesDir: [join(__dirname, 'node-red')] },
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

if (require.main === module) {
  runStoreBench().then(printStoreBench, (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
