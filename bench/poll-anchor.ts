/**
 * The anchor: a bare tplink-smarthome-api poll loop (getDevice once, then emeter.getRealtime()
 * per reading), run in its own process. Prints CPU time per reading and latencies as JSON.
 */
import { Client, type Plug } from 'tplink-smarthome-api';

import { quantile } from './support/stats';

async function main(): Promise<void> {
  const ports = (process.argv[2] ?? '').split(',').map(Number);
  const rounds = Number(process.argv[3] ?? 500);
  const client = new Client({ logLevel: 'error' });
  const plugs = (await Promise.all(
    ports.map((port) => client.getDevice({ host: '127.0.0.1', port })),
  )) as Plug[];
  const pollAll = (latencies: number[] | null) =>
    Promise.all(
      plugs.map(async (plug) => {
        const started = performance.now();
        await plug.emeter.getRealtime();
        latencies?.push(performance.now() - started);
      }),
    );
  for (let round = 0; round < 50; round += 1) await pollAll(null);
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let round = 0; round < rounds; round += 1) await pollAll(latencies);
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const readings = rounds * plugs.length;
  process.stdout.write(
    `${JSON.stringify({
      readings,
      cpu_us_per_reading: (used.user + used.system) / readings,
      readings_per_s: readings / (elapsed / 1000),
      p50_ms: quantile(latencies, 0.5),
      p99_ms: quantile(latencies, 0.99),
    })}\n`,
  );
}

void main();
