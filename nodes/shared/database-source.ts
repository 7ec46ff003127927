import type { DatabaseSource } from '../../lib/store/registry';
import type { Translate } from './i18n';
import { outOfService } from './lifecycle';
import type { Node, NodeAPI } from './types';

/**
 * The database of a node's kasa-sqlite-db config node, or null after telling the user (red
 * status and error, from the node's own `status.no-config` and `errors.missing-config` texts).
 */
export function databaseOf(
  RED: NodeAPI,
  node: Node,
  configId: string,
  t: Translate,
): DatabaseSource | null {
  const config = RED.nodes.getNode(configId) as (Node & { database?: DatabaseSource }) | null;
  if (config?.database !== undefined) return config.database;
  outOfService(node, t('status.no-config'), t('errors.missing-config'), t);
  return null;
}
