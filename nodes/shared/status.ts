import type { Node } from './types';

/** DESIGN.md's status vocabulary: one function per state, so every node speaks it the same way. */
export const status = {
  ok: (node: Node, text: string) => node.status({ fill: 'green', shape: 'dot', text }),
  degraded: (node: Node, text: string) => node.status({ fill: 'yellow', shape: 'ring', text }),
  error: (node: Node, text: string) => node.status({ fill: 'red', shape: 'ring', text }),
  idle: (node: Node, text: string) => node.status({ fill: 'grey', shape: 'dot', text }),
  clear: (node: Node) => node.status({}),
};
