import { EventEmitter } from 'node:events';

import { KasaError } from '../errors';
import type { SharedPool } from '../pool/shared-pool';
import type { DeviceDay, DeviceInfo, Reading } from '../types';
import { parseDeviceEntry, type PollTarget } from './device-entries';
import { pollTarget, type PollNotice, type PollOutcome } from './poll-device';
import { PollScheduler, type IntervalTimers } from './poll-scheduler';

/** A target's standing as the user sees it. */
export type TargetState = 'unknown' | 'ok' | 'failing';

/** Codes that mean the device as a whole could not be read (as opposed to one bad sample). */
const DEVICE_FAILURES: ReadonlySet<string> = new Set([
  'DEVICE_TIMEOUT',
  'DEVICE_UNREACHABLE',
  'DEVICE_CLOSED',
  'DEVICE_BAD_REPLY',
  'DEVICE_ERROR_REPLY',
  'DEVICE_BACKING_OFF',
  'NO_SUCH_OUTLET',
  'POOL_CLOSED',
]);

/** The readings and device rows of one poll cycle. */
export interface PollCycle {
  readings: Reading[];
  devices: DeviceInfo[];
  /** Whole days of an outage, filled from the devices' own day statistics. */
  daily: DeviceDay[];
}

export interface PollerEvents<Sink> {
  /** One cycle's results, with the sink the cycle was started with (undefined for timers). */
  cycle: [cycle: PollCycle, sink: Sink | undefined];
  /** A target started failing (or failed for a new reason); emitted once per change. */
  failing: [target: PollTarget, error: KasaError];
  recovered: [target: PollTarget];
  /** A sample rejected or an outlet that did not answer, while the device as a whole worked. */
  problem: [target: PollTarget, error: KasaError];
  notice: [target: PollTarget, notice: PollNotice];
}

export interface PollerOptions {
  shared: SharedPool;
  /** Who polls (a kasa-poll node's id): energy is booked per consumer. Default ''. */
  consumer?: string;
  targets: readonly PollTarget[];
  /** Interval of every target until changed, ms; 0 polls only on request. */
  intervalMs: number;
  timers?: IntervalTimers;
}

/**
 * kasa-poll's engine: schedules its targets, polls them through the shared pool, and turns
 * results into cycles and once-per-change failure reports.
 */
export class Poller<Sink = undefined> extends EventEmitter<PollerEvents<Sink>> {
  private readonly scheduler: PollScheduler<Sink>;
  private readonly states = new Map<string, { state: TargetState; code: string | null }>();
  /** Hand-overs of timer cycles still waiting for a straggler. */
  private readonly openCycles = new Set<() => void>();
  /** Device ids each target's readings came under: its plug, or the outlets of its strip. */
  private readonly yielded = new Map<string, Set<string>>();
  /** Intervals asked for single outlets of a target that polls a whole strip, ms by device id. */
  private readonly askedByOutlet = new Map<string, Map<string, number>>();

  constructor(private readonly options: PollerOptions) {
    super();
    for (const target of options.targets)
      this.states.set(target.key, { state: 'unknown', code: null });
    this.scheduler = new PollScheduler<Sink>({
      targets: options.targets,
      intervalMs: options.intervalMs,
      timers: options.timers,
      poll: (targets, sink, done) => this.pollCycle(targets, sink, done),
    });
  }

  get targets(): readonly PollTarget[] {
    return this.options.targets;
  }

  /** Starts the timers and polls every scheduled target once straight away. */
  start(): void {
    this.scheduler.start();
    const scheduled = this.targets.filter(
      (target) => (this.scheduler.intervalOf(target.key) ?? 0) > 0,
    );
    if (scheduled.length > 0) void this.scheduler.pollNow(scheduled);
  }

  stop(): Promise<void> {
    return this.scheduler.stop();
  }

  pollNow(targets: readonly PollTarget[], sink: Sink): Promise<void> {
    return this.scheduler.pollNow(targets, sink);
  }

  setInterval(intervalMs: number, targets?: readonly PollTarget[]): void {
    for (const target of targets ?? this.targets) this.askedByOutlet.delete(target.key);
    this.scheduler.setInterval(
      intervalMs,
      targets?.map((target) => target.key),
    );
  }

  /**
   * Sets the interval of the targets `name` resolves to. When it is the device id of one outlet
   * of a strip polled as a whole, the strip keeps the shortest interval asked for any of its
   * outlets (0 only when all asked for 0), so a quiet outlet cannot slow down a busy one.
   * @returns the targets whose interval was set
   */
  setIntervalOf(name: string, intervalMs: number): PollTarget[] {
    const targets = this.resolve(name);
    const plain: PollTarget[] = [];
    for (const target of targets) {
      const ids = this.yielded.get(target.key);
      if (ids === undefined || ids.size < 2 || !ids.has(name)) {
        plain.push(target);
        continue;
      }
      const asked = this.askedByOutlet.get(target.key) ?? new Map<string, number>();
      this.askedByOutlet.set(target.key, asked.set(name, intervalMs));
      const running = [...asked.values()].filter((ms) => ms > 0);
      this.scheduler.setInterval(running.length > 0 ? Math.min(...running) : 0, [target.key]);
    }
    if (plain.length > 0) this.setInterval(intervalMs, plain);
    return targets;
  }

  intervalOf(target: PollTarget): number | undefined {
    return this.scheduler.intervalOf(target.key);
  }

