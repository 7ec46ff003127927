import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';

import { instrumentPool, instrumentWriter } from '../../../lib/metrics/instrument';
import { MetricsRegistry, type MemoryFigures } from '../../../lib/metrics/registry';
import { noopRecorder, type SourceFigures } from '../../../lib/metrics/recorder';
import { CrossingWatch } from '../../../lib/metrics/threshold';
import type { EventLoopHistogram } from '../../../lib/metrics/window';
import type { DevicePool } from '../../../lib/pool/device-pool';
import type { ReadingWriter } from '../../../lib/store/writer';

const MB = 1024 * 1024;

/** An event-loop monitor whose figures the test sets (ns), counting enable/disable. */
class FakeEventLoop implements EventLoopHistogram {
  static made: FakeEventLoop[] = [];
  enabled = false;
  resets = 0;
  p50 = 2e6;
  p99 = 9e6;
  max = 12e6;
  constructor() {
    FakeEventLoop.made.push(this);
  }
  enable() {
    this.enabled = true;
    return true;
  }
  disable() {
    this.enabled = false;
    return true;
  }
  reset() {
    this.resets += 1;
  }
  percentile(p: number) {
    return p === 50 ? this.p50 : this.p99;
  }
}

function makeRegistry(
  memory: MemoryFigures = { rss: 100 * MB, heapUsed: 40 * MB, heapTotal: 60 * MB },
) {
  let now = 0;
  const registry = new MetricsRegistry({
    memory: () => memory,
    handles: () => 7,
    now: () => now,
    eventLoop: () => new FakeEventLoop(),
  });
  return { registry, advance: (ms: number) => (now += ms) };
}

