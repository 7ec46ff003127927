import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Browser, Page } from 'playwright-core';

import { launchBrowser, saveScreenshot } from '../support/browser';
import { DEVICE_ENTRY_CASES } from '../support/device-entry-cases';
import { DISCOVERY_BROADCAST, FakeFleet } from '../support/fake-kasa-device';
import { type NodeRedProcess, REPO_ROOT, startNodeRed } from '../support/node-red-process';

declare const RED: any;
declare const $: any;

const MODULE = '@kasa-monitor/node-red-kasa-monitor';
const STRIP_ID = '8006BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB04';

interface NodeSet {
  module: string;
  name: string;
  types: string[];
  enabled: boolean;
  loaded?: boolean;
  err?: unknown;
}

/** One node of each type this package had when the test was written; later types are added in the editor. */
function editorFlow(dbPath: string): object[] {
  return [
    { id: 'tab1', type: 'tab', label: 'Kasa editor test' },
    {
      id: 'pool1',
      type: 'kasa-device-pool',
      name: 'home',
      maxInFlight: 8,
      timeout: 5,
      retries: 2,
      maxPowerW: 4000,
      minPollInterval: 0,
      broadcast: DISCOVERY_BROADCAST,
      discoveryTimeout: 1,
    },
    { id: 'db1', type: 'kasa-sqlite-db', name: 'energy', path: dbPath },
    {
      id: 'redis1',
      type: 'kasa-redis',
      name: '',
      url: 'redis://127.0.0.1:6399',
      prefix: 'kasa:',
      ttl: 300,
    },
    {
      id: 'poll1',
      type: 'kasa-poll',
      z: 'tab1',
      name: '',
      pool: 'pool1',
      devices: '127.0.0.2',
      interval: 0,
      output: 'reading',
      x: 160,
      y: 80,
      wires: [['adaptive1', 'cache1']],
    },
    {
      id: 'adaptive1',
      type: 'kasa-adaptive-interval',
      z: 'tab1',
      name: '',
      base: 60,
      min: 5,
      max: 300,
      lowCv: 0.01,
      highCv: 0.1,
      window: 10,
      deadband: 0.5,
      hold: 3,
      x: 400,
      y: 40,
      wires: [['poll1']],
    },
    {
      id: 'cache1',
      type: 'kasa-cache',
      z: 'tab1',
      name: '',
      cache: 'latest',
      mode: 'set',
      property: 'topic',
      maxEntries: 1000,
      ttl: 60,
      redis: '',
      onlyChanged: false,
      deadband: 0,
      outputs: 1,
      x: 400,
      y: 120,
      wires: [['store1']],
    },
    {
      id: 'store1',
      type: 'kasa-sqlite-store',
      z: 'tab1',
      name: '',
      db: 'db1',
      mode: 'store',
      batchSize: 1000,
      flushInterval: 1,
      chart: false,
      rawHorizon: 7,
      x: 620,
      y: 120,
      wires: [[]],
    },
    {
      id: 'retention1',
      type: 'kasa-retention',
      z: 'tab1',
      name: '',
      db: 'db1',
      rawDays: 7,
      hourlyDays: 30,
      dailyDays: 365,
      timezone: '',
      every: 0,
      x: 620,
      y: 200,
      wires: [[]],
    },
  ];
}

