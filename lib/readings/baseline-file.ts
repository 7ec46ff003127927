import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

import type { Logger } from '../types';
import type { EnergyBaseline, EnergyTracker } from './energy';

/**
 * Keeps an EnergyTracker's baselines in a small JSON file, so the first reading after a restart
 * gets its energy from the last reading before it instead of starting over. Saves are coalesced
 * (at most one write per `delayMs`) and flushed synchronously on close.
 */
export class BaselineFile {
  private timer: NodeJS.Timeout | null = null;

  /**
   * @param path - the JSON file; its folder is created when missing
   * @param delayMs - how long changes may wait before they are written; default 2000
   */
  constructor(
    private readonly path: string,
    private readonly tracker: EnergyTracker,
    private readonly logger: Logger,
    private readonly delayMs = 2000,
  ) {}

  /** Seeds the tracker from the file; a missing or unreadable file starts empty. */
  load(): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn(`energy baselines in ${this.path} could not be read: ${String(error)}`);
      }
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    for (const [deviceId, baseline] of Object.entries(parsed as Record<string, unknown>)) {
      if (isBaseline(baseline)) this.tracker.seed(deviceId, baseline);
    }
  }

  /** Notes that baselines changed; they are written within `delayMs`. */
  changed(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.write();
    }, this.delayMs);
    this.timer.unref();
  }

  /** Writes pending changes now and stops the timer. */
  flush(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.write();
  }

  private write(): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const temporary = `${this.path}.tmp`;
      writeFileSync(temporary, JSON.stringify(this.tracker.snapshot()));
      renameSync(temporary, this.path);
    } catch (error) {
      this.logger.warn(`energy baselines could not be saved to ${this.path}: ${String(error)}`);
    }
  }
}

function isBaseline(value: unknown): value is EnergyBaseline {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<EnergyBaseline>;
  return (
    typeof candidate.total_wh === 'number' &&
    Number.isFinite(candidate.total_wh) &&
    typeof candidate.ts === 'number' &&
    (candidate.on_time_s === null || typeof candidate.on_time_s === 'number')
  );
}