  /**
   * The targets a message names: by entry (`host`, `host:port`, `host:port/N`), by host, or by
   * the device id of a plug or outlet polled through them.
   */
  resolve(name: string): PollTarget[] {
    const learned = this.options.shared.context.learned;
    // An outlet's id starts with its strip's, so outlets polled one by one (host/N) are told
    // apart by the readings each target yielded.
    const exact = this.targets.filter((target) => this.yielded.get(target.key)?.has(name));
    // An entry as the device list has it (`host/N`, without the default port) names its target.
    const entryKey = entryKeyOf(name);
    return this.targets.filter((target) => {
      if (target.key === name || target.key === entryKey || target.host === name) return true;
      if (`${target.host}:${target.port}` === name) return true;
      if (exact.length > 0) return exact.includes(target);
      const device = learned.get(`${target.host}:${target.port}`);
      return device !== undefined && name.startsWith(device.device_id);
    });
  }

  counts(): Record<TargetState, number> {
    const counts: Record<TargetState, number> = { unknown: 0, ok: 0, failing: 0 };
    for (const { state } of this.states.values()) counts[state] += 1;
    return counts;
  }

  /**
   * Polls the targets and emits their results as one cycle. A timer cycle still waiting for a
   * straggler (a dead plug timing out) when the next cycle starts hands over what it has then,
   * so the other targets' readings come out on time and in order; the straggler's result
   * follows in a cycle of its own (case-009).
   */
  private async pollCycle(
    targets: PollTarget[],
    sink: Sink | undefined,
    done: (target: PollTarget) => void,
  ): Promise<void> {
    for (const handOver of [...this.openCycles]) handOver();
    // undefined: still being polled; null: failed as a whole.
    const outcomes: (PollOutcome | null | undefined)[] = targets.map(() => undefined);
    let handedOver = false;
    const handOver = (): void => {
      if (handedOver) return;
      handedOver = true;
      this.openCycles.delete(handOver);
      this.deliver(outcomes, sink, true);
    };
    if (sink === undefined) this.openCycles.add(handOver);
    await Promise.all(
      targets.map(async (target, index) => {
        const outcome = await this.pollOne(target);
        done(target);
        if (!handedOver) outcomes[index] = outcome;
        else this.deliver([outcome], sink, false);
      }),
    );
    handOver();
  }

  private deliver(
    outcomes: readonly (PollOutcome | null | undefined)[],
    sink: Sink | undefined,
    evenIfEmpty: boolean,
  ): void {
    const cycle: PollCycle = { readings: [], devices: [], daily: [] };
    for (const outcome of outcomes) {
      if (outcome === null || outcome === undefined) continue;
      cycle.readings.push(...outcome.readings);
      if (outcome.devices !== null) cycle.devices.push(...outcome.devices);
      cycle.daily.push(...outcome.daily);
    }
    if (!evenIfEmpty && cycle.readings.length === 0 && cycle.devices.length === 0) return;
    if (cycle.readings.length > 0) this.options.shared.baselinesChanged();
    this.emit('cycle', cycle, sink);
  }

  private async pollOne(target: PollTarget): Promise<PollOutcome | null> {
    try {
      const outcome = await pollTarget(this.options.shared.context, target, this.options.consumer);
      this.noteYield(target, outcome);
      for (const notice of outcome.notices) this.emit('notice', target, notice);
      const failure = outcome.problems.find((problem) => DEVICE_FAILURES.has(problem.code));
      for (const problem of outcome.problems) {
        if (problem !== failure) this.emit('problem', target, problem);
      }
      if (failure === undefined) this.markOk(target);
      else this.markFailing(target, failure);
      return outcome;
    } catch (error) {
      this.markFailing(
        target,
        error instanceof KasaError ? error : new KasaError('DEVICE_BAD_REPLY', String(error)),
      );
      return null;
    }
  }

  private noteYield(target: PollTarget, { readings, notices }: PollOutcome): void {
    if (notices.some((notice) => notice.kind === 'identity-changed')) {
      this.yielded.delete(target.key);
      this.askedByOutlet.delete(target.key);
    }
    if (readings.length === 0) return;
    let ids = this.yielded.get(target.key);
    if (ids === undefined) this.yielded.set(target.key, (ids = new Set()));
    for (const reading of readings) ids.add(reading.device_id);
  }

  private markOk(target: PollTarget): void {
    const previous = this.states.get(target.key);
    this.states.set(target.key, { state: 'ok', code: null });
    if (previous?.state === 'failing') this.emit('recovered', target);
  }

  private markFailing(target: PollTarget, error: KasaError): void {
    const previous = this.states.get(target.key);
    // Backing off is the same outage continuing, not news. A poller that meets an outage already
    // under way (after a redeploy) reports the failure that started it, not the wait.
    const backingOff = error.code === 'DEVICE_BACKING_OFF';
    const reported = backingOff && error.cause instanceof KasaError ? error.cause : error;
    const code = backingOff ? (previous?.code ?? reported.code) : error.code;
    this.states.set(target.key, { state: 'failing', code });
    if (previous?.state !== 'failing' || previous.code !== code)
      this.emit('failing', target, reported);
  }
}

/** The normalised key of `name` read as a device entry, or null when it is not one. */
function entryKeyOf(name: string): string | null {
  try {
    return parseDeviceEntry(name).key;
  } catch {
    return null;
  }
}
