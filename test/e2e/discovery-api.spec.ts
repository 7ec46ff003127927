import assert from 'node:assert/strict';

import { dirname } from 'node:path';

import { DISCOVERY_BROADCAST, FakeFleet } from '../support/fake-kasa-device';
import { type NodeRedProcess, startNodeRed } from '../support/node-red-process';

// Node-RED's own bcrypt implementation hashes the test users' passwords (settings.js wants hashes).
const { hashSync } = require(
  require.resolve('bcryptjs', { paths: [dirname(require.resolve('node-red/package.json'))] }),
) as { hashSync: (password: string, rounds: number) => string };

const PLUG_ID = '8006CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC01';

interface DiscoveryReply {
  broadcast: string;
  timeout: number;
  devices: {
    device_id: string;
    alias: string;
    model: string;
    host: string;
    port: number;
    entry: string;
    outlets: { index: number; id: string; alias: string; entry: string }[];
  }[];
}

describe('discovery admin endpoint (real Node-RED with adminAuth)', function () {
  this.timeout(60_000);
  const fleet = new FakeFleet();
  let nodeRed: NodeRedProcess | undefined;

  before(async function () {
    await fleet.start('HS110(EU)_1.0_1.2.5', {
      host: '127.0.0.2',
      port: 9999,
      deviceId: PLUG_ID,
      alias: 'Fridge',
      discovery: true,
    });
    await fleet.start('KP303(UK)_1.0_1.0.3', {
      host: '127.0.0.3',
      port: 9999,
      alias: 'Garden strip',
      discovery: true,
    });
    nodeRed = await startNodeRed({
      settings: {
        adminAuth: {
          type: 'credentials',
          users: [
            { username: 'viewer', password: hashSync('viewer-pass', 8), permissions: 'read' },
            { username: 'flows', password: hashSync('flows-pass', 8), permissions: 'flows.read' },
          ],
        },
      },
    });
  });
  after(async function () {
    await nodeRed?.stop();
    await fleet.stopAll();
  });

  function url(query: string): string {
    assert.ok(nodeRed);
    return `${nodeRed.url}/kasa-monitor/discover?${query}`;
  }

  async function token(username: string, password: string, scope: string): Promise<string> {
    assert.ok(nodeRed);
    const response = await fetch(`${nodeRed.url}/auth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        client_id: 'node-red-editor',
        grant_type: 'password',
        scope,
        username,
        password,
      }),
    });
    assert.equal(response.status, 200, await response.clone().text());
    return ((await response.json()) as { access_token: string }).access_token;
  }

  it('refuses an unauthenticated request with 401 and one without kasa-device-pool.read with 401', async function () {
    const anonymous = await fetch(url(`broadcast=${DISCOVERY_BROADCAST}&timeout=1`));
    assert.equal(anonymous.status, 401);
    const flowsOnly = await token('flows', 'flows-pass', 'flows.read');
    const denied = await fetch(url(`broadcast=${DISCOVERY_BROADCAST}&timeout=1`), {
      headers: { Authorization: `Bearer ${flowsOnly}` },
    });
    assert.equal(denied.status, 401);
  });

  it('lists the simulated devices, strip outlets and their device entries for a reader', async function () {
    const auth = { Authorization: `Bearer ${await token('viewer', 'viewer-pass', 'read')}` };
    const response = await fetch(url(`broadcast=${DISCOVERY_BROADCAST}&timeout=1`), {
      headers: auth,
    });
    assert.equal(response.status, 200);
    const reply = (await response.json()) as DiscoveryReply;
    assert.equal(reply.broadcast, DISCOVERY_BROADCAST);
    assert.equal(reply.timeout, 1);
    assert.deepEqual(
      reply.devices.map((device) => [device.entry, device.alias, device.model]),
      [
        ['127.0.0.2', 'Fridge', 'HS110(EU)'],
        ['127.0.0.3', 'Garden strip', 'KP303(UK)'],
      ],
    );
    assert.equal(reply.devices[0]!.device_id, PLUG_ID);
    assert.deepEqual(
      reply.devices[1]!.outlets.map((outlet) => outlet.entry),
      ['127.0.0.3/0', '127.0.0.3/1', '127.0.0.3/2'],
    );
  });

  it('answers 400 with an explanation for a broadcast address that is not IPv4 or a time out of range', async function () {
    const auth = { Authorization: `Bearer ${await token('viewer', 'viewer-pass', 'read')}` };
    for (const [query, pattern] of [
      ['broadcast=my-network&timeout=1', /IPv4 address.*"my-network"/],
      ['broadcast=', /IPv4 address/],
      ['broadcast=127.255.255.255&timeout=0', /from 1 to 10.*"0"/],
      ['broadcast=127.255.255.255&timeout=60', /from 1 to 10.*"60"/],
      ['broadcast=127.255.255.255&timeout=soon', /from 1 to 10/],
    ] as const) {
      const response = await fetch(url(query), { headers: auth });
      assert.equal(response.status, 400, query);
      const body = (await response.json()) as { error: string };
      assert.match(body.error, pattern, query);
    }
  });
});
