/**
 * `npm run bench`: every benchmark in one run, each scenario reported as medians and as a ratio
 * to its anchor measured in the same run. Results also go to bench/results/latest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { printPollBench, runPollBench } from './poll';
import { printStoreBench, runStoreBench } from './store';
import { printQueryBench, runQueryBench } from './query';
import { printCacheBench, runCacheBench } from './cache';
import { printRetentionBench, runRetentionBench } from './retention';
import { printMetricsCostBench, runMetricsCostBench } from './metrics-cost';

async function main(): Promise<void> {
  const started = new Date();
  const poll = await runPollBench();
  printPollBench(poll);
  console.log('');
  const store = await runStoreBench();
  printStoreBench(store);
  const results = join(__dirname, 'results');
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, 'latest.json'), JSON.stringify({ started, poll, store }, null, 2));
  console.log('');
  const query = runQueryBench();
  printQueryBench(query);
  writeFileSync(join(results, 'query.json'), JSON.stringify({ started, query }, null, 2));
  console.log('');
  const cache = await runCacheBench();
  printCacheBench(cache);
  writeFileSync(join(results, 'cache.json'), JSON.stringify({ started, cache }, null, 2));
  console.log('');
  const retention = await runRetentionBench();
  printRetentionBench(retention);
  writeFileSync(join(results, 'retention.json'), JSON.stringify({ started, retention }, null, 2));
  console.log('');
  const metrics = await runMetricsCostBench();
  printMetricsCostBench(metrics);
  writeFileSync(join(results, 'metrics.json'), JSON.stringify({ started, metrics }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
