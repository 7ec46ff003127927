import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';

export type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow };

/** The npm name, which prefixes every message-catalog namespace of this package. */
export const MODULE_NAME = '@kasa-monitor/node-red-kasa-monitor';

export type SendFunction = (msg: NodeMessage | (NodeMessage | NodeMessage[] | null)[]) => void;
