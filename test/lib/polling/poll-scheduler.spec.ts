import assert from 'node:assert/strict';

import { parseDeviceEntry, type PollTarget } from '../../../lib/polling/device-entries';
import { PollScheduler, type IntervalTimers } from '../../../lib/polling/poll-scheduler';

/** Interval timers driven by hand: `advance(ms)` fires what falls due, in order. */
class ManualTimers implements IntervalTimers {
  now = 0;
  private next = 1;
  readonly active = new Map<number, { callback: () => void; ms: number; due: number }>();

  setInterval(callback: () => void, ms: number): number {
    const id = this.next++;
    this.active.set(id, { callback, ms, due: this.now + ms });
    return id;
  }

  clearInterval(handle: unknown): void {
    this.active.delete(handle as number);
  }

  /** Fires what falls due within `ms`, letting finished polls settle between ticks. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      const due = [...this.active.values()]
        .filter((timer) => timer.due <= end)
        .sort((a, b) => a.due - b.due)[0];
      if (due === undefined) break;
      this.now = due.due;
      due.due += due.ms;
      due.callback();
    }
    this.now = end;
  }
}

const targets = ['127.0.0.2', '127.0.0.3', '127.0.0.4'].map(parseDeviceEntry);

describe('PollScheduler', function () {
  it('polls targets sharing an interval as one cycle', async function () {
    const timers = new ManualTimers();
    const cycles: string[][] = [];
    const scheduler = new PollScheduler({
      targets,
      intervalMs: 30_000,
      timers,
      poll: (due) => {
        cycles.push(due.map((target) => target.host));
        return Promise.resolve();
      },
    });
    scheduler.start();
    await timers.advance(90_000);
    assert.equal(cycles.length, 3);
    assert.deepEqual(cycles[0], ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    void scheduler.stop();
    await timers.advance(90_000);
    assert.equal(cycles.length, 3, 'no polls after stop');
    assert.equal(timers.active.size, 0);
  });

  it('gives one target its own interval and leaves the others alone', async function () {
    const timers = new ManualTimers();
    const polls = new Map<string, number>();
    const scheduler = new PollScheduler({
      targets,
      intervalMs: 60_000,
      timers,
      poll: (due) => {
        for (const target of due) polls.set(target.host, (polls.get(target.host) ?? 0) + 1);
        return Promise.resolve();
      },
    });
    scheduler.start();
    scheduler.setInterval(10_000, [targets[1]!.key]);
    await timers.advance(120_000);
    assert.equal(polls.get('127.0.0.3'), 12);
    assert.equal(polls.get('127.0.0.2'), 2);
    assert.equal(scheduler.intervalOf(targets[0]!.key), 60_000);
    void scheduler.stop();
  });

  it('keeps the phase of other groups when one target changes interval', async function () {
    const timers = new ManualTimers();
    const polls: { at: number; hosts: string[] }[] = [];
    const scheduler = new PollScheduler({
      targets,
      intervalMs: 30_000,
      timers,
      poll: (due) => {
        polls.push({ at: timers.now, hosts: due.map((target) => target.host) });
        return Promise.resolve();
      },
    });
    scheduler.start();
    // Changes more often than the 30 s group ticks: restarting its timer would starve it.
    for (let step = 0; step < 6; step += 1) {
      await timers.advance(10_000);
      scheduler.setInterval(step % 2 === 0 ? 5_000 : 7_000, [targets[2]!.key]);
    }
    const slow = polls.filter((poll) => poll.hosts.includes('127.0.0.2'));
    assert.deepEqual(
      slow.map((poll) => poll.at),
      [30_000, 60_000],
    );
    assert.deepEqual(slow[0]!.hosts, ['127.0.0.2', '127.0.0.3'], 'the moved target left the group');
    assert.ok(polls.filter((poll) => poll.hosts.includes('127.0.0.4')).length >= 8);
    await scheduler.stop();
    assert.equal(timers.active.size, 0);
  });

  it('never starts a second poll of a target whose previous poll is still running (case-008)', async function () {
    const timers = new ManualTimers();
    let release: () => void = () => undefined;
    let started = 0;
    const scheduler = new PollScheduler({
      targets: [targets[0]!],
      intervalMs: 2_000,
      timers,
      poll: () => {
        started += 1;
        return new Promise<void>((resolve) => (release = resolve));
      },
    });
    scheduler.start();
    await timers.advance(30_000);
    assert.equal(started, 1, '15 ticks while the first poll hangs start nothing new');
    release();
    await new Promise((resolve) => setImmediate(resolve));
    await timers.advance(2_000);
    assert.equal(started, 2);
    release();
    await scheduler.stop();
  });

  it('polls a released target again at its next tick while a slow one of its group is still out', async function () {
    const timers = new ManualTimers();
    const polled: string[] = [];
    let releaseSlow: () => void = () => undefined;
    const scheduler = new PollScheduler({
      targets: [targets[0]!, targets[1]!],
      intervalMs: 1_000,
      timers,
      poll: async (due, _sink, done) => {
        await Promise.all(
          due.map(async (target) => {
            polled.push(target.host);
            if (target === targets[1])
              await new Promise<void>((resolve) => (releaseSlow = resolve));
            done(target);
          }),
        );
      },
    });
    scheduler.start();
    await timers.advance(3_000);
    assert.deepEqual(
      polled,
      ['127.0.0.2', '127.0.0.3', '127.0.0.2', '127.0.0.2'],
      'the fast target keeps its schedule, the slow one is not polled twice',
    );
    releaseSlow();
    await scheduler.stop();
  });

  it('stops timers of targets set to interval 0 and passes the sink of on-demand polls through', async function () {
    const timers = new ManualTimers();
    const sinks: (string | undefined)[] = [];
    const scheduler = new PollScheduler<string>({
      targets,
      intervalMs: 5_000,
      timers,
      poll: (_due: PollTarget[], sink) => {
        sinks.push(sink);
        return Promise.resolve();
      },
    });
    scheduler.start();
    scheduler.setInterval(0);
    await timers.advance(60_000);
    assert.equal(timers.active.size, 0);
    await scheduler.pollNow([targets[2]!], 'input-1');
    assert.deepEqual(sinks, ['input-1']);
    await scheduler.stop();
  });
});
