import assert from 'node:assert/strict';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { type NodeRedProcess, startNodeRed } from '../support/node-red-process';
import { useTempDir } from '../support/temp-dir';
import { waitFor } from '../support/waiting';

const T0 = Date.parse('2024-05-01T12:00:00Z');

function countRows(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT count(*) FROM readings').pluck().get() as number;
  } finally {
    db.close();
  }
}

describe('numeric settings from environment variables (real Node-RED)', function () {
  this.timeout(60_000);
  let red: NodeRedProcess | null = null;
  afterEach(async function () {
    await red?.stop();
    red = null;
  });
  const temp = useTempDir('kasa-env-');

  it('takes ${VAR} values as numbers and names a setting whose variable is unset or not a number', async function () {
    const file = join(temp.dir(), 'env.db');
    red = await startNodeRed({
      env: { KASA_BATCH: '3', KASA_FLUSH: '3600', KASA_THREADS: 'lots' },
      flows: [
        { id: 'tab', type: 'tab', label: 'env' },
        { id: 'db', type: 'kasa-sqlite-db', name: '', path: file },
        {
          id: 'pool',
          type: 'kasa-device-pool',
          name: '',
          maxInFlight: '${KASA_THREADS}',
          timeout: 5,
          retries: 2,
          maxPowerW: 4000,
          minPollInterval: 0,
        },
        {
          id: 'poll',
          x: 100,
          y: 100,
          type: 'kasa-poll',
          z: 'tab',
          pool: 'pool',
          devices: '127.0.0.2',
          interval: 0,
          output: 'reading',
          wires: [[]],
        },
        {
          id: 'cache',
          x: 250,
          y: 100,
          type: 'kasa-cache',
          z: 'tab',
          cache: 'env',
          mode: 'set',
          property: 'topic',
          maxEntries: 1000,
          ttl: '${KASA_TTL_NOT_SET}',
          wires: [[]],
        },
        {
          id: 'inject',
          x: 400,
          y: 100,
          type: 'inject',
          z: 'tab',
          props: [{ p: 'payload' }],
          payload: JSON.stringify(
            [0, 1, 2].map((i) => ({ device_id: `plug-${i}`, ts: T0 + i * 1000, power_w: 5 })),
          ),
          payloadType: 'json',
          repeat: '',
          once: true,
          onceDelay: 0.1,
          wires: [['store']],
        },
        {
          id: 'store',
          x: 550,
          y: 100,
          type: 'kasa-sqlite-store',
          z: 'tab',
          db: 'db',
          mode: 'store',
          batchSize: '${KASA_BATCH}',
          flushInterval: '${KASA_FLUSH}',
          wires: [],
        },
      ],
    });
    const running = red;
    // With a flush interval of an hour, only a batch size of 3 writes the three readings now.
    const rows = () => {
      try {
        return countRows(file);
      } catch {
        return 0;
      }
    };
    await waitFor(() => rows() === 3, 20_000, `three rows written; log:\n${running.log()}`);
    await waitFor(() => /KASA_TTL_NOT_SET/.test(running.log()), 10_000, 'the unset variable');
    assert.match(
      running.log(),
      /Setting ttl is \$\{KASA_TTL_NOT_SET\}, but the environment variable KASA_TTL_NOT_SET is not set: using 60/,
    );
    // Both store settings were taken (an unusable one would be named in the log).
    assert.doesNotMatch(running.log(), /Setting (batchSize|flushInterval)/);
    assert.match(
      running.log(),
      /Setting maxInFlight is "lots", not a whole number from 1 to 1000: using 8/,
    );
  });
});