/** The value of a series in Prometheus text, by its full name with labels. */
function valueOf(text: string, series: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  assert.ok(line !== undefined, `${series} in\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe('MetricsRegistry', function () {
  beforeEach(function () {
    FakeEventLoop.made = [];
  });

  it('gives count, avg, min, max and quantiles of known timings', function () {
    const { registry, advance } = makeRegistry();
    const window = registry.openWindow();
    // 1..1000 ms shuffled: p50 ~500, p95 ~950, p99 ~990.
    const timings = Array.from({ length: 1000 }, (_, index) => index + 1);
    for (let index = timings.length - 1; index > 0; index -= 1) {
      const other = (index * 7919) % (index + 1);
      [timings[index], timings[other]] = [timings[other]!, timings[index]!];
    }
    for (const ms of timings) registry.poll('127.0.0.2:9999', ms);
    registry.flush(100, 4);
    registry.flush(300, 8);
    registry.query('history', 1.5);
    advance(10_000);
    const snapshot = registry.snapshot(window);
    const poll = snapshot.operations.poll!;
    assert.equal(poll.count, 1000);
    assert.equal(poll.avg_ms, 500.5);
    assert.equal(poll.min_ms, 1);
    assert.equal(poll.max_ms, 1000);
    const near = (actual: number, expected: number) =>
      assert.ok(Math.abs(actual - expected) <= expected * 0.02, `${actual} ~ ${expected}`);
    near(poll.p50_ms, 500);
    near(poll.p95_ms, 950);
    near(poll.p99_ms, 990);
    assert.deepEqual(snapshot.operations.flush, {
      count: 2,
      avg_ms: 6,
      min_ms: 4,
      max_ms: 8,
      p50_ms: snapshot.operations.flush!.p50_ms,
      p95_ms: snapshot.operations.flush!.p95_ms,
      p99_ms: snapshot.operations.flush!.p99_ms,
    });
    assert.ok(snapshot.operations.flush.p50_ms >= 4 && snapshot.operations.flush.p50_ms <= 8);
    assert.equal(snapshot.operations.query_history!.count, 1);
    assert.equal(snapshot.counters.polls, 1000);
    assert.equal(snapshot.counters.rows_written, 400);
    assert.equal(snapshot.counters.flushes, 2);
    assert.equal(snapshot.pool.polls_per_s, 100);
    assert.deepEqual(snapshot.memory, { rss_mb: 100, heap_used_mb: 40, heap_total_mb: 60 });
    assert.deepEqual(snapshot.event_loop, { p50_ms: 2, p99_ms: 9, max_ms: 12 });
    assert.equal(snapshot.handles, 7);
    registry.closeWindow(window);
  });

  it('resets the window on request but keeps running totals', function () {
    const { registry, advance } = makeRegistry();
    const window = registry.openWindow();
    registry.poll('a:9999', 5);
    registry.poll('a:9999', 7, 'DEVICE_TIMEOUT');
    advance(1000);
    registry.resetWindow(window);
    registry.poll('a:9999', 3);
    advance(1000);
    const snapshot = registry.snapshot(window);
    assert.equal(snapshot.operations.poll!.count, 1);
    assert.equal(snapshot.operations.poll!.max_ms, 3);
    assert.equal(snapshot.counters.polls, 3);
    assert.equal(snapshot.counters.poll_failures, 1);
    assert.deepEqual(snapshot.counters.poll_failures_by_code, { DEVICE_TIMEOUT: 1 });
    assert.equal(snapshot.window_s, 1);
    assert.ok(
      FakeEventLoop.made.some((made) => made.resets > 0),
      'the event-loop figures reset',
    );
    registry.closeWindow(window);
  });

  it('exposes counters that match what was recorded, in Prometheus text', async function () {
    const { registry } = makeRegistry();
    for (let index = 0; index < 12; index += 1) registry.poll('127.0.0.2:9999', 2);
    registry.poll('127.0.0.3:9999', 2, 'DEVICE_UNREACHABLE');
    registry.flush(250, 3);
    registry.retention(40, 100, 20);
    const text = await registry.prometheus();
    assert.equal(valueOf(text, 'kasa_polls_total'), 13);
    assert.equal(valueOf(text, 'kasa_poll_failures_total{code="DEVICE_UNREACHABLE"}'), 1);
    assert.equal(valueOf(text, 'kasa_poll_duration_seconds_count{device="127.0.0.2:9999"}'), 12);
    assert.equal(valueOf(text, 'kasa_store_rows_written_total'), 250);
    assert.equal(valueOf(text, 'kasa_retention_rows_rolled_up_total'), 100);
    assert.equal(valueOf(text, 'kasa_retention_rows_deleted_total'), 20);
    assert.equal(valueOf(text, 'kasa_process_resident_memory_bytes'), 100 * MB);
    // A second collection adds nothing that was already told.
    const again = await registry.prometheus();
    assert.equal(valueOf(again, 'kasa_polls_total'), 13);
    assert.equal(valueOf(again, 'kasa_store_rows_written_total'), 250);
    assert.match(registry.contentType, /^text\/plain/);
  });

  it('reads a shared target once and carries its totals across a re-attach', async function () {
    const { registry } = makeRegistry();
    const target = {};
    let hits = 10;
    let starts = 0;
    let stops = 0;
    const source = {
      read(into: SourceFigures) {
        into.cache_entries = 3;
        into.cache_l1_hits_total = hits;
        into.cache_l1_misses_total = 5;
      },
      start() {
        starts += 1;
        return () => (stops += 1);
      },
    };
    const first = registry.addSource(target, source);
    const second = registry.addSource(target, { ...source });
    let text = await registry.prometheus();
    assert.equal(valueOf(text, 'kasa_cache_entries'), 3, 'two nodes of one cache count it once');
    assert.equal(valueOf(text, 'kasa_cache_hits_total{level="l1"}'), 10);
    assert.equal(starts, 1);
    first();
    first();
    second();
    assert.equal(stops, 1);
    assert.equal(registry.targets, 0);
    hits = 14; // the cache lived on through a redeploy
    const third = registry.addSource(target, source);
    text = await registry.prometheus();
    assert.equal(valueOf(text, 'kasa_cache_hits_total{level="l1"}'), 14, 'not 24');
    third();
    text = await registry.prometheus();
    assert.equal(valueOf(text, 'kasa_cache_entries'), 0, 'a removed source leaves no level');
  });

  it('instruments a pool and a writer through their events, and forgets removed devices', async function () {
    const { registry } = makeRegistry();
    const pool = Object.assign(new EventEmitter(), {
      snapshot: () => [
        { key: 'a:9999', online: true },
        { key: 'b:9999', online: false },
      ],
      stats: () => ({ inFlight: 1, queued: 2, retries: 3, connectionsOpened: 4 }),
    }) as unknown as DevicePool;
    const writer = Object.assign(new EventEmitter(), {
      stats: { queueDepth: 17 },
    }) as unknown as ReadingWriter;
    const stopPool = instrumentPool(registry, pool);
    const stopWriter = instrumentWriter(registry, writer, '/nonexistent/kasa.db');
    const stopWriterTwice = instrumentWriter(registry, writer, '/nonexistent/kasa.db');
    pool.emit('request', { key: 'a:9999', latencyMs: 3, ok: true });
    pool.emit('request', { key: 'b:9999', latencyMs: 5000, ok: false, code: 'DEVICE_TIMEOUT' });
    writer.emit('flush', { rows: 8, written: 8, duplicates: 0, ms: 2 });
    const text = await registry.prometheus();
    assert.equal(valueOf(text, 'kasa_polls_total'), 2);
    assert.equal(valueOf(text, 'kasa_devices{state="online"}'), 1);
    assert.equal(valueOf(text, 'kasa_devices{state="offline"}'), 1);
    assert.equal(valueOf(text, 'kasa_pool_requests_in_flight'), 1);
    assert.equal(valueOf(text, 'kasa_pool_requests_queued'), 2);
    assert.equal(valueOf(text, 'kasa_pool_retries_total'), 3);
    assert.equal(valueOf(text, 'kasa_pool_connections_opened_total'), 4);
    assert.equal(valueOf(text, 'kasa_store_rows_written_total'), 8, 'one listener per writer');
    assert.equal(valueOf(text, 'kasa_store_writer_queue_depth'), 17);
    assert.equal(registry.deviceSeries, 2);
    stopPool(true);
    stopWriter();
    stopWriterTwice();
    assert.equal(pool.listenerCount('request'), 0);
    assert.equal(writer.listenerCount('flush'), 0);
    assert.equal(registry.deviceSeries, 0);
    assert.doesNotMatch(await registry.prometheus(), /device="a:9999"/);
  });

  it('runs its event-loop monitors only while a window is open', async function () {
    const { registry } = makeRegistry();
    const one = registry.openWindow();
    const two = registry.openWindow();
    assert.equal(FakeEventLoop.made.filter((made) => made.enabled).length, 3);
    const text = await registry.prometheus();
    assert.equal(valueOf(text, 'kasa_process_event_loop_lag_p99_seconds'), 0.009);
    registry.closeWindow(one);
    registry.closeWindow(one);
    registry.closeWindow(two);
    assert.equal(FakeEventLoop.made.filter((made) => made.enabled).length, 0);
    assert.equal(registry.openWindows, 0);
  });

  it('lives beside other registries: its series are private, never global', function () {
    const a = new MetricsRegistry();
    const b = new MetricsRegistry();
    assert.notEqual(a.registry, b.registry);
    assert.equal(noopRecorder.enabled, false);
    noopRecorder.poll('x', 1);
    noopRecorder.addSource({}, { read: () => undefined })();
  });
});

describe('CrossingWatch', function () {
  it('fires once per upward crossing', function () {
    const watch = new CrossingWatch(500);
    const seen = [100, 600, 700, 650, 400, 501, 502, 500, 900].map((value) => watch.check(value));
    assert.deepEqual(seen, [false, true, false, false, false, true, false, false, true]);
  });
});
