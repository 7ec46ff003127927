import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { readdirSync } from 'node:fs';
import { decrypt, encrypt } from 'tplink-smarthome-crypto';

import type { KasaError } from '../../../lib/errors';
import { parseDeviceEntry, type PollTarget } from '../../../lib/polling/device-entries';
import { Poller } from '../../../lib/polling/poller';
import type { DevicePoolOptions } from '../../../lib/pool/device-pool';
import { SharedPool } from '../../../lib/pool/shared-pool';
import { DEFAULT_LIMITS } from '../../../lib/readings/normalise';
import { silentLogger, systemClock, type Reading } from '../../../lib/types';
import { FakeKasaDevice, freeLoopbackPort, loadFixture } from '../../support/fake-kasa-device';
import { waitFor } from '../../support/waiting';
import { fieldCase } from '../../support/fixtures';

/*
 * Field cases 008, 009 and 027 end to end: real sockets on loopback, a real Poller, a real
 * SharedPool/DevicePool, real time (scaled down from minutes to seconds).
 */

const STRIP = 'HS300(US)_2.0_1.0.3';
const PLUG = 'KP115(EU)_1.0_1.0.16';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A reading with the wall-clock time the poller handed it over. */
interface Received {
  reading: Reading;
  at: number;
}

/** A poller's output, recorded until `stop()` is called. */
interface Recorder {
  received: Received[];
  failing: { target: PollTarget; error: KasaError; at: number }[];
  recovered: { target: PollTarget; at: number }[];
  problems: { target: PollTarget; error: KasaError }[];
  cycles: number;
}

function record(poller: Poller): Recorder {
  const rec: Recorder = { received: [], failing: [], recovered: [], problems: [], cycles: 0 };
  poller.on('cycle', (cycle) => {
    rec.cycles += 1;
    const at = Date.now();
    for (const reading of cycle.readings) rec.received.push({ reading, at });
  });
  poller.on('failing', (target, error) => rec.failing.push({ target, error, at: Date.now() }));
  poller.on('recovered', (target) => rec.recovered.push({ target, at: Date.now() }));
  poller.on('problem', (target, error) => rec.problems.push({ target, error }));
  return rec;
}

/** Fakes, pools and pollers of one test, torn down in the right order whatever happened. */
class Harness {
  readonly fakes: FakeKasaDevice[] = [];
  readonly pools: SharedPool[] = [];
  readonly pollers: Poller[] = [];

  async fake(options: ConstructorParameters<typeof FakeKasaDevice>[0]): Promise<FakeKasaDevice> {
    const device = new FakeKasaDevice(options);
    this.fakes.push(device);
    return device.start();
  }

  pool(pool: Partial<DevicePoolOptions>): SharedPool {
    const shared = new SharedPool({
      pool,
      limits: DEFAULT_LIMITS,
      baselinePath: null,
      clock: systemClock,
      logger: silentLogger,
    });
    this.pools.push(shared);
    return shared;
  }

  poller(shared: SharedPool, targets: PollTarget[], intervalMs: number): Poller {
    const poller = new Poller({ shared, targets, intervalMs });
    this.pollers.push(poller);
    return poller;
  }

  async close(): Promise<void> {
    // Timers first; then the pools, so polls waiting on a blackholed device end at once
    // (POOL_CLOSED) instead of after their timeouts; then wait for the polls to unwind.
    const stopping = this.pollers.splice(0).map((poller) => poller.stop());
    await Promise.all(this.pools.splice(0).map((shared) => shared.close()));
    await Promise.all(stopping);
    await Promise.all(this.fakes.splice(0).map((device) => device.stop()));
  }
}

/**
 * The most attempts a device that never answers can get within `windowMs`: the first at the
 * window's start, each later one a timeout plus the next backoff step after the one before.
 * Polling ticks and timer slack only push attempts later, so this is an upper bound.
 */
function maxAttemptsWithin(
  windowMs: number,
  pool: { requestTimeoutMs: number; offlineBackoffBaseMs: number; offlineBackoffMaxMs: number },
): number {
  let attempts = 0;
  let at = 0;
  while (at < windowMs) {
    attempts += 1;
    const backoff = Math.min(
      pool.offlineBackoffMaxMs,
      pool.offlineBackoffBaseMs * 2 ** (attempts - 1),
    );
    at += pool.requestTimeoutMs + backoff;
  }
  return attempts;
}

