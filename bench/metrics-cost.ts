/**
 * Metrics cost: CPU time per reading of the poll benchmark's package path (device pool ->
 * kasa-poll -> kasa-sqlite-store in a real Node-RED) with metrics switched off
 * (`kasaMonitor.metrics: false`) and on (a kasa-perf-metrics node sending a snapshot every 10 s
 * and serving its Prometheus endpoint, scraped after every run), in one run. The two Node-RED
 * processes run side by side and take turns, so both see the same machine; a third process with
 * metrics off measures how far two identical processes differ on this machine (the noise).
 */
import { join } from 'node:path';

import { startNodeRed, type NodeRedProcess } from '../test/support/node-red-process';
import { packageFlow } from './poll';
import { REPO, startDeviceServer } from './support/processes';
import { median } from './support/stats';

const DEVICES = 8;
const ROUNDS = 2000;
const REPEATS = 31;
const WARMUP_ROUNDS = 300;

interface DriverResult {
  readings: number;
  cpu_us: number;
  elapsed_ms: number;
}

export interface MetricsCostResult {
  off_cpu_us_per_reading: number;
  on_cpu_us_per_reading: number;
  /** A second metrics-off process: its ratio to the first shows the noise of the machine. */
  control_cpu_us_per_reading: number;
  /** Median over the rounds of control / off within the round. */
  control_ratio: number;
  /**
   * Median over the rounds of on / the mean of both off runs of the same round: a paired
   * comparison, so a slow spell of the shared machine weighs on both sides. Target at most 1.05.
   */
  ratio: number;
  off_runs: number[];
  on_runs: number[];
  control_runs: number[];
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
  const control = await start(server.ports, false);
  const on = await start(server.ports, true);
  try {
    for (const nodeRed of [off, control, on]) await run(nodeRed, WARMUP_ROUNDS);
    const runs = new Map<NodeRedProcess, number[]>([
      [off, []],
      [control, []],
      [on, []],
    ]);
    const rotation = [off, control, on];
    for (let repeat = 0; repeat < REPEATS; repeat += 1) {
      // The order rotates, so no process always follows another's garbage collection.
      for (let turn = 0; turn < rotation.length; turn += 1) {
        const nodeRed = rotation[(repeat + turn) % rotation.length]!;
        runs.get(nodeRed)!.push(await run(nodeRed, ROUNDS));
        if (nodeRed === on) {
          // A Prometheus scrape after every run: far more often than the usual 15 s.
          const scraped = await fetch(`${on.url}/kasa-metrics`);
          if (!scraped.ok) throw new Error(`scrape failed: HTTP ${scraped.status}`);
          await scraped.text();
        }
      }
    }
    const offRuns = runs.get(off)!;
    const onRuns = runs.get(on)!;
    const controlRuns = runs.get(control)!;
    const rounds = offRuns.map((offRun, index) => ({
      off: offRun,
      on: onRuns[index]!,
      control: controlRuns[index]!,
    }));
    return {
      off_cpu_us_per_reading: median(offRuns),
      on_cpu_us_per_reading: median(onRuns),
      control_cpu_us_per_reading: median(controlRuns),
      ratio: median(rounds.map((round) => round.on / ((round.off + round.control) / 2))),
      control_ratio: median(rounds.map((round) => round.control / round.off)),
      off_runs: offRuns,
      on_runs: onRuns,
      control_runs: controlRuns,
    };
  } finally {
    await on.stop();
    await control.stop();
    await off.stop();
    await server.stop();
  }
}

export function printMetricsCostBench(result: MetricsCostResult): void {
  console.log(
    `Metrics cost: ${DEVICES} fake plugs, ${ROUNDS} rounds, pool -> kasa-poll -> store, median of ${REPEATS} runs each, taking turns`,
  );
  console.log(`${'metrics'.padEnd(52)} ${'CPU µs/reading'.padStart(15)}`);
  console.log(
    `${'off (kasaMonitor.metrics: false)'.padEnd(52)} ${result.off_cpu_us_per_reading.toFixed(1).padStart(15)}`,
  );
  console.log(
    `${'on (perf-metrics node, 10 s snapshots, scraped)'.padEnd(52)} ${result.on_cpu_us_per_reading.toFixed(1).padStart(15)}`,
  );
  console.log(
    `${'off again (control: the noise of the machine)'.padEnd(52)} ${result.control_cpu_us_per_reading.toFixed(1).padStart(15)}`,
  );
  console.log(
    `median of the rounds' ratios: control/off x${result.control_ratio.toFixed(3)}; on / both off x${result.ratio.toFixed(3)} (target <= x1.05: ${result.ratio <= 1.05 ? 'ok' : 'MISSED, see the control for the noise'}); runs off ${result.off_runs.map((v) => v.toFixed(1)).join(' ')}; on ${result.on_runs.map((v) => v.toFixed(1)).join(' ')}`,
  );
}

if (require.main === module) {
  void runMetricsCostBench().then(printMetricsCostBench);
}
