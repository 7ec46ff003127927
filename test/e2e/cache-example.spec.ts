import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { freeLoopbackPort } from '../support/fake-kasa-device';
import { type NodeRedProcess, startNodeRed } from '../support/node-red-process';
import { type SimulatedHome, startSimulatedHome } from '../support/simulated-home';

const EXAMPLE = join(__dirname, '..', '..', 'examples', 'Cache live readings.json');
const FRIDGE = '8006A0B1C2D3E4F5A6B7C8D9E0F1A2B3C4D5E601';

describe('end to end: the "Cache live readings" example', function () {
  this.timeout(60_000);
  let home: SimulatedHome | undefined;
  let nodeRed: NodeRedProcess;
  let running: NodeRedProcess | undefined;

  before(async function () {
    home = await startSimulatedHome(await freeLoopbackPort('127.0.0.40'), 40);
    const flow = JSON.parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>[];
    for (const node of flow) {
      if (node.type === 'kasa-poll') {
        node.devices = home.deviceList;
        node.interval = '1';
      }
      // Debug output to the log, where the test can read it.
      if (node.type === 'debug') node.console = true;
    }
    try {
      nodeRed = running = await startNodeRed({ flows: flow });
    } catch (error) {
      await home.stop();
      throw error;
    }
  });
  after(async function () {
    await running?.stop();
    await home?.stop();
  });

  async function waitFor(pattern: RegExp, from: number): Promise<string> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const match = pattern.exec(nodeRed.log().slice(from));
      if (match !== null) return nodeRed.log().slice(from + match.index);
      if (Date.now() > deadline) throw new Error(`no ${String(pattern)} in:\n${nodeRed.log()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  const inject = (id: string) => fetch(`${nodeRed.url}/inject/${id}`, { method: 'POST' });

  it('passes on changed readings and answers a lookup of the fridge from the cache', async function () {
    await waitFor(/\[debug:Changed readings\]/, 0);
    // Readings of several polls are cached by now.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const from = nodeRed.log().length;
    assert.equal((await inject('kasa-example-cache-ask-fridge')).status, 200);
    const hit = await waitFor(/\[debug:Hit\]/, from);
    assert.match(hit, new RegExp(`device_id: '${FRIDGE}'`));
    assert.match(hit, /hit: true/);
    assert.match(hit, /level: 1/);
    assert.match(hit, /age_ms: \d+/);

    const missFrom = nodeRed.log().length;
    assert.equal((await inject('kasa-example-cache-ask-unknown')).status, 200);
    assert.match(await waitFor(/\[debug:Miss\]/, missFrom), /no-such-device/);

    // Polled every second for several seconds: a steady 40 W lamp passed once, busy loads often.
    const passed = (alias: string) => nodeRed.log().split(`alias: '${alias}'`).length - 1;
    assert.equal(passed('Lamp'), 1, 'an unchanged outlet passes only its first reading');
    assert.ok(passed('Desk PC') + passed('Heater') >= 3, 'changing loads pass again');
    assert.doesNotMatch(nodeRed.log(), /\[error\]/);
  });
});
