import assert from 'node:assert/strict';

import { parseDeviceEntry } from '../../../lib/polling/device-entries';
import { Poller } from '../../../lib/polling/poller';
import { SharedPool } from '../../../lib/pool/shared-pool';
import { DEFAULT_LIMITS } from '../../../lib/readings/normalise';
import { silentLogger, systemClock } from '../../../lib/types';
import { FakeKasaDevice, loadFixture } from '../../support/fake-kasa-device';

describe('Poller: per-device intervals', function () {
  let strip: FakeKasaDevice;
  let shared: SharedPool;
  const pollers: Poller[] = [];

  function poller(entries: string[]): Poller {
    const created = new Poller({ shared, targets: entries.map(parseDeviceEntry), intervalMs: 0 });
    pollers.push(created);
    return created;
  }

  beforeEach(async function () {
    strip = await new FakeKasaDevice({ fixture: loadFixture('HS300(US)_2.0_1.0.3') }).start();
    shared = new SharedPool({
      pool: { requestTimeoutMs: 1000, retries: 0 },
      limits: DEFAULT_LIMITS,
      baselinePath: null,
      clock: systemClock,
      logger: silentLogger,
    });
  });
  afterEach(async function () {
    await Promise.all(pollers.splice(0).map((each) => each.stop()));
    await shared.close();
    await strip.stop();
  });

  it('sets the interval of the one outlet an outlet id names, when outlets are polled one by one', async function () {
    const entries = [0, 1, 2].map((outlet) => `127.0.0.1:${strip.port}/${outlet}`);
    const outlets = poller(entries);
    await outlets.pollNow(outlets.targets, undefined);
    const [first, second, third] = outlets.targets;
    assert.deepEqual(outlets.resolve(strip.childIds[1]!), [second]);
    outlets.setIntervalOf(strip.childIds[1]!, 5_000);
    assert.deepEqual(
      [first, second, third].map((target) => outlets.intervalOf(target!)),
      [0, 5_000, 0],
    );
    assert.deepEqual(outlets.resolve(strip.deviceId), outlets.targets, 'the strip id names all');
  });

  it('finds an outlet by its entry as the device list has it, with or without the default port', function () {
    const outlets = poller(['127.0.0.1/0', '127.0.0.1/1', `127.0.0.1:${strip.port}`]);
    const [first, second, whole] = outlets.targets;
    assert.deepEqual(outlets.resolve('127.0.0.1/1'), [second]);
    assert.deepEqual(outlets.resolve('127.0.0.1:9999/1'), [second]);
    assert.deepEqual(outlets.resolve(` 127.0.0.1:${strip.port} `), [whole]);
    assert.deepEqual(outlets.resolve('127.0.0.1'), [first, second, whole], 'a host names all');
    assert.deepEqual(outlets.resolve('127.0.0.1/4'), []);
    assert.deepEqual(outlets.resolve('not an entry at all'), []);
  });

  it('polls a whole strip at the shortest interval any of its outlets asked for', async function () {
    const whole = poller([`127.0.0.1:${strip.port}`]);
    await whole.pollNow(whole.targets, undefined);
    const target = whole.targets[0]!;
    const [busy, quiet] = strip.childIds;
    whole.setIntervalOf(quiet!, 240_000);
    assert.equal(whole.intervalOf(target), 240_000);
    whole.setIntervalOf(busy!, 30_000);
    assert.equal(whole.intervalOf(target), 30_000);
    whole.setIntervalOf(quiet!, 120_000);
    assert.equal(whole.intervalOf(target), 30_000, 'a quiet outlet does not slow a busy one');
    whole.setIntervalOf(busy!, 0);
    assert.equal(whole.intervalOf(target), 120_000);
    // Naming the strip itself sets its interval outright and forgets what outlets asked for.
    whole.setIntervalOf(strip.deviceId, 60_000);
    assert.equal(whole.intervalOf(target), 60_000);
    whole.setIntervalOf(quiet!, 300_000);
    assert.equal(whole.intervalOf(target), 300_000);
  });
});
