import { strict as assert } from 'node:assert';
import { KasaError, isKasaError, type KasaErrorCode } from '../../../lib/errors';
import {
  DevicePool,
  type DeviceHealth,
  type DevicePoolOptions,
  type RequestEvent,
} from '../../../lib/pool/device-pool';
import { legacyTcpTransportFactory } from '../../../lib/protocol/legacy-tcp';
import type { DeviceAddress, Transport, TransportFactory } from '../../../lib/protocol/transport';
import type { Timers } from '../../../lib/types';
import {
  FakeFleet,
  freeLoopbackPort,
  type FakeKasaDeviceOptions,
} from '../../support/fake-kasa-device';
import { REALTIME, rejectsWith, SYSINFO, waitFor } from '../../support/waiting';

/** Wraps a transport factory to measure how many requests are on the wire, per device and in all. */
function concurrencyProbe(inner: TransportFactory = legacyTcpTransportFactory): {
  factory: TransportFactory;
  maxGlobal: () => number;
  maxPerKey: () => number;
} {
  let global = 0;
  let maxGlobal = 0;
  let maxPerKey = 0;
  const perKey = new Map<string, number>();
  const factory: TransportFactory = (address) => {
    const transport = inner(address);
    const key = `${address.host}:${address.port}`;
    return {
      async request(payload, timeoutMs) {
        global += 1;
        perKey.set(key, (perKey.get(key) ?? 0) + 1);
        maxGlobal = Math.max(maxGlobal, global);
        maxPerKey = Math.max(maxPerKey, perKey.get(key)!);
        try {
          return await transport.request(payload, timeoutMs);
        } finally {
          global -= 1;
          perKey.set(key, perKey.get(key)! - 1);
        }
      },
      close: () => transport.close(),
      get connectionsOpened() {
        return transport.connectionsOpened;
      },
    };
  };
  return { factory, maxGlobal: () => maxGlobal, maxPerKey: () => maxPerKey };
}

/** A transport whose every call is answered by `script` (a reply, or a KasaError code to throw). */
function scriptedFactory(
  script: (call: number, address: DeviceAddress) => Record<string, unknown> | KasaErrorCode,
): {
  factory: TransportFactory;
  calls: () => number;
} {
  let calls = 0;
  const factory: TransportFactory = (address): Transport => {
    let closed = false;
    return {
      request() {
        if (closed) return Promise.reject(new KasaError('POOL_CLOSED', 'closed'));
        const outcome = script(calls++, address);
        return typeof outcome === 'string'
          ? Promise.reject(new KasaError(outcome, `scripted ${outcome}`))
          : Promise.resolve(outcome);
      },
      close() {
        closed = true;
      },
      connectionsOpened: 0,
    };
  };
  return { factory, calls: () => calls };
}

/** Real timers that fire at once, recording the delays asked for and which are still pending. */
function recordingTimers(fireAfterMs = 0): Timers & { delays: number[]; active: () => number } {
  const delays: number[] = [];
  const pending = new Set<NodeJS.Timeout>();
  return {
    delays,
    active: () => pending.size,
    setTimeout(callback, ms) {
      delays.push(ms);
      const handle = setTimeout(() => {
        pending.delete(handle);
        callback();
      }, fireAfterMs);
      pending.add(handle);
      return handle;
    },
    clearTimeout(handle) {
      pending.delete(handle as NodeJS.Timeout);
      clearTimeout(handle as NodeJS.Timeout);
    },
  };
}

