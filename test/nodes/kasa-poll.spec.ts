import assert from 'node:assert/strict';

import { FakeFleet, type FakeKasaDeviceOptions } from '../support/fake-kasa-device';
import { collect, delay, helper, nodes, unloadAll } from '../support/node-helper';

const POOL = {
  id: 'pool',
  type: 'kasa-device-pool',
  name: 'Kasa devices',
  maxInFlight: 8,
  timeout: 1,
  retries: 0,
  maxPowerW: 4000,
};

function flow(poll: Record<string, unknown>) {
  return [
    { id: 'tab', type: 'tab', label: 'test' },
    POOL,
    {
      id: 'poll',
      type: 'kasa-poll',
      z: 'tab',
      x: 100,
      y: 100,
      pool: 'pool',
      interval: 0,
      output: 'reading',
      wires: [['out']],
      ...poll,
    },
    { id: 'out', type: 'helper', z: 'tab', x: 300, y: 100, wires: [] },
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

const loadNodes = [nodes.devicePool, nodes.poll, nodes.catchNode];

describe('kasa-poll node', function () {
  this.timeout(15_000);
  const fleet = new FakeFleet();

  const device = (fixture: string, options: Partial<FakeKasaDeviceOptions> = {}) =>
    fleet.start(fixture, options);

  before(function (done) {
    helper.startServer(done);
  });
  afterEach(async function () {
    await unloadAll();
    await fleet.stopAll();
  });
  after(function (done) {
    helper.stopServer(done);
  });

  it('polls on input and sends one reading per plug in DESIGN units', async function () {
    const plug = await device('KP115(EU)_1.0_1.0.16', {
      emeter: () => ({ power_mw: 43536, voltage_mv: 219341, current_ma: 369, total_wh: 884 }),
    });
    await helper.load(loadNodes, flow({ devices: `127.0.0.1:${plug.port}` }));
    const out = helper.getNode('out');
    const received = collect(out, 1);
    helper.getNode('poll').receive({ payload: 'go' });
    const [msg] = await received;
    assert.equal(msg.topic, plug.deviceId);
    assert.deepEqual(
      { ...msg.payload, ts: 0 },
      {
        device_id: plug.deviceId,
        ts: 0,
        power_w: 43.536,
        voltage_v: 219.341,
        current_a: 0.369,
        total_wh: 884,
        energy_wh: null,
        alias: msg.payload.alias,
        model: 'KP115(EU)',
        host: '127.0.0.1',
        port: plug.port,
        child_id: null,
        relay_on: msg.payload.relay_on,
      },
    );
    assert.ok(Math.abs(msg.payload.ts - Date.now()) < 5000);
  });

  it('sends one message per cycle with every HS300 outlet in cycle mode', async function () {
    const strip = await device('HS300(US)_2.0_1.0.3', {
      emeter: (childId) => ({
        power_mw: 1000 * (1 + Number(childId?.slice(-2))),
        voltage_mv: 120000,
        current_ma: 10,
        total_wh: 5,
      }),
    });
    await helper.load(loadNodes, flow({ devices: `127.0.0.1:${strip.port}`, output: 'cycle' }));
    const received = collect(helper.getNode('out'), 1);
    helper.getNode('poll').receive({ payload: 'go' });
    const [msg] = await received;
    assert.ok(Array.isArray(msg.payload));
    assert.deepEqual(
      msg.payload.map((reading: { device_id: string; power_w: number }) => [
        reading.device_id,
        reading.power_w,
      ]),
      strip.childIds.map((id, index) => [id, index + 1]),
    );
    assert.equal(msg.devices.length, 7);
  });

  it('polls on its interval and stops when closed', async function () {
    const plug = await device('HS110(EU)_4.0_1.0.4');
    const handles = () => {
      const counts = { Timeout: 0, TCPSocketWrap: 0 };
      for (const kind of process.getActiveResourcesInfo()) {
        if (kind === 'Timeout' || kind === 'TCPSocketWrap') counts[kind] += 1;
      }
      return counts;
    };
    const before = handles();
    await helper.load(loadNodes, flow({ devices: `127.0.0.1:${plug.port}`, interval: 1 }));
    await collect(helper.getNode('out'), 2, 4000);
    assert.ok(
      handles().TCPSocketWrap > before.TCPSocketWrap,
      'a kept-open device connection while running',
    );
    await unloadAll();
    const after = plug.requestCount;
    await delay(1500);
    assert.equal(plug.requestCount, after, 'no polls after close');
    assert.equal(plug.openConnections, 0, 'no connection left open after close');
    assert.deepEqual(handles(), before, 'no timers or sockets of ours left after close');
  });

  it('reports a failing device once per change of state, catchably, and keeps polling the others', async function () {
    const healthy = await device('KP115(EU)_1.0_1.0.16');
    const broken = await device('HS110(EU)_4.0_1.0.4');
    broken.behaviour = 'close';
    await helper.load(
      loadNodes,
      flow({ devices: `127.0.0.1:${healthy.port}, 127.0.0.1:${broken.port}` }),
    );
    const poll = helper.getNode('poll');
    const caught: any[] = [];
    helper.getNode('caught').on('input', (msg: any) => caught.push(msg));
    const readings: any[] = [];
    helper.getNode('out').on('input', (msg: any) => readings.push(msg));
    for (let cycle = 0; cycle < 3; cycle += 1) {
      poll.receive({ payload: cycle });
      await delay(150);
    }
    assert.equal(readings.length, 3, 'the healthy plug answered every cycle');
    assert.equal(caught.length, 1, 'one error for the failing state, not one per poll');
    assert.equal(caught[0].payload.device, `127.0.0.1:${broken.port}`);
    assert.equal(caught[0].payload.code, 'DEVICE_CLOSED');
    assert.equal(caught[0].error.source.id, 'poll');
    const statuses = (poll.status as any).args.map((call: any[]) => call[0]);
    assert.deepEqual(statuses.at(-1), {
      fill: 'yellow',
      shape: 'ring',
      text: 'kasa-poll.status.counts',
    });
  });

  it('rejects malformed device entries with an error and polls the good ones', async function () {
    const plug = await device('KP115(EU)_1.0_1.0.16');
    await helper.load(
      loadNodes,
      flow({ devices: `not a host!\n127.0.0.1:${plug.port}\n127.0.0.1:99999` }),
    );
    // Reported once the flow has started, so the Catch node (created after kasa-poll) gets them.
    const caught = await collect(helper.getNode('caught'), 2);
    assert.deepEqual(
      caught.map((msg) => msg.error.source.id),
      ['poll', 'poll'],
    );
    const poll = helper.getNode('poll');
    const errors = (poll.error as any).args.map((call: any[]) => String(call[0]));
    assert.equal(errors.length, 2);
    assert.match(errors[0], /"not a host!" is not host\[:port\]\[\/outlet\]/);
    assert.match(errors[1], /port 99999 is not 1-65535/);
    const received = collect(helper.getNode('out'), 1);
    poll.receive({ payload: 'go' });
    assert.equal((await received)[0].topic, plug.deviceId);
  });

  it('takes a hand-written list of entries, and names a device list of the wrong shape without failing', async function () {
    const plug = await device('KP115(EU)_1.0_1.0.16');
    await helper.load(loadNodes, flow({ devices: [`127.0.0.1:${plug.port}`] }));
    const received = collect(helper.getNode('out'), 1);
    helper.getNode('poll').receive({ payload: 'go' });
    assert.equal((await received)[0].topic, plug.deviceId);
    await unloadAll();

    for (const devices of [42, { host: '127.0.0.1' }, undefined]) {
      await helper.load(loadNodes, flow({ devices }));
      const poll = helper.getNode('poll');
      const errors = (poll.error as any).args.map((call: any[]) => String(call[0]));
      const shapeError = devices === undefined ? [] : ['kasa-poll.errors.bad-device-list'];
      assert.deepEqual(
        errors,
        [...shapeError, 'kasa-poll.errors.no-devices'],
        JSON.stringify(devices),
      );
      assert.deepEqual((poll.status as any).lastCall.args[0], {
        fill: 'red',
        shape: 'ring',
        text: 'kasa-poll.status.no-devices',
      });
      // An inject into it is answered with the reason, not met with silence.
      const answers: string[] = [];
      helper.getNode('caught').on('input', (msg: any) => {
        if (msg.payload === 'go') answers.push(String(msg.error.message));
      });
      poll.receive({ payload: 'go' });
      await delay(50);
      assert.deepEqual(answers, ['kasa-poll.errors.no-devices']);
      await unloadAll();
    }
  });

  it('shows a red status and an error without a pool', async function () {
    await helper.load(loadNodes, [
      { id: 'tab', type: 'tab' },
      {
        id: 'poll',
        type: 'kasa-poll',
        z: 'tab',
        x: 100,
        y: 100,
        pool: 'missing',
        devices: '127.0.0.1',
        interval: 0,
        wires: [],
      },
    ]);
    const poll = helper.getNode('poll');
    assert.deepEqual((poll.status as any).lastCall.args[0], {
      fill: 'red',
      shape: 'ring',
      text: 'kasa-poll.status.no-pool',
    });
    assert.equal((poll.error as any).lastCall.args[0], 'kasa-poll.errors.no-pool');
    poll.receive({ payload: 'ignored' });
  });

  it('narrows a poll to msg.topic and changes the interval of that device only', async function () {
    const first = await device('KP115(EU)_1.0_1.0.16');
    const second = await device('HS110(EU)_4.0_1.0.4');
    await helper.load(
      loadNodes,
      flow({ devices: `127.0.0.1:${first.port}\n127.0.0.1:${second.port}` }),
    );
    const poll = helper.getNode('poll');
    const received = collect(helper.getNode('out'), 1);
    poll.receive({ topic: `127.0.0.1:${second.port}` });
    assert.equal((await received)[0].topic, second.deviceId);
    assert.equal(first.requestCount, 0);
    poll.receive({ topic: second.deviceId, interval: 1000 });
    await delay(2600);
    assert.equal(first.requestCount, 0, 'the other device keeps its manual schedule');
    assert.ok(second.requestCount >= 3, `second device polled ${second.requestCount} times`);
  });

  it('rejects a bad msg.interval and an unknown topic with catchable errors', async function () {
    const plug = await device('KP115(EU)_1.0_1.0.16');
    await helper.load(loadNodes, flow({ devices: `127.0.0.1:${plug.port}` }));
    const caught = collect(helper.getNode('caught'), 2);
    helper.getNode('poll').receive({ interval: 'soon' });
    helper.getNode('poll').receive({ topic: '127.0.0.99' });
    const messages = await caught;
    assert.match(messages[0].error.message, /kasa-poll\.errors\.bad-interval$/);
    assert.match(messages[1].error.message, /kasa-poll\.errors\.unknown-device$/);
    assert.equal(plug.requestCount, 0);
    const refused = (helper.getNode('poll').status as any).lastCall.args[0];
    assert.equal(refused.fill, 'yellow', 'refused messages show on the canvas');
    assert.match(refused.text, /^kasa-poll\.status\.with-refused$/);
  });
});
