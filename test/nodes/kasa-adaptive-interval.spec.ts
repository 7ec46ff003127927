import assert from 'node:assert/strict';

import { FakeKasaDevice, loadFixture } from '../support/fake-kasa-device';
import { collect, delay, helper, nodes, unloadAll } from '../support/node-helper';

const adaptiveNode = require('../../dist/nodes/kasa-adaptive-interval.js') as unknown;

const ADAPTIVE = {
  type: 'kasa-adaptive-interval',
  z: 'tab',
  x: 300,
  y: 100,
  base: '2',
  min: '1',
  max: '4',
  lowCv: '0.01',
  highCv: '0.1',
  window: '3',
  deadband: '0.5',
  hold: '2',
};

const reading = (deviceId: string, power: unknown, extra: object = {}) => ({
  device_id: deviceId,
  ts: Date.now(),
  power_w: power,
  ...extra,
});

describe('kasa-adaptive-interval node', function () {
  this.timeout(20_000);

  function standalone(settings: Record<string, unknown> = {}) {
    return [
      { id: 'tab', type: 'tab', label: 'test' },
      { ...ADAPTIVE, id: 'adaptive', wires: [['changes']], ...settings },
      { id: 'changes', type: 'helper', z: 'tab', x: 500, y: 100, wires: [] },
      {
        id: 'catcher',
        type: 'catch',
        z: 'tab',
        x: 100,
        y: 200,
        scope: null,
        uncaught: false,
        wires: [['caught']],
      },
      { id: 'caught', type: 'helper', z: 'tab', x: 300, y: 200, wires: [] },
    ];
  }

  before(function (done) {
    helper.startServer(done);
  });
  afterEach(async function () {
    await unloadAll();
  });
  after(function (done) {
    helper.stopServer(done);
  });

  it('sends a device id, msg.interval and the reason only when an interval changes', async function () {
    await helper.load([adaptiveNode], standalone());
    const adaptive = helper.getNode('adaptive');
    const sent: any[] = [];
    helper.getNode('changes').on('input', (msg: any) => sent.push(msg));
    for (let index = 0; index < 6; index += 1) adaptive.receive({ payload: reading('plug', 40) });
    await delay(50);
    assert.equal(sent.length, 1, 'one message for the first decision, none while it holds');
    assert.equal(sent[0].topic, 'plug');
    assert.equal(sent[0].interval, 4000);
    assert.deepEqual(sent[0].payload, {
      device_id: 'plug',
      interval_ms: 4000,
      previous_ms: null,
      cv: 0,
      reason: 'no-change',
    });
    // A busy load takes `hold` (2) evaluations to win.
    for (const power of [400, 10, 400]) adaptive.receive({ payload: reading('plug', power) });
    await delay(50);
    assert.equal(sent.length, 2);
    assert.equal(sent[1].interval, 1000);
    assert.equal(sent[1].payload.previous_ms, 4000);
    assert.equal(sent[1].payload.reason, 'high-variation');
    assert.deepEqual((adaptive.status as any).lastCall.args[0], {
      fill: 'green',
      shape: 'dot',
      text: 'kasa-adaptive-interval.status.counts',
    });
    assert.equal((adaptive.warn as any).callCount, 0);
  });

  it('takes arrays, skips cached readings and warns once per message about non-readings', async function () {
    await helper.load([adaptiveNode], standalone());
    const adaptive = helper.getNode('adaptive');
    const received = collect(helper.getNode('changes'), 2);
    const cycle = (power: number) => [
      reading('a', power),
      reading('b', power * 10),
      'junk',
      { power_w: 5 },
      reading('a', 999, { cached: true }),
      reading('b', null),
    ];
    for (const power of [7, 7, 7]) adaptive.receive({ payload: cycle(power) });
    const messages = await received;
    assert.deepEqual(
      messages.map((msg) => [msg.topic, msg.interval]),
      [
        ['a', 4000],
        ['b', 4000],
      ],
      'the cached 999 W did not count as a change of power',
    );
    const warnings = (adaptive.warn as any).args.map((call: any[]) => call[0]);
    assert.deepEqual(warnings, Array(3).fill('kasa-adaptive-interval.warnings.ignored'));
  });

  it('rejects a message that is not a reading with a catchable error', async function () {
    await helper.load([adaptiveNode, nodes.catchNode], standalone());
    const caught = collect(helper.getNode('caught'), 2);
    helper.getNode('adaptive').receive({ payload: 'hello' });
    helper.getNode('adaptive').receive({ payload: { power_w: 3 } });
    const errors = await caught;
    for (const msg of errors) {
      assert.match(msg.error.message, /kasa-adaptive-interval\.errors\.not-a-reading$/);
      assert.equal(msg.error.source.id, 'adaptive');
    }
    const adaptive = helper.getNode('adaptive');
    const refused = (adaptive.status as any).lastCall.args[0];
    assert.equal(refused.fill, 'yellow', 'a refused message shows on the canvas');
    assert.match(refused.text, /^kasa-adaptive-interval\.status\.with-refused$/);
    adaptive.receive({ payload: reading('plug', 40) });
    await delay(50);
    const accepted = (adaptive.status as any).lastCall.args[0];
    assert.notEqual(accepted.fill, 'yellow', 'an accepted reading ends the warning');
    assert.equal(accepted.text, 'kasa-adaptive-interval.status.with-refused', 'the count stays');
  });

  it('falls back to the default of a setting that is not a number, with one error naming it', async function () {
    await helper.load([adaptiveNode], standalone({ base: 'soon', window: '' }));
    const adaptive = helper.getNode('adaptive');
    assert.equal((adaptive.error as any).callCount, 1);
    assert.match((adaptive.error as any).args[0][0], /kasa-device-pool\.settings\.not-a-number$/);
    const received = collect(helper.getNode('changes'), 1);
    // Default window 10; default base 60 s clamped to the maximum of 4 s.
    for (let index = 0; index < 10; index += 1) adaptive.receive({ payload: reading('p', 5) });
    assert.equal((await received)[0].interval, 4000);
  });

  describe('wired back into kasa-poll', function () {
    const devices: FakeKasaDevice[] = [];
    afterEach(async function () {
      await unloadAll();
      await Promise.all(devices.splice(0).map((fake) => fake.stop()));
    });

    it('slows down polling of a constant load and speeds up a varying one, at the device', async function () {
      let requests = 0;
      const constant = new FakeKasaDevice({
        fixture: loadFixture('KP115(EU)_1.0_1.0.16'),
        deviceId: '8006AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA01',
        emeter: () => ({ power_mw: 50_000, voltage_mv: 230_000, current_ma: 300, total_wh: 10 }),
      });
      const varying = new FakeKasaDevice({
        fixture: loadFixture('KP115(EU)_1.0_1.0.16'),
        deviceId: '8006AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA02',
        emeter: () => ({
          power_mw: (requests++ % 2 === 0 ? 500 : 10) * 1000,
          voltage_mv: 230_000,
          current_ma: 1000,
          total_wh: 10,
        }),
      });
      devices.push(constant, varying);
      await Promise.all(devices.map((fake) => fake.start()));
      await helper.load(
        [nodes.devicePool, nodes.poll, adaptiveNode],
        [
          { id: 'tab', type: 'tab', label: 'test' },
          {
            id: 'pool',
            type: 'kasa-device-pool',
            maxInFlight: 8,
            timeout: 1,
            retries: 0,
            maxPowerW: 4000,
          },
          {
            id: 'poll',
            type: 'kasa-poll',
            z: 'tab',
            x: 100,
            y: 100,
            pool: 'pool',
            devices: `127.0.0.1:${constant.port}, 127.0.0.1:${varying.port}`,
            interval: 2,
            output: 'reading',
            wires: [['adaptive']],
          },
          { ...ADAPTIVE, id: 'adaptive', wires: [['poll', 'changes']] },
          { id: 'changes', type: 'helper', z: 'tab', x: 500, y: 100, wires: [] },
        ],
      );
      // Readings at 0, 2 and 4 s fill the window of 3; both decisions come with the third.
      const changes = await collect(helper.getNode('changes'), 2, 8000);
      const byDevice = new Map(changes.map((msg) => [msg.topic, msg.payload]));
      assert.deepEqual(byDevice.get(constant.deviceId), {
        device_id: constant.deviceId,
        interval_ms: 4000,
        previous_ms: null,
        cv: 0,
        reason: 'no-change',
      });
      assert.equal(byDevice.get(varying.deviceId).interval_ms, 1000);
      assert.equal(byDevice.get(varying.deviceId).reason, 'high-variation');

      const rateBefore = (fake: FakeKasaDevice) => {
        const times = fake.requests.map((request) => request.at);
        return (times.length - 1) / ((times.at(-1)! - times[0]!) / 1000);
      };
      const before = [constant, varying].map(rateBefore);
      const counts = [constant.requestCount, varying.requestCount];
      // 1 s polling fits 5 requests into 5.5 s, 4 s polling one.
      await delay(5500);
      const after = [constant, varying].map(
        (fake, index) => (fake.requestCount - counts[index]!) / 5.5,
      );
      const rates = JSON.stringify({ before, after });
      assert.ok(
        before.every((rate) => rate > 0.4 && rate < 0.6),
        `2 s polling first: ${rates}`,
      );
      assert.ok(after[0]! <= before[0]! / 2, `the constant plug is asked less often: ${rates}`);
      assert.ok(after[1]! >= before[1]! * 1.4, `the varying plug is asked more often: ${rates}`);
    });
  });
});
