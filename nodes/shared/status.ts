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