describe('robustness: case-008, a strip that stops answering (scaled in time)', function () {
  this.timeout(40_000);
  const harness = new Harness();
  afterEach(() => harness.close());

  it('keeps one connection, backs off during the outage and reads the new value soon after', async function () {
    const fieldExpected = fieldCase('case-008-outage-no-overlapping-requests').expected;
    assert.match(String(fieldExpected.concurrency), /== 1/);

    const poolOptions = {
      requestTimeoutMs: 500,
      retries: 0,
      offlineBackoffBaseMs: 1000,
      offlineBackoffMaxMs: 4000,
    };
    const intervalMs = 500;
    const normalMs = 2000;
    const outageMs = 6000;

    let outlet01Mw = 15_000;
    const strip = await harness.fake({
      fixture: loadFixture(STRIP),
      emeter: (childId) => ({
        voltage_mv: 121_302,
        current_ma: 100,
        // Full child ids end in the outlet's two-digit index.
        power_mw: childId?.endsWith('01') === true ? outlet01Mw : 5_000,
        total_wh: 1_000,
      }),
    });
    const outlet01 = strip.childIds[1]!;
    assert.ok(outlet01.endsWith('01'));

    const shared = harness.pool(poolOptions);
    const target = parseDeviceEntry(`127.0.0.1:${strip.port}`);
    const poller = harness.poller(shared, [target], intervalMs);
    const rec = record(poller);
    poller.start();

    // Normal phase.
    await sleep(normalMs);
    const before = rec.received.filter((r) => r.reading.device_id === outlet01);
    assert.ok(before.length >= 2, `outlet 01 read ${before.length} times before the outage`);
    assert.ok(before.every((r) => r.reading.power_w === 15));
    assert.equal(rec.failing.length, 0);
    assert.equal(strip.connectionsAccepted, 1, 'one kept-open connection while healthy');

    // Outage: the strip accepts and reads but never answers.
    const connectionsBefore = strip.connectionsAccepted;
    const requestsBefore = strip.requestCount;
    strip.behaviour = 'blackhole';
    const outageStart = Date.now();
    await sleep(outageMs);
    const connectionsDuring = strip.connectionsAccepted - connectionsBefore;
    const requestsDuring = strip.requestCount - requestsBefore;
    outlet01Mw = 60_000;
    strip.behaviour = 'normal';
    const outageEnd = Date.now();

    // Recovery: the worst case is an attempt that started just before the end (one timeout),
    // the longest backoff after it, then the next polling tick.
    const recoveryBoundMs =
      poolOptions.offlineBackoffMaxMs + intervalMs + poolOptions.requestTimeoutMs + 1000;
    await waitFor(
      () => rec.received.some((r) => r.reading.device_id === outlet01 && r.at >= outageEnd),
      recoveryBoundMs,
      'a reading of outlet 01 after the outage',
    );
    const firstAfter = rec.received.find(
      (r) => r.reading.device_id === outlet01 && r.at >= outageEnd,
    )!;
    assert.equal(firstAfter.reading.power_w, 60);
    assert.ok(firstAfter.reading.ts >= outageEnd);
    assert.ok(firstAfter.at - outageEnd <= recoveryBoundMs);

    // Never two connections (or two requests) at the strip at once.
    assert.equal(strip.maxConcurrentConnections, 1);

    // No pile-up: attempts during the outage follow the backoff schedule.
    const bound = maxAttemptsWithin(outageMs, poolOptions);
    assert.equal(bound, 3, 'attempts at 0, 1.5 s and 4 s of a 6 s outage');
    assert.ok(requestsDuring >= 2, `the outage was noticed (${requestsDuring} requests)`);
    assert.ok(requestsDuring <= bound, `${requestsDuring} requests during the outage`);
    assert.ok(connectionsDuring >= 1, 'a failed attempt is retried on a fresh connection');
    assert.ok(connectionsDuring <= bound, `${connectionsDuring} connections during the outage`);

    // The gap is missing data: nothing stamped inside the outage. A reply already on its way
    // when the strip went silent may land a few ms after the switch.
    const graceMs = 100;
    const inGap = rec.received.filter(
      (r) => r.reading.ts > outageStart + graceMs && r.reading.ts < outageEnd,
    );
    assert.deepEqual(
      inGap.map((r) => [r.reading.device_id, r.reading.ts - outageStart]),
      [],
    );
    // And no stale value comes back as fresh once the strip answers again.
    for (const r of rec.received) {
      if (r.reading.device_id === outlet01 && r.reading.ts >= outageEnd) {
        assert.equal(r.reading.power_w, 60);
      }
    }

    // One failure report, one recovery report.
    assert.equal(rec.failing.length, 1, rec.failing.map((f) => f.error.code).join());
    assert.equal(rec.failing[0]!.error.code, 'DEVICE_TIMEOUT');
    assert.ok(rec.failing[0]!.at >= outageStart);
    assert.equal(rec.recovered.length, 1);
    assert.ok(rec.recovered[0]!.at >= outageEnd);
    assert.equal(rec.recovered[0]!.target.key, target.key);
  });
});

