import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { useTempDir } from '../support/temp-dir';
import { helper } from '../support/node-helper';

const { databases } = require('../../dist/lib/store/registry.js') as {
  databases: { size: number; paths(): string[]; users(path: string): number };
};
const dbModule = require('../../dist/nodes/kasa-sqlite-db.js') as (red: unknown) => void;
const storeModule = require('../../dist/nodes/kasa-sqlite-store.js') as (red: unknown) => void;
const loadNodes = [dbModule, storeModule] as Parameters<typeof helper.load>[0];

const ROOT = join(__dirname, '..', '..');
const catalog = (type: string) =>
  JSON.parse(
    readFileSync(join(ROOT, 'nodes', 'locales', 'en-US', `${type}.json`), 'utf8'),
  ) as Record<string, unknown>;

function lookup(tree: unknown, key: string): unknown {
  return key
    .split('.')
    .reduce<unknown>(
      (node, part) =>
        typeof node === 'object' && node !== null
          ? (node as Record<string, unknown>)[part]
          : undefined,
      tree,
    );
}

/** The helper's settings as they are, without merging anything in (the typings demand an argument). */
const currentSettings = () =>
  (helper.settings as unknown as (settings?: unknown) => Record<string, unknown>).call(helper);

const store = (id: string, db = 'db') => ({
  id,
  type: 'kasa-sqlite-store',
  z: 'tab',
  x: 100,
  y: 100,
  name: '',
  db,
  mode: 'store',
  batchSize: 1000,
  flushInterval: 1,
  wires: [],
});

describe('kasa-sqlite-db config node', function () {
  const temp = useTempDir('kasa-db-node-');
  let savedSettings: Record<string, unknown>;

  before(function (done) {
    helper.startServer(done);
  });
  beforeEach(function () {
    savedSettings = { ...currentSettings() };
  });
  afterEach(async function () {
    await helper.unload();
    helper.settings(savedSettings);
    assert.equal(databases.size, 0);
  });
  after(function (done) {
    helper.stopServer(done);
  });

  it('should put kasa-monitor.db in the Node-RED user directory by default', async function () {
    helper.settings({ ...savedSettings, userDir: temp.dir() });
    await helper.load(loadNodes, [{ id: 'db', type: 'kasa-sqlite-db', name: '', path: '' }]);
    assert.ok(existsSync(join(temp.dir(), 'kasa-monitor.db')));
  });

  it('should resolve a relative path against the user directory', async function () {
    helper.settings({ ...savedSettings, userDir: temp.dir() });
    await helper.load(loadNodes, [
      { id: 'db', type: 'kasa-sqlite-db', name: '', path: 'energy.db' },
    ]);
    assert.deepEqual(databases.paths(), [join(temp.dir(), 'energy.db')]);
  });

  it('should give every store node the same connection and close it with the last user', async function () {
    const file = join(temp.dir(), 'shared.db');
    await helper.load(loadNodes, [
      { id: 'tab', type: 'tab', label: 'test' },
      { id: 'db', type: 'kasa-sqlite-db', name: '', path: file },
      store('a'),
      store('b'),
    ]);
    assert.equal(databases.size, 1);
    assert.equal(databases.users(file), 3);
    await helper.unload();
    assert.equal(databases.size, 0);
  });

  it('should name the file and the cause when it is not a database', async function () {
    const file = join(temp.dir(), 'notes.db');
    writeFileSync(file, 'plain text, not SQLite '.repeat(50));
    await helper.load(loadNodes, [{ id: 'db', type: 'kasa-sqlite-db', name: '', path: file }]);
    const node = helper.getNode('db') as unknown as {
      error: { args: [unknown][]; callCount: number };
    };
    assert.equal(node.error.callCount, 1);
    const logged = String(node.error.args[0]?.[0]);
    assert.ok(logged.includes(file), logged);
    assert.match(logged, /not a database/);
    assert.equal(databases.size, 0);
  });
});

describe('kasa-sqlite message catalogs', function () {
  it('should hold every key the node code asks for', function () {
    for (const type of ['kasa-sqlite-db', 'kasa-sqlite-store']) {
      const source = readFileSync(join(ROOT, 'nodes', `${type}.ts`), 'utf8');
      const keys = [...source.matchAll(/\bt\('([^']+)'/g)].map((match) => match[1]!);
      const html = readFileSync(join(ROOT, 'nodes', `${type}.html`), 'utf8');
      keys.push(...[...html.matchAll(/data-i18n="(?:\[[a-z]+\])?([^"]+)"/g)].map((m) => m[1]!));
      assert.ok(keys.length > 0);
      const tree = catalog(type);
      for (const key of keys) {
        const full = key.startsWith(`${type}.`) ? key : `${type}.${key}`;
        assert.equal(typeof lookup(tree, full), 'string', `${full} in ${type}.json`);
      }
    }
  });

  it('should describe each storage error code with placeholders the errors carry', function () {
    const errors = (
      catalog('kasa-sqlite-db')['kasa-sqlite-db'] as { errors: Record<string, string> }
    ).errors;
    const carried: Record<string, string[]> = {
      BAD_READING: ['detail'],
      DB_OPEN_FAILED: ['path', 'cause', 'detail'],
      DB_WRITE_FAILED: ['path', 'rows', 'cause', 'detail'],
      WRITER_QUEUE_FULL: ['path', 'queued', 'max', 'refused', 'detail'],
      WRITER_CLOSED: ['path', 'detail'],
    };
    for (const [code, params] of Object.entries(carried)) {
      const text = errors[code];
      assert.equal(typeof text, 'string', code);
      for (const used of text!.matchAll(/__([a-z]+)__/g)) {
        assert.ok(params.includes(used[1]!), `${code} uses __${used[1]}__`);
      }
    }
  });
});