describe('editor in a real browser (chromium)', function () {
  this.timeout(120_000);
  const fleet = new FakeFleet();
  let dir: string;
  let nodeRed: NodeRedProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'kasa-editor-'));
    await fleet.start('HS110(EU)_4.0_1.0.4', {
      host: '127.0.0.2',
      port: 9999,
      alias: 'Fridge',
      discovery: true,
    });
    await fleet.start('HS300(US)_2.0_1.0.3', {
      host: '127.0.0.3',
      port: 9999,
      deviceId: STRIP_ID,
      alias: 'Office strip',
      discovery: true,
    });
    const red = await startNodeRed({ flows: editorFlow(join(dir, 'editor.db')) });
    nodeRed = red;
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(red.url);
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="kasa-poll"]', {
      timeout: 60_000,
    });
    await page.waitForFunction(() => RED.nodes.node('poll1') !== null);
  });

  after(async function () {
    await browser?.close();
    await nodeRed?.stop();
    browser = undefined;
    nodeRed = undefined;
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async function () {
    // Whatever a test left open is closed, so the next one starts from the workspace.
    await page.evaluate(() => {
      while ($('.red-ui-tray').length > 0 && RED.tray) {
        const before = $('.red-ui-tray').length;
        RED.tray.close();
        if ($('.red-ui-tray').length === before) break;
      }
    });
    await page.waitForFunction(() => $('.red-ui-tray:visible').length === 0);
  });

  function red(): NodeRedProcess {
    assert.ok(nodeRed, 'Node-RED is running');
    return nodeRed;
  }

  async function ourTypes(): Promise<{ sets: NodeSet[]; types: string[] }> {
    const response = await fetch(`${red().url}/nodes`, {
      headers: { Accept: 'application/json' },
    });
    const sets = ((await response.json()) as NodeSet[]).filter((set) => set.module === MODULE);
    return { sets, types: sets.flatMap((set) => set.types) };
  }

  it('loads every node set of package.json without an error', async function () {
    const declared = Object.keys(
      (
        JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
          'node-red': { nodes: Record<string, string> };
        }
      )['node-red'].nodes,
    ).sort();
    const { sets } = await ourTypes();
    assert.deepEqual(sets.map((set) => set.name).sort(), declared);
    for (const set of sets) {
      assert.equal(set.err, undefined, `${set.name}: ${String(set.err)}`);
      assert.equal(set.enabled, true, set.name);
      assert.notEqual(set.loaded, false, set.name);
    }
    assert.doesNotMatch(red().log(), /\[error\]|Waiting for missing types|\[warn\] \[kasa/);
  });

  it('shows every node type of the package in the palette (config nodes in the config list)', async function () {
    const { types } = await ourTypes();
    assert.ok(types.length >= 8, `types: ${types.join(', ')}`);
    const seen = await page.evaluate((all: string[]) => {
      return all.map((type) => {
        const def = RED.nodes.getType(type);
        const tile = $(`.red-ui-palette-node[data-palette-type="${type}"]`);
        return {
          type,
          registered: Boolean(def),
          config: def?.category === 'config',
          inPalette: tile.length === 1,
          label: tile.find('.red-ui-palette-label').text().trim(),
          icon: tile.find('.red-ui-palette-icon').css('background-image') ?? '',
        };
      });
    }, types);
    for (const entry of seen) {
      assert.ok(entry.registered, `${entry.type} is registered in the editor`);
      if (entry.config) continue;
      assert.ok(entry.inPalette, `${entry.type} is in the palette`);
      assert.notEqual(entry.label, '', `${entry.type} has a palette label`);
      assert.doesNotMatch(entry.label, /paletteLabel/, `${entry.type}'s label is translated`);
      assert.match(entry.icon, /\.svg/, `${entry.type} has an SVG icon`);
    }
    assert.ok(seen.some((entry) => entry.config));
    await page.evaluate(() => RED.sidebar.show('config'));
    await page.locator('#red-ui-palette-search input').pressSequentially('kasa');
    await page.waitForFunction(
      () => $('.red-ui-palette-node[data-palette-type="inject"]:visible').length === 0,
    );
    await saveScreenshot(page, 'editor-palette');
    await page.locator('#red-ui-palette-search input').fill('');
    await page.locator('#red-ui-palette-search input').press('Escape');
    assert.deepEqual(pageErrors, []);
  });

  it('opens every node type’s dialog without a script error', async function () {
    const { types } = await ourTypes();
    for (const type of types) {
      const errorsBefore = pageErrors.length;
      const opened = await page.evaluate((wanted: string) => {
        const def = RED.nodes.getType(wanted);
        let existing: any = null;
        RED.nodes.eachNode((node: any) => {
          if (node.type === wanted && existing === null) existing = node;
        });
        RED.nodes.eachConfig((node: any) => {
          if (node.type === wanted && existing === null) existing = node;
        });
        if (def.category === 'config') {
          RED.editor.editConfig('', wanted, existing ? existing.id : '_ADD_');
          return 'config';
        }
        if (existing === null) {
          // A type added after this test was written: a new node in the workspace.
          RED.view.importNodes([{ id: `test-${wanted}`, type: wanted, x: 300, y: 300 }]);
          existing = RED.nodes.node(`test-${wanted}`);
        }
        RED.editor.edit(existing);
        return 'node';
      }, type);
      const prefix = opened === 'config' ? 'node-config-input' : 'node-input';
      await page.waitForSelector(`.red-ui-tray [id^="${prefix}-"]`, { state: 'visible' });
      const labels = await page.evaluate(
        () =>
          $('.red-ui-tray:last .form-row label')
            .map((_: number, el: HTMLElement) => $(el).text().trim())
            .get() as string[],
      );
      for (const label of labels.filter((text) => text !== '')) {
        assert.doesNotMatch(
          label,
          /^kasa-[a-z-]+\.label\./,
          `${type}: untranslated label ${label}`,
        );
      }
      // The tray slides in (a CSS transition of `right`): the picture waits until it is in place.
      await page.waitForFunction(
        () => getComputedStyle($('.red-ui-tray').last()[0] as Element).right === '0px',
      );
      await saveScreenshot(page, `dialog-${type}`);
      // Every dialog opens valid: properties a node lacks (a node added by a newer version of
      // this test, or a hand-written flow) show their defaults, not empty fields marked invalid.
      const invalid = await page.evaluate(
        () =>
          $('.red-ui-tray:last .input-error')
            .map((_: number, el: HTMLElement) => el.id)
            .get() as string[],
      );
      assert.deepEqual(invalid, [], `${type}: fields marked invalid`);
      await page.evaluate(() => RED.tray.close());
      await page.waitForFunction(() => $('.red-ui-tray:visible').length === 0);
      assert.deepEqual(pageErrors.slice(errorsBefore), [], `${type} dialog`);
    }
  });

  it('explains invalid values in words from the catalogs, never as a catalog key', async function () {
    const { types } = await ourTypes();
    const answers = await page.evaluate((all: string[]) => {
      const out: [string, string, unknown][] = [];
      for (const type of all) {
        const def = RED.nodes.getType(type);
        const node = { _: def._, type };
        for (const [name, prop] of Object.entries<any>(def.defaults)) {
          if (typeof prop.validate !== 'function') continue;
          for (const bad of ['not valid!', '-1', '99999999999']) {
            out.push([type, name, prop.validate.call(node, bad, {})]);
          }
        }
      }
      return out;
    }, types);
    const explained = answers.filter(([, , answer]) => typeof answer === 'string');
    assert.ok(explained.length >= 20, `${explained.length} explanations`);
    for (const [type, name, answer] of answers) {
      assert.ok(
        answer === true || typeof answer === 'string',
        `${type}.${name}: ${String(answer)}`,
      );
      if (typeof answer === 'string') {
        assert.doesNotMatch(answer, /^[a-z-]+\.[a-z-]+\.|^@kasa/, `${type}.${name}`);
        assert.ok(answer.length > 15, `${type}.${name}: ${answer}`);
      }
    }
  });

  it('names a missing config node: a kasa-poll without a device pool', async function () {
    const errors = await page.evaluate(() => {
      RED.view.importNodes([
        {
          id: 'nopool',
          type: 'kasa-poll',
          x: 300,
          y: 400,
          pool: '',
          devices: '127.0.0.2',
          interval: 30,
        },
      ]);
      const node = RED.nodes.node('nopool');
      RED.editor.validateNode(node);
      const result = { valid: node.valid, errors: node.validationErrors };
      RED.nodes.remove('nopool');
      RED.view.redraw(true);
      return result;
    });
    assert.equal(errors.valid, false);
    assert.deepEqual(errors.errors, ['Device pool: property value missing']);
  });

  it('keeps nodes from an older or hand-written flow valid: absent numbers take the defaults', async function () {
    const result = await page.evaluate(() => {
      const older = [
        // An older device pool: without the discovery properties.
        {
          id: 'oldpool',
          type: 'kasa-device-pool',
          maxInFlight: 8,
          timeout: 5,
          retries: 2,
          maxPowerW: 4000,
        },
        // Hand-written: nothing but what has no default.
        { id: 'barepool', type: 'kasa-device-pool' },
        { id: 'bareretention', type: 'kasa-retention', z: RED.workspaces.active(), db: 'db1' },
        { id: 'bareperf', type: 'kasa-perf-metrics', z: RED.workspaces.active() },
        { id: 'barecache', type: 'kasa-cache', z: RED.workspaces.active() },
        { id: 'bareadaptive', type: 'kasa-adaptive-interval', z: RED.workspaces.active() },
        { id: 'baredb', type: 'kasa-sqlite-db' },
        { id: 'bareredis', type: 'kasa-redis' },
      ];
      RED.view.importNodes(older);
      return older.map(({ id }) => {
        const node = RED.nodes.node(id);
        RED.editor.validateNode(node);
        const outcome = { id, valid: node.valid, errors: node.validationErrors };
        RED.nodes.remove(id);
        return outcome;
      });
    });
    for (const outcome of result) assert.deepEqual(outcome.errors, [], outcome.id);
    assert.ok(
      result.every((outcome) => outcome.valid),
      JSON.stringify(result),
    );
    // A field the user emptied is still refused.
    const emptied = await page.evaluate(() => {
      const def = RED.nodes.getType('kasa-device-pool');
      return def.defaults.timeout.validate.call({ _: def._ }, '', {});
    });
    assert.equal(typeof emptied, 'string');
  });

  it('adds a new device pool from kasa-poll’s dialog that is valid as it comes', async function () {
    // Node-RED copies only truthy defaults into a config node it adds: 0 must still show as 0.
    await page.evaluate(() => RED.editor.editConfig('', 'kasa-device-pool', '_ADD_'));
    await page.waitForSelector('#node-config-input-minPollInterval', { state: 'visible' });
    const shown = await page.evaluate(() => ({
      minPollInterval: $('#node-config-input-minPollInterval').val(),
      invalid: $('.red-ui-tray:last .input-error')
        .map((_: number, el: HTMLElement) => el.id)
        .get() as string[],
    }));
    assert.deepEqual(shown, { minPollInterval: '0', invalid: [] });
    await page.evaluate(() => RED.tray.close());
    await page.waitForFunction(() => $('.red-ui-tray:visible').length === 0);
  });

  it('checks a retention time zone against the zones the browser knows', async function () {
    const answers = await page.evaluate(() => {
      const def = RED.nodes.getType('kasa-retention');
      return ['', 'Europe/Berlin', 'UTC', '${TZ}', 'Mars/Olympus', 'Berlin'].map((zone) =>
        def.defaults.timezone.validate.call({ _: def._ }, zone, {}),
      );
    });
    assert.deepEqual(answers.slice(0, 4), [true, true, true, true]);
    for (const answer of answers.slice(4)) assert.match(String(answer), /IANA time zone/);
  });

  it('kasa-poll’s dialog rejects a malformed device entry with the explanation and accepts a good one', async function () {
    await page.evaluate(() => RED.editor.edit(RED.nodes.node('poll1')));
    const devices = page.locator('#node-input-devices');
    await devices.waitFor({ state: 'visible' });

    await devices.fill('127.0.0.2\nplug:70000');
    await devices.dispatchEvent('change');
    const problem = page.locator('#kasa-poll-devices-problem');
    await problem.waitFor({ state: 'visible' });
    const explanation = await problem.innerText();
    assert.match(explanation, /"plug:70000"/);
    assert.match(explanation, /host\[:port\]\[\/outlet\]/);
    assert.equal(await devices.evaluate((el) => el.classList.contains('input-error')), true);
    // The same explanation is what the editor shows when the node is marked invalid.
    const message = await page.evaluate(() => {
      const node = RED.nodes.node('poll1');
      return RED.nodes
        .getType('kasa-poll')
        .defaults.devices.validate.call(node, $('#node-input-devices').val(), {});
    });
    assert.equal(message, explanation);
    await saveScreenshot(page, 'kasa-poll-dialog-invalid');

    await devices.fill('127.0.0.2\n127.0.0.3/1 # desk');
    await devices.dispatchEvent('change');
    await problem.waitFor({ state: 'hidden' });
    assert.equal(await devices.evaluate((el) => el.classList.contains('input-error')), false);
    await page.click('#node-dialog-ok');
    await page.waitForFunction(() => $('.red-ui-tray:visible').length === 0);
    const saved = await page.evaluate(() => {
      const node = RED.nodes.node('poll1');
      return { devices: node.devices, valid: node.valid };
    });
    assert.deepEqual(saved, { devices: '127.0.0.2\n127.0.0.3/1 # desk', valid: true });
    assert.deepEqual(pageErrors, []);
  });

  it('kasa-poll’s device check in the editor agrees with the runtime parser on every case', async function () {
    const verdicts = await page.evaluate((cases: readonly (readonly [string, boolean])[]) => {
      const validate = RED.nodes.getType('kasa-poll').defaults.devices.validate;
      const node = RED.nodes.node('poll1');
      return cases.map(([entry]) => [entry, validate.call(node, entry, {}) === true]);
    }, DEVICE_ENTRY_CASES);
    assert.deepEqual(verdicts, DEVICE_ENTRY_CASES);
  });

  it('Discover in kasa-poll’s dialog lists the simulated devices and adds a clicked one', async function () {
    await page.evaluate(() => RED.editor.edit(RED.nodes.node('poll1')));
    await page.locator('#node-input-devices').waitFor({ state: 'visible' });
    await page.locator('#node-input-devices').fill('127.0.0.2');
    await page.click('#node-input-discover-btn');
    const found = page.locator('#kasa-poll-discover-results .kasa-poll-discovered');
    await page.waitForFunction(
      () => $('#kasa-poll-discover-results .kasa-poll-discovered').length > 0,
      undefined,
      { timeout: 20_000 },
    );
    const listed = await found.evaluateAll((links) =>
      links.map((link) => [link.textContent, String(link.getAttribute('data-entry'))] as const),
    );
    const entries = listed.map(([, entry]) => entry);
    assert.ok(entries.includes('127.0.0.2'), JSON.stringify(listed));
    assert.ok(entries.includes('127.0.0.3'), JSON.stringify(listed));
    for (let outlet = 0; outlet < 6; outlet += 1)
      assert.ok(entries.includes(`127.0.0.3/${outlet}`));
    assert.match(listed.find(([, entry]) => entry === '127.0.0.2')![0], /Fridge \(HS110\(EU\)\)/);
    assert.match(
      listed.find(([, entry]) => entry === '127.0.0.3')![0],
      /Office strip \(HS300\(US\)\)/,
    );
    assert.match(await page.locator('#kasa-poll-discover-state').innerText(), /2 found/);
    // What the list holds already is ticked.
    const ticked = await page
      .locator('#kasa-poll-discover-results .kasa-poll-added')
      .evaluateAll((links) => links.map((link) => link.getAttribute('data-entry')));
    assert.deepEqual(ticked, ['127.0.0.2']);

    await page.click('#kasa-poll-discover-results [data-entry="127.0.0.3/2"]');
    assert.equal(await page.locator('#node-input-devices').inputValue(), '127.0.0.2\n127.0.0.3/2');
    // Adding an entry twice leaves the list as it is.
    await page.click('#kasa-poll-discover-results [data-entry="127.0.0.2"]');
    assert.equal(await page.locator('#node-input-devices').inputValue(), '127.0.0.2\n127.0.0.3/2');
    await saveScreenshot(page, 'kasa-poll-discover');
    await page.evaluate(() => RED.tray.close());
    assert.deepEqual(pageErrors, []);
  });
});
