import assert from 'node:assert/strict';

import {
  AdaptiveIntervals,
  DEFAULT_POLICY,
  assessWindow,
  normalisePolicy,
  type IntervalChange,
} from '../../../lib/polling/adaptive-interval';

const policy = normalisePolicy();

/** Values with the given mean and population standard deviation: mean ± sd, alternating. */
const spread = (mean: number, sd: number, n = 10) =>
  Array.from({ length: n }, (_, index) => (index % 2 === 0 ? mean + sd : mean - sd));

/** A clock the test moves by hand, ms. */
const manualClock = (start = 1_700_000_000_000) => {
  const clock = { t: start, now: () => clock.t };
  return clock;
};

function assertSane(ms: number, bounds = policy): void {
  assert.ok(Number.isInteger(ms), `${ms} is a whole number of ms`);
  assert.ok(ms >= bounds.minMs && ms <= bounds.maxMs, `${ms} within [min, max]`);
}

describe('adaptive interval policy', function () {
  describe('assessWindow()', function () {
    it('polls power that does not change at all 4x slower, capped at the maximum', function () {
      const flat = [100, 100.2, 99.9, 100.1, 100, 100, 100.3, 100, 99.8, 100];
      assert.deepEqual(
        { ...assessWindow(flat, policy), cv: null },
        { reason: 'no-change', intervalMs: 240_000, cv: null },
      );
      const capped = normalisePolicy({ maxMs: 200_000 });
      assert.equal(assessWindow(flat, capped).intervalMs, 200_000);
    });

    it('uses the true coefficient of variation (sd / mean), not variance over mean squared', function () {
      // CV 0.05: variance / mean² would be 0.0025, below the low threshold of 0.01.
      const moderate = assessWindow(spread(100, 5), policy);
      assert.equal(moderate.reason, 'normal-variation');
      assert.equal(moderate.intervalMs, 60_000);
      assert.ok(Math.abs(moderate.cv! - 0.05) < 1e-12, `cv ${moderate.cv}`);
      // CV 0.2: variance / mean² would be 0.04, between the thresholds.
      const busy = assessWindow(spread(100, 20), policy);
      assert.equal(busy.reason, 'high-variation');
      assert.equal(busy.intervalMs, 30_000);
      assert.ok(Math.abs(busy.cv! - 0.2) < 1e-12, `cv ${busy.cv}`);
      // CV 0.005, with a spread of 10 W, wider than the deadband.
      const steady = assessWindow(spread(1000, 5), policy);
      assert.equal(steady.reason, 'low-variation');
      assert.equal(steady.intervalMs, 120_000);
    });

    it('never yields NaN, Infinity or an interval outside [min, max]', function () {
      const cases: [string, number[]][] = [
        ['no values', []],
        ['a single reading', [42]],
        ['a single zero', [0]],
        ['all zero', [0, 0, 0, 0]],
        ['mean zero with spread', [-5, 5, -5, 5]],
        ['tiny mean', [1e-12, -1e-12, 3, -3]],
        ['non-finite values', [NaN, Infinity, -Infinity, 10]],
        ['huge values', [1e308, -1e308, 1e308]],
      ];
      for (const [name, values] of cases) {
        const result = assessWindow(values, policy);
        assertSane(result.intervalMs);
        assert.ok(result.cv === null || Number.isFinite(result.cv), `${name}: cv ${result.cv}`);
      }
      assert.equal(assessWindow([42], policy).reason, 'too-few-readings');
      assert.equal(assessWindow([42], policy).intervalMs, 60_000);
      assert.equal(assessWindow([0, 0, 0, 0], policy).reason, 'no-change');
      const zeroMean = assessWindow([-5, 5, -5, 5], policy);
      assert.deepEqual(zeroMean, { reason: 'high-variation', intervalMs: 30_000, cv: null });
    });

    it('keeps every interval within bounds whatever the settings', function () {
      const odd = normalisePolicy({
        baseMs: NaN,
        minMs: 400_000,
        maxMs: 100_000,
        lowCv: 0.5,
        highCv: 0.05,
        window: 0.4,
        hold: -3,
        deadbandW: -1,
        margin: 5,
      });
      assert.deepEqual(odd, {
        baseMs: 400_000,
        minMs: 400_000,
        maxMs: 400_000,
        lowCv: 0.05,
        highCv: 0.5,
        window: 2,
        deadbandW: 0,
        hold: 1,
        margin: 0.9,
      });
      const floor = normalisePolicy({ minMs: 10, baseMs: 20, maxMs: 1e12 });
      assert.equal(floor.minMs, 1000, 'kasa-poll accepts no interval under 1 s');
      assert.equal(floor.maxMs, 86_400_000, 'nor over a day');
      for (const values of [[1, 1], spread(100, 50), [0, 0]]) {
        for (const settings of [odd, floor, DEFAULT_POLICY]) {
          assertSane(assessWindow(values, settings).intervalMs, settings);
        }
      }
    });
  });

  describe('AdaptiveIntervals', function () {
    const settings = { window: 3, hold: 3 };

    function feed(intervals: AdaptiveIntervals, id: string, values: unknown[]) {
      return values.map((value) => intervals.observe(id, value));
    }

    it("sends a device's first interval when its window is full, then only changes", function () {
      const intervals = new AdaptiveIntervals({ policy: settings, clock: manualClock() });
      const changes = feed(intervals, 'plug', [50, 50, 50, 50, 50, 50]);
      assert.deepEqual(changes.slice(0, 2), [null, null], 'no decision before the window fills');
      assert.deepEqual(changes[2], {
        device_id: 'plug',
        interval_ms: 240_000,
        previous_ms: null,
        cv: 0,
        reason: 'no-change',
      } satisfies IntervalChange);
      assert.deepEqual(changes.slice(3), [null, null, null], 'nothing while it stays the same');
      assert.equal(intervals.intervalOf('plug'), 240_000);
    });

    it('does not flap between two intervals when the variation hovers at a threshold', function () {
      // Windows [100, 124, 100] (CV 0.105) and [124, 100, 124] (CV 0.098) alternate on either
      // side of the high threshold: every reading calls for the other interval.
      const hovering = Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? 100 : 124));
      const changesWith = (policy: { hold: number; margin: number }) =>
        feed(
          new AdaptiveIntervals({ policy: { window: 3, ...policy }, clock: manualClock() }),
          'plug',
          hovering,
        ).filter((change) => change !== null);
      const twitchy = changesWith({ hold: 1, margin: 0 });
      assert.equal(twitchy.length, 18, 'without hysteresis: a change on every reading');
      assert.deepEqual(
        twitchy.slice(0, 3).map((change) => change.interval_ms),
        [30_000, 60_000, 30_000],
      );
      // Each of the two mechanisms alone keeps the first decision, and so do both (the default).
      for (const policy of [
        { hold: 3, margin: 0 },
        { hold: 1, margin: 0.2 },
        { hold: 3, margin: 0.2 },
      ]) {
        const changes = changesWith(policy);
        assert.equal(changes.length, 1, `${JSON.stringify(policy)}: ${JSON.stringify(changes)}`);
        assert.equal(changes[0]!.interval_ms, 30_000);
      }
    });

    it('widens only the thresholds of the band a device is in', function () {
      const windowCv = (cv: number) => spread(100, 100 * cv);
      // Leaving the current band takes a threshold crossed by 20 %; with no band yet, the
      // plain thresholds apply.
      assert.equal(
        assessWindow(windowCv(0.11), policy, 'normal-variation').reason,
        'normal-variation',
      );
      assert.equal(assessWindow(windowCv(0.11), policy).reason, 'high-variation');
      assert.equal(
        assessWindow(windowCv(0.13), policy, 'normal-variation').reason,
        'high-variation',
      );
      assert.equal(assessWindow(windowCv(0.09), policy, 'high-variation').reason, 'high-variation');
      assert.equal(
        assessWindow(windowCv(0.07), policy, 'high-variation').reason,
        'normal-variation',
      );
      const nearlyFlat = [100, 100.55, 100, 100.55];
      assert.equal(assessWindow(nearlyFlat, policy).reason, 'low-variation');
      assert.equal(assessWindow(nearlyFlat, policy, 'no-change').reason, 'no-change');
    });

    it('changes after exactly `hold` evaluations when the load really changes', function () {
      const calm = new AdaptiveIntervals({ policy: settings, clock: manualClock() });
      feed(calm, 'plug', [100, 100, 100]);
      const busy = feed(calm, 'plug', [10, 500, 10, 500]);
      assert.deepEqual(
        busy.map((change) => change?.interval_ms ?? null),
        [null, null, 30_000, null],
      );
      assert.equal(busy[2]!.reason, 'high-variation');
      assert.equal(busy[2]!.previous_ms, 240_000);
    });

    it('ignores missing and non-numeric power without producing NaN', function () {
      const intervals = new AdaptiveIntervals({ policy: settings, clock: manualClock() });
      const junk = [undefined, null, 'NaN', '12', NaN, Infinity, {}, true];
      assert.deepEqual(
        feed(intervals, 'plug', junk),
        junk.map(() => null),
      );
      assert.equal(intervals.size, 0, 'a device seen only with junk is not remembered');
      const changes = feed(intervals, 'plug', [0, null, 0, 'x', 0]);
      const change = changes[4]!;
      assert.equal(change.reason, 'no-change');
      assert.equal(change.cv, null, 'mean 0: no CV rather than NaN');
      assert.equal(change.interval_ms, 240_000);
      assert.deepEqual(intervals.counts(), { fast: 0, base: 0, slow: 1, learning: 0 });
    });

    it('counts devices at fast, base and slow intervals and those still learning', function () {
      const intervals = new AdaptiveIntervals({ policy: settings, clock: manualClock() });
      feed(intervals, 'flat', [5, 5, 5]);
      feed(intervals, 'busy', [10, 500, 10]);
      feed(intervals, 'normal', [100, 105, 100]);
      feed(intervals, 'new', [1]);
      assert.equal(intervals.intervalOf('normal'), 60_000);
      assert.deepEqual(intervals.counts(), { fast: 1, base: 1, slow: 1, learning: 1 });
      intervals.clear();
      assert.equal(intervals.size, 0);
      assert.deepEqual(intervals.counts(), { fast: 0, base: 0, slow: 0, learning: 0 });
    });

    it('forgets devices not seen for a long time and keeps at most maxDevices', function () {
      const clock = manualClock();
      const intervals = new AdaptiveIntervals({
        policy: settings,
        clock,
        forgetAfterMs: 60_000,
        maxDevices: 3,
      });
      feed(intervals, 'old', [5, 5, 5]);
      clock.t += 30_000;
      feed(intervals, 'recent', [5]);
      clock.t += 30_001;
      intervals.observe('recent', 5);
      assert.equal(intervals.intervalOf('old'), undefined, 'unseen for over a minute');
      assert.equal(intervals.size, 1);
      // Coming back, a forgotten device starts afresh: its first decision has no previous.
      const again = feed(intervals, 'old', [5, 5, 5]);
      assert.equal(again[2]!.previous_ms, null);
      for (const id of ['a', 'b', 'c']) intervals.observe(id, 1);
      assert.equal(intervals.size, 3);
      assert.equal(intervals.intervalOf('recent'), undefined, 'the longest unseen went first');
    });
  });
});
