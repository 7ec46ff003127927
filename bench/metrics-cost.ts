/**
 * Metrics cost: CPU time per reading of the poll benchmark's package path (device pool ->
 * kasa-poll -> kasa-sqlite-store in a real Node-RED) with metrics switched off
 * (`kasaMonitor.metrics: false`) and on (a kasa-perf-metrics node sending a snapshot every 10 s
 * and serving its Prometheus endpoint, scraped after every run), in one run. The two Node-RED
 * processes run side by side and take turns, so both see the same machine.
 */
import { join } from 'node:path';

import { startNodeRed, type NodeRedProcess } from '../test/support/node-red-process';
import { packageFlow } from './poll';
import { REPO, startDeviceServer } from './support/processes';
import { median } from './support/stats';

const DEVICES = 8;
const ROUNDS = 2000;
const REPEATS = 21;
const WARMUP_ROUNDS = 300;

interface DriverResult {
  readings: number;
  cpu_us: number;
  elapsed_ms: number;
}

export interface MetricsCostResult {
  off_cpu_us_per_reading: number;
  on_cpu_us_per_reading: number;
  /** on / off of the medians; the target is at most 1.05. */
  ratio: number;
  /** Median of the on/off ratios of runs made back to back (less sensitive to drift). */
  paired_ratio: number;
  off_runs: number[];
  on_runs: number[];
}

const PERF_NODE = {
  id: 'bench-perf',
  type: 'kasa-perf-metrics',
  z: 'bench-tab',
  name: '',
  interval: '10',
  memoryLimit: '500',
  endpoint: true,
  path: '/kasa-metrics',
  x: 100,
  y: 200,
  wires: [[], []],
};

async function start(ports: number[], metrics: boolean): Promise<NodeRedProcess> {
  return startNodeRed({
    flows: [...packageFlow(ports, 'reading'), ...(metrics ? [PERF_NODE] : [])],
    settings: {
      nodesDir: [join(REPO, 'bench', 'node-red')],
      ...(metrics ? {} : { kasaMonitor: { metrics: false } }),
    },
  });
}

async function run(nodeRed: NodeRedProcess, rounds: number): Promise<number> {
  const response = await fetch(`${nodeRed.url}/kasa-bench/bench-driver/run?rounds=${rounds}`, {
    method: 'POST',
  });
  const result = (await response.json()) as DriverResult;
  return result.cpu_us / result.readings;
}

export async function runMetricsCostBench(): Promise<MetricsCostResult> {
  const server = await startDeviceServer(DEVICES);
  const off = await start(server.ports, false);
  const on = await start(server.ports, true);
  try {
    await run(off, WARMUP_ROUNDS);
    await run(on, WARMUP_ROUNDS);
    const offRuns: number[] = [];
    const onRuns: number[] = [];
    for (let repeat = 0; repeat < REPEATS; repeat += 1) {
      // Alternating who goes first, so neither always follows the other's garbage collection.
      const order = repeat % 2 === 0 ? [false, true] : [true, false];
      for (const metrics of order) {
        if (metrics) {
          onRuns.push(await run(on, ROUNDS));
          // A Prometheus scrape after every run: far more often than the usual 15 s.
          const scraped = await fetch(`${on.url}/kasa-metrics`);
          if (!scraped.ok) throw new Error(`scrape failed: HTTP ${scraped.status}`);
          await scraped.text();
        } else {
          offRuns.push(await run(off, ROUNDS));
        }
      }
    }
    const offMedian = median(offRuns);
    const onMedian = median(onRuns);
    return {
      off_cpu_us_per_reading: offMedian,
      on_cpu_us_per_reading: onMedian,
      ratio: onMedian / offMedian,
      paired_ratio: median(onRuns.map((onRun, index) => onRun / offRuns[index]!)),
      off_runs: offRuns,
      on_runs: onRuns,
    };
  } finally {
    await on.stop();
    await off.stop();
    await server.stop();
  }
}

export function printMetricsCostBench(result: MetricsCostResult): void {
  console.log(
    `Metrics cost: ${DEVICES} fake plugs, ${ROUNDS} rounds, pool -> kasa-poll -> store, median of ${REPEATS} alternating runs`,
  );
  console.log(`${'metrics'.padEnd(52)} ${'CPU µs/reading'.padStart(15)}`);
  console.log(
    `${'off (kasaMonitor.metrics: false)'.padEnd(52)} ${result.off_cpu_us_per_reading.toFixed(1).padStart(15)}`,
  );
  console.log(
    `${'on (perf-metrics node, 10 s snapshots, scraped)'.padEnd(52)} ${result.on_cpu_us_per_reading.toFixed(1).padStart(15)}`,
  );
  console.log(
    `ratio on/off: x${result.ratio.toFixed(3)}, paired x${result.paired_ratio.toFixed(3)} (target <= x1.05); runs off ${result.off_runs.map((v) => v.toFixed(1)).join(' ')}; on ${result.on_runs.map((v) => v.toFixed(1)).join(' ')}`,
  );
}

if (require.main === module) {
  void runMetricsCostBench().then(printMetricsCostBench);
}
