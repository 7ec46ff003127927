import type { SharedPool } from '../../lib/pool/shared-pool';
import type { Node } from './types';

/** What consumers (kasa-poll) see of a kasa-device-pool config node. */
export interface DevicePoolNode extends Node {
  shared: SharedPool;
  register(user: Node): void;
  deregister(user: Node, removed: boolean): void;
}