describe('DevicePool', function () {
  this.timeout(8000);
  const fleet = new FakeFleet();
  const pools: DevicePool[] = [];

  const fake = (fixture: string, options: Partial<FakeKasaDeviceOptions> = {}) =>
    fleet.start(fixture, options);

  function pool(options: Partial<DevicePoolOptions> = {}): DevicePool {
    const created = new DevicePool(options);
    pools.push(created);
    return created;
  }

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((created) => created.close()));
    await fleet.stopAll();
  });

  it('keeps one request in flight per device and serves a burst in order', async () => {
    const device = await fake('HS300(US)_1.0_1.0.21');
    device.responseDelayMs = 15;
    const probe = concurrencyProbe();
    const devicePool = pool({ transportFactory: probe.factory });
    const finished: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, seq) =>
        devicePool
          .request(device.address, { system: { get_sysinfo: { seq } } })
          .then(() => finished.push(seq)),
      ),
    );
    const order = Array.from({ length: 10 }, (_, seq) => seq);
    assert.deepEqual(finished, order);
    assert.deepEqual(
      device.requests.map(
        (r) => (r.payload.system as { get_sysinfo: { seq: number } }).get_sysinfo.seq,
      ),
      order,
    );
    assert.equal(probe.maxPerKey(), 1);
    assert.equal(device.maxConcurrentConnections, 1);
    assert.equal(device.connectionsAccepted, 1);
  });

  it('never has more than maxInFlight requests on the wire', async () => {
    const strips = await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const device = await fake('HS110(EU)_1.0_1.2.5');
        device.responseDelayMs = 60;
        return device;
      }),
    );
    const probe = concurrencyProbe();
    const devicePool = pool({ maxInFlight: 2, transportFactory: probe.factory });
    const started = Date.now();
    const replies = await Promise.all(
      strips.flatMap((device) => [
        devicePool.request(device.address, SYSINFO),
        devicePool.request(device.address, REALTIME),
      ]),
    );
    assert.equal(replies.length, 8);
    assert.equal(probe.maxGlobal(), 2);
    // 8 requests of 60 ms through 2 slots cannot take less than 4 rounds.
    assert.ok(Date.now() - started >= 4 * 55);
    assert.deepEqual(devicePool.stats(), {
      inFlight: 0,
      queued: 0,
      retries: 0,
      connectionsOpened: 4,
      requests: 8,
      failures: 0,
    });
  });

  describe('retries', () => {
    it('retries transient failures with exponential backoff and jitter, then gives up', async () => {
      const device = await fake('HS110(EU)_4.0_1.0.4');
      device.behaviour = 'close';
      const timers = recordingTimers();
      const devicePool = pool({ retries: 2, timers, random: () => 0.5 });
      const error = await rejectsWith(devicePool.request(device.address, SYSINFO), 'DEVICE_CLOSED');
      assert.match(error.message, /closed/);
      assert.equal(device.requests.length, 3);
      assert.deepEqual(timers.delays, [220, 440]);
      assert.equal(devicePool.stats().retries, 2);
      assert.equal(devicePool.stats().failures, 1);
      const health = devicePool.health(device.address)!;
      assert.equal(health.online, false);
      assert.equal(health.consecutiveFailures, 1);
      assert.equal(health.lastError?.code, 'DEVICE_CLOSED');
    });

    it('waits the real backoff between attempts', async () => {
      const device = await fake('HS110(EU)_4.0_1.0.4');
      device.behaviour = 'garbage';
      const devicePool = pool({ retries: 2, retryBaseDelayMs: 25 });
      const started = Date.now();
      await rejectsWith(devicePool.request(device.address, SYSINFO), 'DEVICE_BAD_REPLY');
      assert.ok(Date.now() - started >= 25 + 50);
      const times = device.requests.map((r) => r.at);
      assert.equal(times.length, 3);
      assert.ok(times[1]! - times[0]! >= 24 && times[2]! - times[1]! >= 49, String(times));
    });

    it('succeeds on a retry without marking the device offline', async () => {
      const scripted = scriptedFactory((call) => (call === 0 ? 'DEVICE_TIMEOUT' : { ok: 1 }));
      const health: DeviceHealth[] = [];
      const devicePool = pool({ transportFactory: scripted.factory, timers: recordingTimers() });
      devicePool.on('health', (h) => health.push(h));
      assert.deepEqual(await devicePool.request({ host: '127.0.0.9', port: 9999 }, SYSINFO), {
        ok: 1,
      });
      assert.equal(scripted.calls(), 2);
      assert.equal(devicePool.stats().retries, 1);
      assert.deepEqual(
        health.map((h) => [h.online, h.consecutiveFailures]),
        [[true, 0]],
      );
    });

    it('does not retry a device that refuses connections', async () => {
      const port = await freeLoopbackPort();
      const devicePool = pool({ retries: 2 });
      await rejectsWith(
        devicePool.request({ host: '127.0.0.1', port }, SYSINFO),
        'DEVICE_UNREACHABLE',
      );
      assert.equal(devicePool.stats().retries, 0);
      assert.equal(devicePool.stats().connectionsOpened, 1);
    });
  });

  describe('offline backoff', () => {
    it('doubles the wait per failure up to the maximum and rejects early requests at once', async () => {
      let now = 1_700_000_000_000;
      let failing = true;
      const scripted = scriptedFactory(() => (failing ? 'DEVICE_UNREACHABLE' : { ok: 1 }));
      const events: DeviceHealth[] = [];
      const devicePool = pool({
        transportFactory: scripted.factory,
        clock: { now: () => now },
        offlineBackoffBaseMs: 5000,
        offlineBackoffMaxMs: 300_000,
      });
      devicePool.on('health', (h) => events.push(h));
      const address = { host: '127.0.0.10', port: 9999 };

      const waits: number[] = [];
      for (let failure = 1; failure <= 8; failure += 1) {
        const cause = await rejectsWith(devicePool.request(address, SYSINFO), 'DEVICE_UNREACHABLE');
        const health = devicePool.health(address)!;
        assert.equal(health.consecutiveFailures, failure);
        assert.equal(health.lastFailureAt, now);
        waits.push(health.nextAttemptAt! - now);
        // Early requests never reach the transport.
        const calls = scripted.calls();
        now += 1000;
        const early = await rejectsWith(devicePool.request(address, SYSINFO), 'DEVICE_BACKING_OFF');
        assert.equal(early.details.nextAttemptAt, health.nextAttemptAt);
        assert.equal(early.cause, cause, 'the wait carries the failure that started the outage');
        assert.equal(scripted.calls(), calls);
        now = health.nextAttemptAt!;
      }
      assert.deepEqual(waits, [5000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);

      failing = false;
      assert.deepEqual(await devicePool.request(address, SYSINFO), { ok: 1 });
      const health = devicePool.health(address)!;
      assert.equal(health.online, true);
      assert.equal(health.consecutiveFailures, 0);
      assert.equal(health.nextAttemptAt, null);
      assert.equal(health.lastSuccessAt, now);
      // One event when it went offline, one when it came back; none for repeated failures.
      assert.deepEqual(
        events.map((e) => e.online),
        [false, true],
      );
      const stats = devicePool.stats();
      assert.equal(stats.requests, 17);
      assert.equal(stats.failures, 16);
    });

    it('costs no network traffic while backing off', async () => {
      const device = await fake('HS110(EU)_4.0_1.0.4');
      device.behaviour = 'reset';
      const devicePool = pool({ retries: 0 });
      await rejectsWith(devicePool.request(device.address, SYSINFO), 'DEVICE_CLOSED');
      for (let i = 0; i < 5; i += 1) {
        await rejectsWith(devicePool.request(device.address, SYSINFO), 'DEVICE_BACKING_OFF');
      }
      assert.equal(device.connectionsAccepted, 1);
      assert.equal(device.requests.length, 1);
    });

    it('fails requests queued behind a failing attempt fast instead of letting each time out', async () => {
      const device = await fake('HS300(US)_2.0_1.0.3');
      device.behaviour = 'blackhole';
      const devicePool = pool({ retries: 0, requestTimeoutMs: 200 });
      const started = Date.now();
      const results = await Promise.allSettled(
        device.childIds.map((id) =>
          devicePool.request(device.address, { context: { child_ids: [id] }, ...REALTIME }),
        ),
      );
      const codes = results.map((r) =>
        r.status === 'rejected' && isKasaError(r.reason) ? r.reason.code : r.status,
      );
      assert.deepEqual(codes, ['DEVICE_TIMEOUT', ...Array<string>(5).fill('DEVICE_BACKING_OFF')]);
      assert.ok(Date.now() - started < 600);
      assert.equal(device.requests.length, 1);
    });
  });

  it('emits one health event per state change and a request event per request', async () => {
    const device = await fake('HS110(EU)_4.0_1.0.4');
    let now = 1_000_000;
    const devicePool = pool({ retries: 0, clock: { now: () => now } });
    const health: DeviceHealth[] = [];
    const requests: RequestEvent[] = [];
    devicePool.on('health', (h) => health.push(h));
    devicePool.on('request', (r) => requests.push(r));
    assert.equal(devicePool.health(device.address), undefined);

    for (let i = 0; i < 3; i += 1) await devicePool.request(device.address, SYSINFO);
    device.behaviour = 'close';
    await rejectsWith(devicePool.request(device.address, SYSINFO), 'DEVICE_CLOSED');
    device.behaviour = 'normal';
    now += 5000;
    await devicePool.request(device.address, SYSINFO);

    assert.deepEqual(
      health.map((h) => [h.online, h.consecutiveFailures]),
      [
        [true, 0],
        [false, 1],
        [true, 0],
      ],
    );
    assert.deepEqual(
      requests.map((r) => [r.key, r.ok, r.code]),
      [
        ...Array.from({ length: 3 }, () => [`127.0.0.1:${device.port}`, true, undefined]),
        [`127.0.0.1:${device.port}`, false, 'DEVICE_CLOSED'],
        [`127.0.0.1:${device.port}`, true, undefined],
      ],
    );
    const snapshot = devicePool.snapshot();
    assert.equal(snapshot.length, 1);
    assert.deepEqual(snapshot[0], {
      key: `127.0.0.1:${device.port}`,
      host: '127.0.0.1',
      port: device.port,
      online: true,
      consecutiveFailures: 0,
      lastSuccessAt: now,
      lastFailureAt: now - 5000,
      lastError: snapshot[0]!.lastError,
      latencyMs: snapshot[0]!.latencyMs,
      nextAttemptAt: null,
    });
    assert.equal(snapshot[0].lastError?.code, 'DEVICE_CLOSED');
    assert.ok(snapshot[0].latencyMs! >= 0 && snapshot[0].latencyMs! < 1000);
  });

  it('keeps a request alive when a listener throws', async () => {
    const device = await fake('HS110(EU)_4.0_1.0.4');
    const warnings: string[] = [];
    const devicePool = pool({
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: (m) => warnings.push(m),
        error: () => undefined,
      },
    });
    devicePool.on('health', () => {
      throw new Error('listener bug');
    });
    assert.deepEqual(await devicePool.request(device.address, SYSINFO), device.answer(SYSINFO));
    assert.equal(warnings.length, 1);
  });

  it('returns replies with a non-zero err_code: interpreting them is the caller’s business', async () => {
    const device = await fake('HS100(UK)_1.0_1.2.6');
    const devicePool = pool();
    const reply = await devicePool.request(device.address, { ...SYSINFO, ...REALTIME });
    assert.deepEqual(reply.emeter, { err_code: -1, err_msg: 'module not support' });
    assert.equal(devicePool.health(device.address)?.online, true);
  });

  it('lets a healthy device through while a dead one is timing out', async () => {
    const dead = await fake('HS110(EU)_1.0_1.2.5');
    dead.behaviour = 'blackhole';
    const healthy = await fake('KP115(EU)_1.0_1.0.16');
    const devicePool = pool({ retries: 0, requestTimeoutMs: 600 });
    let deadSettledAt = 0;
    const deadRequest = devicePool.request(dead.address, SYSINFO).finally(() => {
      deadSettledAt = Date.now();
    });
    const started = Date.now();
    for (let i = 0; i < 5; i += 1) await devicePool.request(healthy.address, REALTIME);
    const healthyDoneAt = Date.now();
    assert.equal(deadSettledAt, 0, 'the dead device was still timing out');
    assert.ok(healthyDoneAt - started < 300);
    await rejectsWith(deadRequest, 'DEVICE_TIMEOUT');
    assert.ok(deadSettledAt - started >= 550);
  });

  it('closeDevice() drops the connection; the next request opens a new one', async () => {
    const device = await fake('HS110(EU)_4.0_1.0.4');
    const devicePool = pool();
    await devicePool.request(device.address, SYSINFO);
    devicePool.closeDevice(device.address);
    await waitFor(() => device.openConnections === 0);
    await devicePool.request(device.address, SYSINFO);
    assert.equal(device.connectionsAccepted, 2);
    assert.equal(devicePool.stats().connectionsOpened, 2);
    assert.equal(devicePool.health(device.address)?.online, true);
    devicePool.closeDevice(device.address, { forget: true });
    assert.equal(devicePool.health(device.address), undefined);
  });

  it('close() rejects queued requests, closes sockets, clears timers and is idempotent', async () => {
    const silent = await fake('HS300(US)_1.0_1.0.21');
    silent.behaviour = 'blackhole';
    const flaky = await fake('HS110(EU)_4.0_1.0.4');
    flaky.behaviour = 'close';
    const timers = recordingTimers(60_000);
    const devicePool = pool({ timers, retries: 2, requestTimeoutMs: 5000 });
    const health: DeviceHealth[] = [];
    devicePool.on('health', (h) => health.push(h));

    const onWire = devicePool.request(silent.address, SYSINFO);
    const queued = [0, 1, 2].map(() => devicePool.request(silent.address, REALTIME));
    const retrying = devicePool.request(flaky.address, SYSINFO);
    await waitFor(() => silent.requests.length === 1 && timers.active() === 1);
    assert.equal(devicePool.stats().queued, 3);

    const closing = devicePool.close();
    assert.equal(devicePool.close(), closing);
    await closing;
    await rejectsWith(onWire, 'POOL_CLOSED');
    for (const request of queued) await rejectsWith(request, 'POOL_CLOSED');
    await rejectsWith(retrying, 'POOL_CLOSED');
    await rejectsWith(devicePool.request(silent.address, SYSINFO), 'POOL_CLOSED');
    assert.equal(timers.active(), 0);
    await waitFor(() => silent.openConnections === 0 && flaky.openConnections === 0);
    assert.equal(devicePool.stats().inFlight, 0);
    assert.equal(devicePool.stats().queued, 0);
    assert.deepEqual(health, [], 'closing is not a device failure');
    assert.equal(devicePool.health(silent.address)?.online, null);
  });

  it('case-028: three HS300 strips with one connection each, 7 requests per strip per cycle', async function () {
    this.timeout(10_000);
    const strips = await Promise.all(
      [0, 1, 2].map(async (n) => {
        const strip = await fake('HS300(US)_1.0_1.0.21', {
          deviceId: `${'C0FFEE'.padEnd(38, '0')}${n}${n}`,
          emeter: (childId) => ({
            power_mw: childId === null ? 0 : 1000 * (Number(childId.slice(-2)) + 1),
            voltage_mv: 120000,
            current_ma: 50,
            total_wh: 10,
          }),
        });
        strip.maxConnections = 1;
        strip.responseDelayMs = 150;
        return strip;
      }),
    );
    const devicePool = pool();
    for (let cycle = 0; cycle < 3; cycle += 1) {
      const started = Date.now();
      const replies = await Promise.all(
        strips.map((strip) =>
          Promise.all([
            devicePool.request(strip.address, SYSINFO),
            ...strip.childIds.map((id) =>
              devicePool.request(strip.address, { context: { child_ids: [id] }, ...REALTIME }),
            ),
          ]),
        ),
      );
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 2500, `cycle ${cycle} took ${elapsed} ms`);
      for (const [sysinfoReply, ...outlets] of replies) {
        const children = (sysinfoReply.system as { get_sysinfo: { children: unknown[] } })
          .get_sysinfo.children;
        assert.equal(children.length, 6);
        assert.deepEqual(
          outlets.map(
            (o) => (o.emeter as { get_realtime: { power_mw: number } }).get_realtime.power_mw,
          ),
          [1000, 2000, 3000, 4000, 5000, 6000],
        );
      }
    }
    for (const strip of strips) {
      assert.equal(strip.maxConcurrentConnections, 1);
      assert.equal(strip.connectionsRejected, 0);
      assert.equal(strip.requests.length, 21);
    }
    assert.equal(devicePool.stats().failures, 0);
    assert.equal(devicePool.stats().retries, 0);
  });
});
