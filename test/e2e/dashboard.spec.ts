import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Browser, Page } from 'playwright-core';

import { closeDatabase, openDatabase, ReadingWriter } from '../../lib/store';
import type { Reading } from '../../lib/types';
import { launchBrowser, saveScreenshot } from '../support/browser';
import { freeLoopbackPort } from '../support/fake-kasa-device';
import { REPO_ROOT, startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { startSimulatedHome, type SimulatedHome } from '../support/simulated-home';
import { makeTempDir, removeTempDir } from '../support/temp-dir';

const EXAMPLE = join(REPO_ROOT, 'examples', 'Energy dashboard.json');
const DASHBOARD_MODULE = '@flowfuse/node-red-dashboard';
const LIVE_CHART = 'kasa-example-dash-live';
const HISTORY_CHART = 'kasa-example-dash-history-chart';
const TODAY_CHART = 'kasa-example-dash-today-chart';
const HOUR_MS = 3_600_000;

/**
 * Twenty hours of stored readings, one every two minutes per device, so the charts fed from the
 * database have something to show from the start (as they would after a day of monitoring).
 */
function seedHistory(file: string, deviceIds: string[], now: number): void {
  const db = openDatabase(file);
  const writer = new ReadingWriter(db);
  try {
    const step = 120_000;
    const readings: Reading[] = [];
    deviceIds.forEach((deviceId, index) => {
      const base = [95, 60, 150, 120, 28, 9, 40, 6, 750][index % 9] ?? 50;
      for (let ts = now - 20 * HOUR_MS; ts < now - step; ts += step) {
        const daily = Math.sin((2 * Math.PI * (ts / HOUR_MS + index)) / 24);
        const power = Math.max(0, base * (1 + 0.4 * daily));
        readings.push({
          device_id: deviceId,
          ts,
          power_w: power,
          voltage_v: 230,
          current_a: power / 230,
          total_wh: null,
          energy_wh: (power * step) / HOUR_MS,
          alias: null,
          model: null,
          host: null,
          port: null,
          child_id: null,
          relay_on: true,
        });
      }
    });
    writer.enqueue(readings);
    writer.flush();
  } finally {
    writer.close();
    closeDatabase(db);
  }
}

interface ChartState {
  canvases: number;
  /** Points each chart widget has drawn, by widget id, with their series names. */
  points: Record<string, { count: number; series: string[] }>;
}

/**
 * What the dashboard page has drawn: the canvases, and the points Dashboard 2's chart widgets
 * keep in the page's data store (each chart commits a point there once it has added it).
 */
function chartState(page: Page): Promise<ChartState> {
  return page.evaluate(() => {
    interface Point {
      _datapoint?: { category?: unknown };
    }
    type AppHost = Element & {
      __vue_app__?: {
        config: {
          globalProperties: { $store?: { state: { data: { messages: Record<string, unknown> } } } };
        };
      };
    };
    const host = document.querySelector<AppHost>('#app');
    const messages = host?.__vue_app__?.config.globalProperties.$store?.state.data.messages ?? {};
    const points: Record<string, { count: number; series: string[] }> = {};
    for (const [widget, value] of Object.entries(messages)) {
      if (!Array.isArray(value)) continue;
      const series = new Set((value as Point[]).map((point) => String(point._datapoint?.category)));
      points[widget] = { count: value.length, series: [...series].sort() };
    }
    return { canvases: document.querySelectorAll('.nrdb-ui-chart canvas').length, points };
  });
}

describe('end to end: the "Energy dashboard" example in a real browser', function () {
  this.timeout(120_000);
  let home: SimulatedHome;
  let nodeRed: NodeRedProcess;
  let browser: Browser;
  let page: Page;
  let userDir: string;
  const pageErrors: string[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];

  before(async function () {
    home = await startSimulatedHome(await freeLoopbackPort('127.0.0.60'), 60);
    cleanups.push(() => home.stop());
    userDir = makeTempDir('kasa-dashboard-');
    cleanups.push(() => Promise.resolve(removeTempDir(userDir)));
    seedHistory(join(userDir, 'kasa-monitor.db'), home.meteredIds, Date.now());
    const flow = JSON.parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>[];
    for (const node of flow) if (node.type === 'kasa-poll') node.devices = home.deviceList;
    nodeRed = await startNodeRed({ userDir, flows: flow, modules: [DASHBOARD_MODULE] });
    cleanups.push(() => nodeRed.stop());
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async function () {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('serves the dashboard at /dashboard', async function () {
    assert.match(nodeRed.log(), /Dashboard 2\.0 .* started at \/dashboard/);
    const response = await page.goto(`${nodeRed.url}/dashboard`);
    assert.equal(response?.status(), 200);
    await page.waitForURL(/\/dashboard\/energy$/);
  });

  it('draws live power of every metered plug and outlet from the simulated home', async function () {
    const metered = home.meteredIds.length;
    await page.waitForFunction(
      ({ chart, metered }) => {
        type AppHost = Element & { __vue_app__?: { config: { globalProperties: any } } };
        const host = document.querySelector<AppHost>('#app');
        const messages = host?.__vue_app__?.config.globalProperties.$store?.state.data.messages;
        const points = messages?.[chart] as { _datapoint?: { category?: unknown } }[] | undefined;
        if (!Array.isArray(points)) return false;
        return new Set(points.map((point) => point._datapoint?.category)).size >= metered;
      },
      { chart: LIVE_CHART, metered },
      { timeout: 30_000, polling: 250 },
    );
    const state = await chartState(page);
    assert.equal(state.canvases, 3, 'three charts: live, history and today');
    const live = state.points[LIVE_CHART];
    assert.ok(live !== undefined && live.count >= metered);
    // Series are the plugs' own names, from the readings as kasa-poll sends them.
    for (const name of ['Fridge', 'TV', 'Kettle', 'Desk PC', 'Heater']) {
      assert.ok(
        live.series.includes(name),
        `live chart has a "${name}" series: ${live.series.join(', ')}`,
      );
    }
  });

  it('draws the history and today charts from store queries', async function () {
    await page.waitForFunction(
      (charts) => {
        type AppHost = Element & { __vue_app__?: { config: { globalProperties: any } } };
        const host = document.querySelector<AppHost>('#app');
        const messages = host?.__vue_app__?.config.globalProperties.$store?.state.data.messages;
        return charts.every((chart) => Array.isArray(messages?.[chart]) && messages[chart].length);
      },
      [HISTORY_CHART, TODAY_CHART],
      { timeout: 30_000, polling: 250 },
    );
    const state = await chartState(page);
    const history = state.points[HISTORY_CHART];
    const today = state.points[TODAY_CHART];
    // Twenty seeded hours of nine devices: about 20 hourly buckets each.
    assert.ok(history !== undefined && history.count >= 9 * 19, `history: ${history?.count}`);
    assert.ok(history.series.includes('Fridge'), `history series: ${history.series.join(', ')}`);
    assert.ok(
      today !== undefined && today.count === home.meteredIds.length,
      `today: ${today?.count}`,
    );
    // The home total on the gauge, and a row per metered device in the table beside it.
    const gauge = await page.locator('.nrdb-ui-gauge').textContent();
    assert.match(gauge ?? '', /\d+\s*W/);
    const rows = page.locator('.nrdb-ui-table tbody tr');
    await rows.nth(home.meteredIds.length - 1).waitFor();
    assert.match((await rows.allInnerTexts()).join('\n'), /Fridge\s+\d+\.\d/);
    assert.deepEqual(pageErrors, []);
  });

  it('saves screenshots of the dashboard as test artifacts', async function () {
    // Let the live chart gather a few cycles, so the picture shows lines rather than dots.
    await page.waitForTimeout(6_000);
    const path = await saveScreenshot(page, 'dashboard');
    assert.ok(readFileSync(path).length > 10_000);
    if (process.env.KASA_UPDATE_DOCS_SCREENSHOT === '1') {
      mkdirSync(join(REPO_ROOT, 'docs'), { recursive: true });
      copyFileSync(path, join(REPO_ROOT, 'docs', 'dashboard.png'));
    }
    const narrow = await browser.newPage({ viewport: { width: 420, height: 900 } });
    try {
      await narrow.goto(`${nodeRed.url}/dashboard/energy`);
      await narrow.locator('.nrdb-ui-chart canvas').first().waitFor();
      await saveScreenshot(narrow, 'dashboard-phone');
    } finally {
      await narrow.close();
    }
  });
});
