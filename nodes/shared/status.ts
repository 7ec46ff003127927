import type { Translate } from './i18n';
import type { Node } from './types';

/** DESIGN.md's status vocabulary: one function per state, so every node speaks it the same way. */
export const status = {
  ok: (node: Node, text: string) => node.status({ fill: 'green', shape: 'dot', text }),
  degraded: (node: Node, text: string) => node.status({ fill: 'yellow', shape: 'ring', text }),
  /** Starting up or (re)connecting: the same yellow ring as degraded. */
  connecting: (node: Node, text: string) => node.status({ fill: 'yellow', shape: 'ring', text }),
  error: (node: Node, text: string) => node.status({ fill: 'red', shape: 'ring', text }),
  idle: (node: Node, text: string) => node.status({ fill: 'grey', shape: 'dot', text }),
  clear: (node: Node) => node.status({}),
};

/**
 * Status redraws at most once per `everyMs` (default 1000) however often they are asked for, so a
 * busy node does not flood the editor; the last request is always honoured once the period is over.
 */
export function throttled(show: () => void, everyMs = 1000): { request(): void; stop(): void } {
  let timer: NodeJS.Timeout | null = null;
  let stale = false;
  const request = (): void => {
    if (timer !== null) {
      stale = true;
      return;
    }
    show();
    timer = setTimeout(() => {
      timer = null;
      if (stale) {
        stale = false;
        request();
      }
    }, everyMs);
  };
  const stop = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  return { request, stop };
}

type Show = (node: Node, text: string) => void;

/**
 * What a node refused: messages it answered with an error, or (for a store) items it left out.
 * The error reaches the debug sidebar and Catch nodes; this keeps it visible on the canvas too:
 * once something was refused the status counts it, and it is yellow from a message with refusals
 * until the node takes a message whole again.
 */
export class Refusals {
  private refused = 0;
  private lastRefused = false;

  /** @param redraw shows the node's status again when the refusal state changes */
  constructor(private readonly redraw: () => void) {}

  /** Called for every message with what of it was refused: 0 when it was taken whole. */
  record(refused: number): void {
    const changed = refused > 0 || this.lastRefused;
    this.refused += refused;
    this.lastRefused = refused > 0;
    if (changed) this.redraw();
  }

  /** How many were refused so far. */
  get count(): number {
    return this.refused;
  }

  /** Changes whenever the status should, for nodes that redraw only on change. */
  get key(): string {
    return `${this.refused}${this.lastRefused ? '!' : ''}`;
  }

  /**
   * Shows `text` the way `show` would, with the refused count added once there is one (through
   * the catalog entry `status.with-refused`, `__status__` and `__refused__`), in yellow instead of
   * green or grey while the last message had refusals.
   */
  show(node: Node, show: Show, text: string, translate: Translate): void {
    if (this.refused === 0) return show(node, text);
    const full = translate('status.with-refused', { status: text, refused: this.refused });
    const calm = show === status.ok || show === status.idle;
    (this.lastRefused && calm ? status.degraded : show)(node, full);
  }
}
