import { MetricsRegistry } from '../../lib/metrics/registry';
import { noopRecorder, type MetricsRecorder } from '../../lib/metrics/recorder';
import { kasaMonitorSettings } from './settings';
import type { NodeAPI } from './types';

/**
 * The runtime's one metrics registry. Node-RED runs one runtime per process and loads this
 * module once, so a module-level holder is the per-runtime instance: redeploys reuse it (its
 * series are never registered twice) and nodes that go take their sources with them.
 */
let runtimeMetrics: MetricsRegistry | null = null;

/** False when settings.js says `kasaMonitor: { metrics: false }`. */
export function metricsEnabled(RED: NodeAPI): boolean {
  return kasaMonitorSettings(RED).metrics !== false;
}

/** The registry, created on first use; null when metrics are switched off. */
export function metricsRegistry(RED: NodeAPI): MetricsRegistry | null {
  if (!metricsEnabled(RED)) return null;
  runtimeMetrics ??= new MetricsRegistry();
  return runtimeMetrics;
}

/** What a node records into: the registry, or a no-op when metrics are switched off. */
export function metricsOf(RED: NodeAPI): MetricsRecorder {
  return metricsRegistry(RED) ?? noopRecorder;
}
