import assert from 'node:assert/strict';

import { FakeKasaDevice, loadFixture } from '../support/fake-kasa-device';
import { collect, helper, nodes, unloadAll } from '../support/node-helper';

describe('kasa-device-pool node', function () {
  this.timeout(15_000);
  let plug: FakeKasaDevice;
  let totalWh = 500;

  function flow(minPollInterval: unknown) {
    return [
      { id: 'tab', type: 'tab', label: 'test' },
      {
        id: 'devices',
        type: 'kasa-device-pool',
        maxInFlight: 8,
        timeout: 1,
        retries: 0,
        maxPowerW: 4000,
        ...(minPollInterval === undefined ? {} : { minPollInterval }),
      },
      ...['first', 'second'].map((id, index) => ({
        id,
        type: 'kasa-poll',
        z: 'tab',
        x: 100,
        y: 100 + 100 * index,
        pool: 'devices',
        devices: `127.0.0.1:${plug.port}`,
        interval: 0,
        output: 'reading',
        wires: [['out']],
      })),
      { id: 'out', type: 'helper', z: 'tab', x: 300, y: 100, wires: [] },
    ];
  }

  before(function (done) {
    helper.startServer(done);
  });
  beforeEach(async function () {
    totalWh = 500;
    plug = await new FakeKasaDevice({
      fixture: loadFixture('KP115(EU)_1.0_1.0.16'),
      emeter: () => ({ power_mw: 20_000, voltage_mv: 230_000, current_ma: 100, total_wh: totalWh }),
    }).start();
  });
  afterEach(async function () {
    await unloadAll();
    await plug.stop();
  });
  after(function (done) {
    helper.stopServer(done);
  });

  it('answers polls within the minimum poll interval from the last reading, marked cached', async function () {
    await helper.load([nodes.devicePool, nodes.poll], flow('60'));
    const out = helper.getNode('out');
    const firstReading = collect(out, 1);
    helper.getNode('first').receive({ payload: 'go' });
    const [original] = await firstReading;
    assert.equal(plug.requestCount, 1);
    totalWh = 510;
    const fromSecond = collect(out, 1);
    helper.getNode('second').receive({ payload: 'go' });
    const [second] = await fromSecond;
    const fromFirst = collect(out, 1);
    helper.getNode('first').receive({ payload: 'go' });
    const [first] = await fromFirst;
    assert.equal(plug.requestCount, 1, 'no further device request within 60 s');
    // Energy is booked per poll node: the second node's first reading has no predecessor, and
    // the first node sees the very sample it already had, so no new energy.
    assert.deepEqual(second.payload, { ...original.payload, cached: true, energy_wh: null });
    assert.deepEqual(first.payload, { ...original.payload, cached: true, energy_wh: 0 });
  });

  it('asks the device on every poll by default', async function () {
    await helper.load([nodes.devicePool, nodes.poll], flow(undefined));
    const out = helper.getNode('out');
    for (const id of ['first', 'second']) {
      const received = collect(out, 1);
      helper.getNode(id).receive({ payload: 'go' });
      assert.equal((await received)[0].payload.cached, undefined);
    }
    assert.equal(plug.requestCount, 2);
  });
});
