import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { freeLoopbackPort } from '../support/fake-kasa-device';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { startSimulatedHome, type SimulatedHome } from '../support/simulated-home';

const EXAMPLES = join(__dirname, '..', '..', 'examples');
const example = (name: string) =>
  JSON.parse(readFileSync(join(EXAMPLES, `${name}.json`), 'utf8')) as Record<string, unknown>[];

describe('end to end: the "Cached HTTP API" and "Warm the cache" examples', function () {
  this.timeout(60_000);
  let home: SimulatedHome;
  let nodeRed: NodeRedProcess;
  const cleanups: (() => Promise<unknown>)[] = [];

  before(async function () {
    home = await startSimulatedHome(await freeLoopbackPort('127.0.0.50'), 50);
    cleanups.push(() => home.stop());
    const monitor = example('Monitor plugs into SQLite');
    for (const node of monitor) {
      if (node.type === 'kasa-poll') {
        node.devices = home.deviceList;
        node.interval = '1';
      }
    }
    const flows = [
      ...monitor,
      ...example('Cached HTTP API'),
      ...example('Warm the cache after a restart'),
    ];
    nodeRed = await startNodeRed({ flows });
    cleanups.push(() => nodeRed.stop());
  });
  after(async function () {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const latest = (deviceId: string) => fetch(`${nodeRed.url}/kasa/latest/${deviceId}`);

  async function untilFound(deviceId: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while ((await latest(deviceId)).status !== 200) {
      if (Date.now() > deadline) throw new Error(`no reading of ${deviceId} in time`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  it('answers a miss from the database, then the same reading from the cache', async function () {
    const [fridge] = home.meteredIds;
    await untilFound(fridge!);
    // The miss above filled the cache: the next answers are hits with the same reading.
    const first = await latest(fridge!);
    const second = await latest(fridge!);
    assert.equal(first.headers.get('x-kasa-cache'), 'hit');
    assert.equal(second.headers.get('x-kasa-cache'), 'hit');
    const reading = (await first.json()) as { device_id: string; ts: number; power_w: number };
    assert.equal(reading.device_id, fridge);
    assert.deepEqual(await second.json(), reading);
  });

  it('answers 404 for a device it has never seen', async function () {
    const response = await latest('0000000000000000000000000000000000000000');
    assert.equal(response.status, 404);
    assert.equal(response.headers.get('x-kasa-cache'), 'miss');
  });

  it('serves a device never asked for from the cache once warming ran', async function () {
    const tv = home.meteredIds[1]!;
    const inject = await fetch(`${nodeRed.url}/inject/kasa-example-warm-start`, { method: 'POST' });
    assert.equal(inject.status, 200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const response = await latest(tv);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-kasa-cache'), 'hit', 'warming put the TV in the cache');
    assert.equal(((await response.json()) as { device_id: string }).device_id, tv);
  });

  it('logs no errors', function () {
    assert.deepEqual(
      nodeRed
        .log()
        .split('\n')
        .filter((line) => line.includes('[error]')),
      [],
    );
  });
});
