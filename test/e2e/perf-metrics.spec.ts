import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { FakeFleet, type FakeKasaDevice } from '../support/fake-kasa-device';
import { REPO_ROOT, startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { promtoolCheckMetrics, startPrometheus } from '../support/prometheus';
import { startSimulatedHome } from '../support/simulated-home';

const PATH = '/kasa-metrics';

function flow(devices: FakeKasaDevice[], withPoll: boolean, withMetrics = true) {
  return [
    { id: 'tab', type: 'tab', label: 'metrics' },
    {
      id: 'metrics-pool',
      type: 'kasa-device-pool',
      name: 'plugs',
      maxInFlight: '8',
      timeout: '2',
      retries: '0',
      maxPowerW: '4000',
    },
    { id: 'metrics-db', type: 'kasa-sqlite-db', name: 'metrics', path: 'metrics.db' },
    ...(withPoll
      ? [
          {
            id: 'poll',
            type: 'kasa-poll',
            z: 'tab',
            pool: 'metrics-pool',
            devices: devices.map((device) => `${device.host}:${device.port}`).join('\n'),
            interval: '1',
            output: 'reading',
            x: 100,
            y: 100,
            wires: [['writer']],
          },
        ]
      : []),
    {
      id: 'writer',
      type: 'kasa-sqlite-store',
      z: 'tab',
      db: 'metrics-db',
      mode: 'store',
      batchSize: '1000',
      flushInterval: '0.2',
      x: 300,
      y: 100,
      wires: [[]],
    },
    ...(withMetrics
      ? [
          {
            id: 'perf',
            type: 'kasa-perf-metrics',
            z: 'tab',
            name: '',
            interval: '0',
            memoryLimit: '0',
            endpoint: true,
            path: PATH,
            x: 100,
            y: 200,
            wires: [[], []],
          },
        ]
      : []),
  ];
}

/** The value of an unlabelled series in Prometheus text. */
function valueOf(text: string, name: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} in the exposition`);
  return Number(line.slice(name.length + 1));
}

describe('end to end: kasa-perf-metrics in a real Node-RED, checked by promtool and Prometheus', function () {
  this.timeout(120_000);
  const fleet = new FakeFleet();
  let nodeRed: NodeRedProcess;
  let devices: FakeKasaDevice[];

  before(async function () {
    devices = [
      await fleet.start('KP115(EU)_1.0_1.0.16', { host: '127.0.0.2' }),
      await fleet.start('HS110(EU)_4.0_1.0.4', { host: '127.0.0.3' }),
      await fleet.start('HS110(EU)_1.0_1.2.5', { host: '127.0.0.4' }),
    ];
    nodeRed = await startNodeRed({ flows: flow(devices, true) });
  });
  after(async function () {
    await nodeRed.stop();
    await fleet.stopAll();
  });

  const scrape = async () => {
    const response = await fetch(`${nodeRed.url}${PATH}`);
    assert.equal(response.status, 200);
    return { text: await response.text(), type: response.headers.get('content-type') ?? '' };
  };

  it('counts what the flow did, passes promtool, survives two redeploys and is scraped by Prometheus', async function () {
    // Three cycles or more of three plugs.
    const deadline = Date.now() + 30_000;
    while (valueOf((await scrape()).text, 'kasa_polls_total') < 9) {
      assert.ok(Date.now() < deadline, 'nine polls within 30 s');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // Polling stops (the store flushes on close); two more full deploys restart every node.
    await nodeRed.deploy(flow(devices, false));
    await nodeRed.deploy(flow(devices, false));
    await nodeRed.deploy(flow(devices, false));
    const { text, type } = await scrape();
    assert.match(type, /^text\/plain; version=0\.0\.4; charset=utf-8$/);

    const requests = devices.reduce((sum, device) => sum + device.requests.length, 0);
    assert.equal(
      valueOf(text, 'kasa_polls_total'),
      requests,
      'one poll counted per device request',
    );
    const db = new Database(join(nodeRed.userDir, 'metrics.db'), { readonly: true });
    const rows = (db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n;
    db.close();
    assert.ok(rows >= 9);
    assert.equal(
      valueOf(text, 'kasa_store_rows_written_total'),
      rows,
      'one row counted per row in the file',
    );
    for (const device of devices) {
      assert.match(
        text,
        new RegExp(
          `^kasa_poll_duration_seconds_count\\{device="${device.host}:${device.port}"\\} \\d+`,
          'm',
        ),
      );
    }
    assert.ok(valueOf(text, 'kasa_process_resident_memory_bytes') > 0);
    assert.doesNotMatch(nodeRed.log(), /already been registered|has already been registered/i);
    assert.doesNotMatch(nodeRed.log(), /\[error\]/);

    const checked = await promtoolCheckMetrics(text);
    assert.equal(checked.code, 0, `promtool check metrics:\n${checked.output}`);
    assert.equal(checked.output, '', 'promtool has nothing to say');

    const url = new URL(nodeRed.url);
    const prometheus = await startPrometheus(url.host, PATH);
    try {
      const until = Date.now() + 30_000;
      let up: { value: [number, string] }[] = [];
      while (up.length === 0 || up[0]!.value[1] !== '1') {
        assert.ok(Date.now() < until, `Prometheus scraped within 30 s:\n${prometheus.log()}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
        up = await prometheus.query('up{job="kasa"}');
      }
      const polls = await prometheus.query('kasa_polls_total');
      assert.equal(Number(polls[0]!.value[1]), requests, 'Prometheus stored the same total');
    } finally {
      await prometheus.stop();
    }

    // Removing the node removes its route.
    await nodeRed.deploy(flow(devices, false, false));
    assert.equal((await fetch(`${nodeRed.url}${PATH}`)).status, 404);
  });
});

describe('end to end: the "Performance dashboard" example against the simulated home', function () {
  this.timeout(120_000);

  it('feeds every widget without an error', async function () {
    const home = await startSimulatedHome();
    const example = JSON.parse(
      readFileSync(join(REPO_ROOT, 'examples', 'Performance dashboard.json'), 'utf8'),
    ) as Record<string, unknown>[];
    for (const node of example) {
      if (node.type === 'kasa-perf-metrics' || node.type === 'kasa-poll') node.interval = '1';
    }
    let nodeRed: NodeRedProcess | null = null;
    try {
      nodeRed = await startNodeRed({
        flows: example,
        modules: ['@flowfuse/node-red-dashboard'],
      });
      const deadline = Date.now() + 30_000;
      let text = '';
      for (;;) {
        const response = await fetch(`${nodeRed.url}${PATH}`);
        text = await response.text();
        if (
          response.ok &&
          /^kasa_polls_total (\d+)/m.test(text) &&
          valueOf(text, 'kasa_polls_total') >= 12
        )
          break;
        assert.ok(Date.now() < deadline, `two cycles of six plugs within 30 s:\n${text}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await new Promise((resolve) => setTimeout(resolve, 1500)); // a snapshot through the widgets
      text = await (await fetch(`${nodeRed.url}${PATH}`)).text();
      assert.doesNotMatch(text, /^kasa_poll_failures_total\{/m, 'no device failed');
      assert.ok(
        valueOf(text, 'kasa_cache_hits_total{level="l1"}') >= 6,
        "from the second cycle on, every reading finds its plug's previous one in the cache",
      );
      assert.doesNotMatch(nodeRed.log(), /\[error\]|\[warn\].*Pick figures/);
      assert.equal((await fetch(`${nodeRed.url}/dashboard/performance`)).status, 200);
    } finally {
      await nodeRed?.stop();
      await home.stop();
    }
  });
});
