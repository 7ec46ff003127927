import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

import { type DatabaseLease, type DatabaseSource, databases } from '../lib/store/registry';
import { describeError } from './shared/errors';
import { translator } from './shared/i18n';
import { onClose } from './shared/lifecycle';
import { nodeLogger } from './shared/logger';
import type { Node, NodeAPI, NodeDef } from './shared/types';

interface SqliteDbDef extends NodeDef {
  path?: string;
}

/** What consumers (kasa-sqlite-store) see of a kasa-sqlite-db config node. */
interface SqliteDbNode extends Node {
  database: DatabaseSource;
}

const DEFAULT_FILE = 'kasa-monitor.db';

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'kasa-sqlite-db');

  function KasaSqliteDb(this: SqliteDbNode, def: SqliteDbDef): void {
    RED.nodes.createNode(this, def);
    const userDir = (RED.settings as { userDir?: string }).userDir ?? join(homedir(), '.node-red');
    const file = resolve(userDir, def.path?.trim() || DEFAULT_FILE);
    const logger = nodeLogger(this);
    this.database = {
      path: file,
      acquire: (options) => databases.acquire(file, options, logger),
    };

    // Holding a lease for the node's lifetime opens the file now, so a bad path is reported at
    // deploy time, and keeps the connection warm while store nodes are redeployed.
    let own: DatabaseLease | null = null;
    try {
      own = this.database.acquire();
    } catch (error) {
      this.error(describeError(RED, error));
    }

    onClose(this, () => {
      const lost = own?.release() ?? 0;
      own = null;
      if (lost > 0) this.error(t('errors.lost', { rows: lost, path: file }));
    });
  }

  RED.nodes.registerType('kasa-sqlite-db', KasaSqliteDb);
};