describe('robustness: case-009, 20 plugs with 5 dead for a while (scaled in time)', function () {
  this.timeout(60_000);
  const harness = new Harness();
  afterEach(() => harness.close());

  it('keeps file descriptors flat and reads the healthy plugs every interval', async function () {
    const plugCount = 20;
    const deadCount = 5;
    const intervalMs = 1000;
    const runMs = 15_500;
    const sampleEveryMs = 3000;

    const fixture = loadFixture(PLUG);
    const plugs = await Promise.all(
      Array.from({ length: plugCount }, (_, i) =>
        harness.fake({
          fixture,
          deviceId: `${'C0FFEE'.padEnd(38, '0')}${i.toString(16).padStart(2, '0')}`.toUpperCase(),
          recordRequests: false,
        }),
      ),
    );
    const dead = plugs.slice(plugCount - deadCount);
    const healthy = plugs.slice(0, plugCount - deadCount);
    for (const plug of dead) plug.behaviour = 'blackhole';

    // The kasa-device-pool defaults: 8 in flight, 5 s timeout, 2 retries, 5 s first backoff.
    const shared = harness.pool({});
    const targets = plugs.map((plug) => parseDeviceEntry(`127.0.0.1:${plug.port}`));
    const poller = harness.poller(shared, targets, intervalMs);
    const rec = record(poller);
    const poolCodes: string[] = [];
    shared.pool.on('request', (event) => {
      if (event.code !== undefined) poolCodes.push(event.code);
    });

    const fds: number[] = [];
    const started = Date.now();
    poller.start();
    for (let t = sampleEveryMs; t <= runMs; t += sampleEveryMs) {
      await sleep(started + t - Date.now());
      fds.push(readdirSync('/proc/self/fd').length);
    }
    await sleep(started + runMs - Date.now());
    const ended = Date.now();

    // No upward trend of file descriptors after warm-up.
    const spread = Math.max(...fds) - Math.min(...fds);
    assert.ok(spread < 20, `fd counts ${fds.join(', ')}`);

    // >= 95 % of the expected readings of the healthy plugs (one at start, one per tick).
    const expectedPerPlug = Math.floor(runMs / intervalMs) + 1;
    const healthyIds = new Set(healthy.map((plug) => plug.deviceId));
    const received = rec.received.filter(
      (r) => r.at <= ended && healthyIds.has(r.reading.device_id),
    );
    const perPlug = healthy.map(
      (plug) => received.filter((r) => r.reading.device_id === plug.deviceId).length,
    );
    const expected = expectedPerPlug * healthy.length;
    assert.ok(
      received.length >= 0.95 * expected,
      `${received.length} of ${expected} readings; per plug ${perPlug.join(' ')}`,
    );
    assert.ok(
      perPlug.every((n) => n <= expectedPerPlug),
      `never more than one reading per tick: ${perPlug.join(' ')}`,
    );

    // The healthy plugs never failed.
    const healthyKeys = new Set(targets.slice(0, healthy.length).map((t) => t.key));
    assert.deepEqual(
      rec.failing.filter((f) => healthyKeys.has(f.target.key)).map((f) => f.target.key),
      [],
    );
    // Each dead plug is reported once, when its first request has used up its tries
    // (3 x 5 s timeouts plus retry pauses: just after the window).
    const deadKeys = targets.slice(healthy.length).map((t) => t.key);
    await waitFor(() => rec.failing.length >= deadKeys.length, 5000, 'dead plugs reported');
    assert.deepEqual(rec.failing.map((f) => f.target.key).sort(), [...deadKeys].sort());
    assert.ok(rec.failing.every((f) => f.error.code === 'DEVICE_TIMEOUT'));
    // Only the dead plugs' timeouts (and backing off) were seen; no resource exhaustion.
    assert.deepEqual(
      [...new Set(poolCodes)].filter((c) => c !== 'DEVICE_TIMEOUT' && c !== 'DEVICE_BACKING_OFF'),
      [],
    );
    const errnoOf = (error: KasaError): string =>
      (error.cause as NodeJS.ErrnoException | undefined)?.code ?? '';
    const messages = [...rec.failing, ...rec.problems]
      .map((f) => `${f.error.code} ${errnoOf(f.error)} ${f.error.message}`)
      .join('\n');
    assert.doesNotMatch(messages, /EMFILE|ENFILE|EADDRNOTAVAIL|ENOBUFS/);

    // Connections are kept open: one per healthy plug for the whole run, and never two at once.
    assert.deepEqual(
      healthy.map((plug) => plug.connectionsAccepted),
      healthy.map(() => 1),
    );
    for (const plug of plugs) assert.equal(plug.maxConcurrentConnections, 1);
    // A dead plug gets one connection per try (the timed-out socket is destroyed, not left
    // open), then backs off.
    await sleep(100);
    for (const plug of dead) {
      assert.equal(plug.connectionsAccepted, 3, 'one request, 1 + 2 retries');
      assert.equal(plug.openConnections, 0);
    }
  });
});

