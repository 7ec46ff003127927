import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { type NodeRedProcess, startNodeRed } from '../support/node-red-process';
import { useTempDir } from '../support/temp-dir';

const T0 = Date.parse('2024-05-01T12:00:00Z');

function countRows(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT count(*) FROM readings').pluck().get() as number;
  } finally {
    db.close();
  }
}

async function until<T>(probe: () => T, ok: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let value: T | undefined;
    try {
      value = probe();
      if (ok(value)) return value;
    } catch {
      // Not there yet.
    }
    if (Date.now() > end)
      throw new Error(`condition not met in ${timeoutMs} ms (last: ${String(value)})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('real Node-RED runtime (e2e)', function () {
  this.timeout(60_000);
  let red: NodeRedProcess | null = null;

  // Registered before the temp dir's hook so Node-RED is gone before its database is removed.
  afterEach(async function () {
    await red?.stop();
    red = null;
  });
  const temp = useTempDir('kasa-e2e-');

  it('should load the package, store injected readings and stop cleanly', async function () {
    red = await startNodeRed();
    const file = join(temp.dir(), 'e2e.db');
    const readings = Array.from({ length: 25 }, (_, i) => ({
      device_id: `plug-${i % 5}`,
      ts: T0 + i * 1000,
      power_w: 10 + i / 10,
    }));
    await red.deploy([
      { id: 'tab', type: 'tab', label: 'e2e' },
      { id: 'db', type: 'kasa-sqlite-db', name: '', path: file },
      {
        id: 'inject',
        type: 'inject',
        z: 'tab',
        x: 100,
        y: 100,
        props: [{ p: 'payload' }],
        payload: JSON.stringify(readings),
        payloadType: 'json',
        repeat: '',
        once: true,
        onceDelay: 0.1,
        wires: [['store']],
      },
      {
        id: 'store',
        type: 'kasa-sqlite-store',
        z: 'tab',
        x: 300,
        y: 100,
        name: '',
        db: 'db',
        mode: 'store',
        batchSize: 1000,
        flushInterval: 0.2,
        wires: [],
      },
    ]);
    const flows = await red.getFlows();
    assert.ok(flows.some((node) => (node as { type: string }).type === 'kasa-sqlite-store'));
    assert.equal(
      await until(
        () => countRows(file),
        (n) => n === 25,
        10_000,
      ),
      25,
    );
    const userDir = red.userDir;
    await red.stop();
    const log = red.log();
    red = null;
    assert.ok(!existsSync(userDir), 'the temp user dir is removed on stop');
    assert.match(log, /Stopped flows/);
    assert.match(log, /Server now running at http:\/\/127\.0\.0\.1:/);
    assert.doesNotMatch(log, /\[error\]/);
    assert.doesNotMatch(log, /Waiting for missing types/);
    assert.equal(countRows(file), 25);
  });
});
