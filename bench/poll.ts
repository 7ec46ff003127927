/**
 * Poll benchmark: CPU time per reading and latency of (a) a bare tplink-smarthome-api poll loop
 * and (b) this package's whole path (device pool -> kasa-poll -> kasa-sqlite-store inside a real
 * Node-RED), against the same fast fake plugs in a separate process, in one run.
 */
import { join } from 'node:path';

import { startNodeRed } from '../test/support/node-red-process';
import { REPO, runScript, startDeviceServer } from './support/processes';
import { median, quantile } from './support/stats';

const DEVICES = 8;
const ROUNDS = 400;
const REPEATS = 5;

interface LoopResult {
  readings: number;
  cpu_us_per_reading: number;
  readings_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

interface DriverResult {
  readings: number;
  cpu_us: number;
  elapsed_ms: number;
  latencies: number[];
}

export function packageFlow(ports: number[], output: 'reading' | 'cycle') {
  return [
    { id: 'bench-tab', type: 'tab', label: 'bench' },
    {
      id: 'bench-pool',
      type: 'kasa-device-pool',
      name: 'bench devices',
      maxInFlight: '8',
      timeout: '5',
      retries: '2',
      maxPowerW: '4000',
    },
    { id: 'bench-db', type: 'kasa-sqlite-db', name: 'bench db', path: 'bench.db' },
    {
      id: 'bench-driver',
      type: 'kasa-bench-driver',
      z: 'bench-tab',
      readingsPerRound: ports.length,
      x: 100,
      y: 100,
      wires: [['bench-poll']],
    },
    {
      id: 'bench-poll',
      type: 'kasa-poll',
      z: 'bench-tab',
      pool: 'bench-pool',
      devices: ports.map((port) => `127.0.0.1:${port}`).join('\n'),
      interval: '0',
      output,
      x: 300,
      y: 100,
      wires: [['bench-store']],
    },
    {
      id: 'bench-store',
      type: 'kasa-sqlite-store',
      z: 'bench-tab',
      db: 'bench-db',
      mode: 'store',
      batchSize: '1000',
      flushInterval: '1',
      x: 500,
      y: 100,
      wires: [['bench-driver']],
    },
  ];
}

async function runPackage(ports: number[], output: 'reading' | 'cycle'): Promise<LoopResult[]> {
  const nodeRed = await startNodeRed({
    flows: packageFlow(ports, output),
    settings: {
      nodesDir: [join(REPO, 'bench', 'node-red')],
    },
  });
  try {
    const run = async (rounds: number) => {
      const response = await fetch(`${nodeRed.url}/kasa-bench/bench-driver/run?rounds=${rounds}`, {
        method: 'POST',
      });
      return (await response.json()) as DriverResult;
    };
    await run(50);
    const results: LoopResult[] = [];
    for (let repeat = 0; repeat < REPEATS; repeat += 1) {
      const result = await run(ROUNDS);
      results.push({
        readings: result.readings,
        cpu_us_per_reading: result.cpu_us / result.readings,
        readings_per_s: result.readings / (result.elapsed_ms / 1000),
        p50_ms: quantile(result.latencies, 0.5),
        p99_ms: quantile(result.latencies, 0.99),
      });
    }
    return results;
  } finally {
    await nodeRed.stop();
  }
}

type LoopFigures = Omit<LoopResult, 'readings'>;

function summarise(results: LoopResult[]): LoopFigures {
  return {
    cpu_us_per_reading: median(results.map((result) => result.cpu_us_per_reading)),
    readings_per_s: median(results.map((result) => result.readings_per_s)),
    p50_ms: median(results.map((result) => result.p50_ms)),
    p99_ms: median(results.map((result) => result.p99_ms)),
  };
}

export interface PollBenchResult {
  anchor: LoopFigures;
  package_reading: LoopFigures;
  package_cycle: LoopFigures;
  ratio_reading: number;
  ratio_cycle: number;
}

export async function runPollBench(): Promise<PollBenchResult> {
  const server = await startDeviceServer(DEVICES);
  try {
    const anchorRuns: LoopResult[] = [];
    for (let repeat = 0; repeat < REPEATS; repeat += 1) {
      anchorRuns.push(
        await runScript<LoopResult>('bench/poll-anchor.ts', [
          server.ports.join(','),
          String(ROUNDS),
        ]),
      );
    }
    const anchor = summarise(anchorRuns);
    const reading = summarise(await runPackage(server.ports, 'reading'));
    const cycle = summarise(await runPackage(server.ports, 'cycle'));
    return {
      anchor,
      package_reading: reading,
      package_cycle: cycle,
      ratio_reading: reading.cpu_us_per_reading / anchor.cpu_us_per_reading,
      ratio_cycle: cycle.cpu_us_per_reading / anchor.cpu_us_per_reading,
    };
  } finally {
    await server.stop();
  }
}

/** Prints the medians, the ratios to the anchor and the target. */
export function printPollBench(result: PollBenchResult): void {
  const row = (name: string, figures: LoopFigures, ratio: string) =>
    `${name.padEnd(44)} ${figures.cpu_us_per_reading.toFixed(1).padStart(8)} ${ratio.padStart(7)} ${figures.p50_ms.toFixed(2).padStart(7)} ${figures.p99_ms.toFixed(2).padStart(7)} ${Math.round(figures.readings_per_s).toLocaleString('en-US').padStart(9)}`;
  console.log(
    `Polling ${DEVICES} fake plugs on loopback, ${ROUNDS} rounds, median of ${REPEATS} runs`,
  );
  console.log(
    `${'scenario'.padEnd(44)} ${'CPU µs'.padStart(8)} ${'ratio'.padStart(7)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'reading/s'.padStart(9)}`,
  );
  console.log(row('(a) anchor: tplink-smarthome-api getRealtime', result.anchor, 'x1.00'));
  console.log(
    row(
      '(b) pool -> kasa-poll -> store, per reading',
      result.package_reading,
      `x${result.ratio_reading.toFixed(2)}`,
    ),
  );
  console.log(
    row(
      '(b) pool -> kasa-poll -> store, per cycle',
      result.package_cycle,
      `x${result.ratio_cycle.toFixed(2)}`,
    ),
  );
  console.log('target: (b) costs at most half of (a) per reading (ratio <= 0.50)');
}

if (require.main === module) {
  void runPollBench().then(printPollBench);
}
