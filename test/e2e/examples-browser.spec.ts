import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Browser, Page } from 'playwright-core';

import { launchBrowser, saveScreenshot } from '../support/browser';
import { REPO_ROOT, startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { startSimulatedHome, type SimulatedHome } from '../support/simulated-home';

const EXAMPLES = join(REPO_ROOT, 'examples');
const MODULE = '@kasa-monitor/node-red-kasa-monitor';

interface FlowNode {
  id: string;
  type: string;
  z?: string;
}

/**
 * The node types of a flow, counted, without the flow-dependency metadata node and empty tabs
 * (the editor opens an empty "Flow 1" before anything is imported).
 */
function typeCounts(flow: FlowNode[]): Record<string, number> {
  const used = new Set(flow.map((node) => node.z));
  const counts: Record<string, number> = {};
  for (const node of flow) {
    if (node.type === 'global-config' || (node.type === 'tab' && !used.has(node.id))) continue;
    counts[node.type] = (counts[node.type] ?? 0) + 1;
  }
  return counts;
}

/**
 * Nodes the editor shows as unknown: their type was never registered. (A string, so the test
 * compiler adds no helpers the page does not have.)
 */
function unknownNodes(page: Page): Promise<string[]> {
  return page.evaluate(`(() => {
    const unknownDef = RED.nodes.getType('unknown');
    const unknown = [];
    RED.nodes.eachNode((node) => { if (node._def === unknownDef) unknown.push(node.type); });
    RED.nodes.eachConfig((node) => { if (node._def === unknownDef) unknown.push(node.type); });
    return unknown;
  })()`);
}

/** Nodes the editor marks as not properly configured (deploying them asks for confirmation). */
function invalidNodes(page: Page): Promise<string[]> {
  return page.evaluate(`(() => {
    const invalid = [];
    const check = (node) => {
      if (node.valid === false) invalid.push(node.type + ' "' + (node.name || node.id) + '": ' + (node.validationErrors || []).join(', '));
    };
    RED.nodes.eachNode(check);
    RED.nodes.eachConfig(check);
    return invalid;
  })()`);
}

describe('browser: every example imports through the editor and deploys', function () {
  this.timeout(120_000);
  const files = readdirSync(EXAMPLES)
    .filter((file) => file.endsWith('.json'))
    .sort();
  let home: SimulatedHome;
  let nodeRed: NodeRedProcess;
  let browser: Browser;
  let page: Page;

  const cleanups: (() => Promise<unknown>)[] = [];

  before(async function () {
    // The examples poll the demo's devices on 127.0.0.2 - 127.0.0.7: here they answer.
    home = await startSimulatedHome();
    cleanups.push(() => home.stop());
    // Dashboard 2 is installed as a user would before importing "Energy dashboard".
    nodeRed = await startNodeRed({ modules: ['@flowfuse/node-red-dashboard'] });
    cleanups.push(() => nodeRed.stop());
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  after(async function () {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** Opens a fresh editor on empty flows, so each import starts from nothing. */
  async function openEmptyEditor(): Promise<void> {
    await nodeRed.deploy([]);
    await page.goto(`${nodeRed.url}/`);
    await page.locator('.red-ui-palette-node[data-palette-type="kasa-poll"]').waitFor();
  }

  /** Menu > Import > Examples > this package: the names the tree lists. */
  async function openExamples(): Promise<string[]> {
    await page.click('#red-ui-header-button-sidemenu');
    await page.click('#menu-item-import');
    await page.click(
      '#red-ui-clipboard-dialog-import-tabs a[href="#red-ui-clipboard-dialog-import-tab-examples"]',
    );
    const examples = page.locator('#red-ui-clipboard-dialog-import-tab-examples');
    await examples.locator('.red-ui-treeList-label', { hasText: MODULE }).first().click();
    // The package's entries appear under it once the library has listed them.
    const entries = examples.locator('.red-ui-treeList-label', {
      hasText: files[0]!.replace(/\.json$/, ''),
    });
    await entries.first().waitFor();
    return examples.locator('.red-ui-treeList-label').allInnerTexts();
  }

  /** Imports one example through Menu > Import > Examples, as a user would. */
  async function importExample(name: string): Promise<void> {
    await openExamples();
    await page
      .locator('#red-ui-clipboard-dialog-import-tab-examples .red-ui-treeList-label')
      .filter({ hasText: new RegExp(`^\\s*${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`) })
      .click();
    await page.click('#red-ui-clipboard-dialog-ok');
    await page.locator('#red-ui-clipboard-dialog').waitFor({ state: 'hidden' });
  }

  it('lists every example under Import > Examples > this package', async function () {
    await openEmptyEditor();
    const listed = (await openExamples()).map((text) => text.trim());
    for (const file of files) {
      const name = file.replace(/\.json$/, '');
      assert.ok(
        listed.includes(name),
        `"${name}" missing from the examples tree: ${listed.join(' | ')}`,
      );
    }
    await saveScreenshot(page, 'editor-examples');
    await page.click('#red-ui-clipboard-dialog-cancel');
  });

  for (const file of files) {
    const name = file.replace(/\.json$/, '');

    it(`imports "${name}" through the dialog and deploys it with every type known`, async function () {
      const example = JSON.parse(readFileSync(join(EXAMPLES, file), 'utf8')) as FlowNode[];
      await openEmptyEditor();
      const logFrom = nodeRed.log().length;
      await importExample(name);
      assert.deepEqual(await unknownNodes(page), [], 'no unknown node types in the editor');
      assert.deepEqual(await invalidNodes(page), [], 'every node properly configured');

      await page.click('#red-ui-header-button-deploy');
      await page
        .locator('.red-ui-notification', { hasText: /deployed/i })
        .first()
        .waitFor();
      await saveScreenshot(page, `example-${name.replace(/[^A-Za-z0-9]+/g, '-')}`);

      const deployed = (await nodeRed.getFlows()) as FlowNode[];
      assert.deepEqual(typeCounts(deployed), typeCounts(example));
      const log = nodeRed.log().slice(logFrom);
      assert.doesNotMatch(log, /Waiting for missing types|unknown type/i);
      assert.doesNotMatch(log, /\[error\]/);
    });
  }

  it('imports both dashboard examples side by side: one Dashboard 2 base, two pages, two database files', async function () {
    await openEmptyEditor();
    await importExample('Energy dashboard');
    await importExample('Performance dashboard');
    // Its Dashboard 2 base and theme are already there: the editor says so, and "Import copy"
    // imports the rest, reusing them (config nodes with the same id are matched, not copied).
    await page
      .locator('.red-ui-notification', { hasText: /already exist/ })
      .getByRole('button', { name: 'Import copy' })
      .click();
    await page.locator('.red-ui-tab', { hasText: 'Performance dashboard' }).waitFor();
    await saveScreenshot(page, 'examples-both-dashboards-imported');
    await page.click('#red-ui-header-button-deploy');
    await page
      .locator('.red-ui-notification', { hasText: /deployed/i })
      .first()
      .waitFor();
    const deployed = (await nodeRed.getFlows()) as FlowNode[];
    const counts = typeCounts(deployed);
    assert.equal(counts['ui-base'], 1, 'Dashboard 2 allows one base');
    assert.equal(counts['ui-page'], 2);
    assert.equal(counts['kasa-sqlite-db'], 2, 'the performance example keeps its own file');
  });
});