describe('robustness: case-027, no emeter query over UDP', function () {
  this.timeout(20_000);
  const harness = new Harness();
  afterEach(() => harness.close());

  it('polls a plug and a strip that also listen on UDP over TCP only', async function () {
    const fieldExpected = fieldCase('case-027-no-emeter-query-over-udp').expected;
    assert.match(String(fieldExpected.udp), /0 requests containing emeter/);

    const plug = await harness.fake({
      fixture: loadFixture(PLUG),
      port: await freeLoopbackPort(),
      udp: true,
    });
    const strip = await harness.fake({
      fixture: loadFixture(STRIP),
      port: await freeLoopbackPort(),
      udp: true,
    });
    const shared = harness.pool({ requestTimeoutMs: 2000 });
    const targets = [plug, strip].map((fake) => parseDeviceEntry(`127.0.0.1:${fake.port}`));
    const poller = harness.poller(shared, targets, 0);
    const rec = record(poller);
    for (let cycle = 0; cycle < 5; cycle += 1) await poller.pollNow(targets, undefined);

    assert.equal(rec.cycles, 5);
    assert.equal(rec.failing.length, 0);
    assert.equal(rec.received.filter((r) => r.reading.device_id === plug.deviceId).length, 5);
    assert.equal(
      rec.received.filter((r) => strip.childIds.includes(r.reading.device_id)).length,
      30,
    );

    for (const fake of [plug, strip]) {
      const udp = fake.requests.filter((r) => r.transport === 'udp');
      assert.deepEqual(udp, [], 'no request at all over UDP');
      const emeter = fake.requests.filter((r) => 'emeter' in r.payload);
      assert.ok(emeter.length >= 5, `${emeter.length} emeter requests`);
      assert.ok(emeter.every((r) => r.transport === 'tcp'));
    }

    // The fake does see UDP traffic: a query of our own shows up as one UDP request.
    const socket = dgram.createSocket('udp4');
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await new Promise<Record<string, unknown> | null>((resolve) => {
        timer = setTimeout(() => resolve(null), 2000);
        socket.once('message', (message) => {
          resolve(JSON.parse(decrypt(message).toString('utf8')) as Record<string, unknown>);
        });
        socket.send(
          encrypt(JSON.stringify({ system: { get_sysinfo: {} } })),
          plug.port,
          '127.0.0.1',
        );
      });
      assert.ok(answer !== null && 'system' in answer, 'the fake answers on UDP');
    } finally {
      clearTimeout(timer);
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    }
    assert.equal(plug.requests.filter((r) => r.transport === 'udp').length, 1);
  });
});
