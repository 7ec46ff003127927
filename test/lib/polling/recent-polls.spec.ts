import assert from 'node:assert/strict';

import { parseDeviceEntry } from '../../../lib/polling/device-entries';
import { pollTarget } from '../../../lib/polling/poll-device';
import { SharedPool } from '../../../lib/pool/shared-pool';
import { DEFAULT_LIMITS } from '../../../lib/readings/normalise';
import { silentLogger } from '../../../lib/types';
import { FakeKasaDevice, loadFixture } from '../../support/fake-kasa-device';

describe('minimum poll interval of the shared pool', function () {
  const clock = { t: 1_700_000_000_000, now: () => clock.t };
  let plug: FakeKasaDevice;
  let strip: FakeKasaDevice;
  let totalWh: number;
  const pools: SharedPool[] = [];

  function pool(minPollIntervalMs?: number): SharedPool {
    const shared = new SharedPool({
      pool: { requestTimeoutMs: 1000, retries: 0 },
      limits: DEFAULT_LIMITS,
      baselinePath: null,
      clock,
      logger: silentLogger,
      ...(minPollIntervalMs === undefined ? {} : { minPollIntervalMs }),
    });
    pools.push(shared);
    return shared;
  }

  beforeEach(async function () {
    totalWh = 100;
    plug = await new FakeKasaDevice({
      fixture: loadFixture('KP115(EU)_1.0_1.0.16'),
      emeter: () => ({ power_mw: 5000, voltage_mv: 230000, current_ma: 30, total_wh: totalWh }),
    }).start();
    strip = await new FakeKasaDevice({ fixture: loadFixture('HS300(US)_2.0_1.0.3') }).start();
  });
  afterEach(async function () {
    await Promise.all(pools.splice(0).map((shared) => shared.close()));
    await plug.stop();
    await strip.stop();
  });

  it('answers a poll within the window from the last reading, marked cached, without a request', async function () {
    const shared = pool(10_000);
    const target = parseDeviceEntry(`127.0.0.1:${plug.port}`);
    const first = await pollTarget(shared.context, target);
    totalWh = 101;
    clock.t += 9_999;
    const second = await pollTarget(shared.context, target);
    assert.equal(plug.requestCount, 1, 'the device was asked once');
    assert.deepEqual(second.readings, [{ ...first.readings[0]!, energy_wh: 0, cached: true }]);
    assert.equal(second.readings[0]!.ts, first.readings[0]!.ts, 'the original time is kept');
    assert.equal(second.devices, null);
    assert.equal(first.readings[0]!.cached, undefined, 'the original is not marked');

    clock.t += 1;
    const third = await pollTarget(shared.context, target);
    assert.equal(plug.requestCount, 2, 'asked again once the window has passed');
    assert.equal(third.readings[0]!.cached, undefined);
    assert.equal(third.readings[0]!.energy_wh, 1, 'the energy of the whole span is booked once');
  });

  it('shares a poll under way and answers every outlet of a strip', async function () {
    const shared = pool(5_000);
    const target = parseDeviceEntry(`127.0.0.1:${strip.port}`);
    const [asked, joined] = await Promise.all([
      pollTarget(shared.context, target),
      pollTarget(shared.context, target),
    ]);
    assert.equal(strip.requestCount, 7, 'sysinfo and six outlets, once');
    assert.equal(asked.readings.length, 6);
    assert.deepEqual(
      joined.readings.map((reading) => [reading.device_id, reading.cached, reading.energy_wh]),
      asked.readings.map((reading) => [reading.device_id, true, 0]),
    );
    // A single outlet is its own target with its own last answer.
    await pollTarget(shared.context, parseDeviceEntry(`127.0.0.1:${strip.port}/2`));
    assert.equal(strip.requestCount, 9);
  });

  it('does not remember a failed poll, and asks every time by default', async function () {
    const shared = pool(60_000);
    const target = parseDeviceEntry(`127.0.0.1:${plug.port}`);
    plug.behaviour = 'close';
    await assert.rejects(pollTarget(shared.context, target), { code: 'DEVICE_CLOSED' });
    plug.behaviour = 'normal';
    clock.t += 5_000; // past the pool's offline backoff, well within the window
    const after = await pollTarget(shared.context, target);
    assert.equal(after.readings[0]!.cached, undefined, 'the failure was not answered from memory');

    const plain = pool();
    const before = plug.requestCount;
    await pollTarget(plain.context, target);
    await pollTarget(plain.context, target);
    assert.equal(plug.requestCount, before + 2);
  });
});
