import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parseDeviceEntry } from '../../../lib/polling/device-entries';
import { pollTarget } from '../../../lib/polling/poll-device';
import { SharedPoolRegistry, type SharedPoolOptions } from '../../../lib/pool/shared-pool';
import { silentLogger, systemClock } from '../../../lib/types';
import { FakeKasaDevice, loadFixture } from '../../support/fake-kasa-device';

function options(baselinePath: string | null = null): SharedPoolOptions {
  return {
    pool: { requestTimeoutMs: 1000, retries: 0 },
    limits: { maxPowerW: 4000, maxVoltageV: 300, maxCurrentA: 20 },
    baselinePath,
    clock: systemClock,
    logger: silentLogger,
  };
}

describe('SharedPoolRegistry', function () {
  let plug: FakeKasaDevice;
  let totalWh = 100;
  let folder: string;

  beforeEach(async function () {
    totalWh = 100;
    plug = await new FakeKasaDevice({
      fixture: loadFixture('KP115(EU)_1.0_1.0.16'),
      emeter: () => ({ power_mw: 5000, voltage_mv: 230000, current_ma: 30, total_wh: totalWh }),
    }).start();
    folder = mkdtempSync(join(tmpdir(), 'kasa-shared-pool-'));
  });
  afterEach(async function () {
    await plug.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('hands the same warm pool to the node that replaces a redeployed config node', async function () {
    const registry = new SharedPoolRegistry(5000);
    const target = parseDeviceEntry(`127.0.0.1:${plug.port}`);
    const first = registry.acquire('pool-1', options());
    await pollTarget(first.context, target);
    await registry.release('pool-1', false);
    const second = registry.acquire('pool-1', options());
    assert.equal(second, first);
    await pollTarget(second.context, target);
    assert.equal(plug.connectionsAccepted, 1, 'the kept-open connection survived the redeploy');
    await registry.closeAll();
    assert.equal(registry.size, 0);
  });

  it('starts a fresh pool when the settings changed', async function () {
    const registry = new SharedPoolRegistry(5000);
    const first = registry.acquire('pool-1', options());
    const second = registry.acquire('pool-1', {
      ...options(),
      pool: { requestTimeoutMs: 2000, retries: 0 },
    });
    assert.notEqual(second, first);
    await registry.closeAll();
  });

  it('closes a pool that nobody takes over within the linger time, and at once when removed', async function () {
    const registry = new SharedPoolRegistry(100);
    const target = parseDeviceEntry(`127.0.0.1:${plug.port}`);
    await pollTarget(registry.acquire('lingering', options()).context, target);
    await registry.release('lingering', false);
    assert.equal(registry.size, 1);
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(registry.size, 0);
    assert.equal(plug.openConnections, 0);

    await pollTarget(registry.acquire('removed', options()).context, target);
    await registry.release('removed', true);
    assert.equal(registry.size, 0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(plug.openConnections, 0);
  });

  it('closes device connections when its last user is removed, not when it is redeployed', async function () {
    const registry = new SharedPoolRegistry(5000);
    const shared = registry.acquire('pool-1', options());
    const target = parseDeviceEntry(`127.0.0.1:${plug.port}`);
    shared.register('poll-a');
    shared.register('poll-b');
    await pollTarget(shared.context, target);
    shared.deregister('poll-a', false);
    shared.deregister('poll-b', false);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(plug.openConnections, 1, 'a redeploy keeps the connection warm');
    shared.register('poll-b');
    shared.deregister('poll-b', true);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(plug.openConnections, 0, 'removing the last user closes it');
    await registry.closeAll();
  });

  it('keeps energy baselines across a restart, so the first reading after it has its energy', async function () {
    const file = join(folder, 'baselines.json');
    const target = parseDeviceEntry(`127.0.0.1:${plug.port}`);
    const before = new SharedPoolRegistry(0);
    const first = await pollTarget(before.acquire('pool', options(file)).context, target);
    assert.equal(first.readings[0]?.energy_wh, null);
    before.acquire('pool', options(file)).baselinesChanged();
    await before.release('pool', true);
    assert.ok(existsSync(file), 'baselines are written on close');

    totalWh = 107;
    const after = new SharedPoolRegistry(0);
    const next = await pollTarget(after.acquire('pool', options(file)).context, target);
    assert.equal(next.readings[0]?.energy_wh, 7);
    await after.closeAll();
  });
});
