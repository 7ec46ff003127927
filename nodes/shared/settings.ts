import { reportSetupError } from './lifecycle';
import { MODULE_NAME, type Node, type NodeAPI } from './types';

/** What a numeric node setting may be; outside it the fallback is used and the user told. */
export interface NumberRule {
  /** Used for a blank setting, and after reporting an unusable one. */
  fallback: number;
  min?: number;
  max?: number;
  integer?: boolean;
}

const UNRESOLVED_ENV = /^\$\{(\S+)\}$/;

/**
 * A numeric setting of a node's configuration. The editor stores numbers, or text such as
 * `${POLL_THREADS}` that Node-RED replaces with the environment variable's value before the node
 * starts, so a string is normal here. Blank gives the fallback silently; an unset variable, a
 * value that is not a number or one outside the rule gives the fallback and one error naming the
 * setting and what was wrong.
 */
export function numberSetting(
  RED: NodeAPI,
  node: Node,
  name: string,
  raw: unknown,
  rule: NumberRule,
): number {
  if (raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === '')) {
    return rule.fallback;
  }
  const text =
    typeof raw === 'string'
      ? raw.trim()
      : typeof raw === 'number'
        ? String(raw)
        : JSON.stringify(raw);
  const value = typeof raw === 'number' ? raw : Number(text);
  const min = rule.min ?? -Infinity;
  const max = rule.max ?? Infinity;
  if (
    Number.isFinite(value) &&
    value >= min &&
    value <= max &&
    (rule.integer !== true || Number.isInteger(value))
  ) {
    return value;
  }
  const unset = UNRESOLVED_ENV.exec(text);
  const key =
    unset !== null ? 'env-not-set' : rule.integer === true ? 'not-a-whole-number' : 'not-a-number';
  reportSetupError(
    node,
    RED._(`${MODULE_NAME}/kasa-device-pool:kasa-device-pool.settings.${key}`, {
      name,
      value: text,
      variable: unset?.[1] ?? '',
      min: String(min),
      max: String(max),
      fallback: String(rule.fallback),
    }),
  );
  return rule.fallback;
}

/** What settings.js may say under `kasaMonitor` (all optional; mostly for tests and tuning). */
export interface KasaMonitorSettings {
  /** `false` switches metrics off. */
  metrics?: unknown;
  /** How long a pool outlives its last user, ms (a redeploy reuses it meanwhile). */
  poolLingerMs?: number;
  /** How long a store waits before trying a database that failed to open again, ms. */
  dbRetryMs?: number;
  /** Stands in for process.memoryUsage in kasa-perf-metrics' memory limit. */
  memoryUsage?: () => { rss: number };
}

export function kasaMonitorSettings(RED: NodeAPI): KasaMonitorSettings {
  return (RED.settings as { kasaMonitor?: KasaMonitorSettings }).kasaMonitor ?? {};
}
