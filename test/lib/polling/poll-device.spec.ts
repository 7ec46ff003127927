import assert from 'node:assert/strict';

import { KasaError } from '../../../lib/errors';
import { parseDeviceEntry } from '../../../lib/polling/device-entries';
import {
  pollTarget,
  type DeviceRequester,
  type PollContext,
} from '../../../lib/polling/poll-device';
import { EnergyTracker } from '../../../lib/readings/energy';
import { DEFAULT_LIMITS } from '../../../lib/readings/normalise';
import { deviceFixture, fieldCase } from '../../support/fixtures';

type Reply = Record<string, unknown>;

/** Answers like a device from fixture data, in memory, and records what it was asked. */
class FixtureRequester implements DeviceRequester {
  readonly requests: Reply[] = [];
  constructor(
    public fixture: Record<string, Record<string, Reply>>,
    public realtime?: (childId: string | null) => Reply,
  ) {}

  request(_address: unknown, payload: Reply): Promise<Reply> {
    this.requests.push(payload);
    const reply: Record<string, Record<string, unknown>> = {};
    const childIds = (payload.context as { child_ids?: string[] } | undefined)?.child_ids;
    for (const [module, methods] of Object.entries(payload)) {
      if (module === 'context') continue;
      const known = this.fixture[module];
      if (known === undefined) {
        reply[module] = { err_code: -1, err_msg: 'module not support' };
        continue;
      }
      reply[module] = {};
      for (const method of Object.keys(methods as object)) {
        const custom =
          module === 'emeter' && this.realtime ? this.realtime(childIds?.[0] ?? null) : undefined;
        reply[module][method] = custom ??
          known[method] ?? { err_code: -2, err_msg: 'member not support' };
      }
    }
    return Promise.resolve(reply);
  }
}

function contextFor(requester: DeviceRequester, now = { t: 1_700_000_000_000 }): PollContext {
  return {
    requester,
    tracker: new EnergyTracker(),
    learned: new Map(),
    limits: DEFAULT_LIMITS,
    clock: { now: () => (now.t += 10_000) },
  };
}

describe('pollTarget()', function () {
  it('reads a plug with one round trip of sysinfo and realtime', async function () {
    const requester = new FixtureRequester(deviceFixture('KP115(EU)_1.0_1.0.16'));
    const context = contextFor(requester);
    const first = await pollTarget(context, parseDeviceEntry('127.0.0.2'));
    assert.equal(requester.requests.length, 1);
    assert.deepEqual(Object.keys(requester.requests[0]!).sort(), ['emeter', 'system']);
    assert.equal(first.readings.length, 1);
    const reading = first.readings[0]!;
    assert.equal(reading.model, 'KP115(EU)');
    assert.equal(reading.host, '127.0.0.2');
    assert.equal(reading.port, 9999);
    assert.equal(reading.child_id, null);
    assert.equal(reading.energy_wh, null, 'no previous reading yet');
    assert.equal(first.devices?.length, 1);
    const second = await pollTarget(context, parseDeviceEntry('127.0.0.2'));
    assert.equal(second.readings[0]!.energy_wh, 0);
    assert.equal(second.devices, null, 'unchanged devices are not reported again');
  });

  it('books energy per consumer, so two nodes polling one plug each get the whole energy', async function () {
    let totalWh = 100;
    const requester = new FixtureRequester(deviceFixture('KP115(EU)_1.0_1.0.16'), () => ({
      power_mw: 50000,
      voltage_mv: 230000,
      current_ma: 250,
      total_wh: totalWh,
      err_code: 0,
    }));
    const context = contextFor(requester);
    const target = parseDeviceEntry('127.0.0.2');
    const sums = { store: 0, dashboard: 0 };
    for (let poll = 0; poll < 6; poll += 1) {
      totalWh += 3;
      const consumer = poll % 2 === 0 ? 'store' : 'dashboard';
      const outcome = await pollTarget(context, target, consumer);
      sums[consumer] += outcome.readings[0]!.energy_wh ?? 0;
      assert.deepEqual(outcome.notices, [], 'no false counter notices');
    }
    // Each consumer saw the counter go 103 -> 115 (store) and 106 -> 118 (dashboard).
    assert.deepEqual(sums, { store: 12, dashboard: 12 });
  });

  it('polls every HS300 outlet with its own request and files readings under full child ids', async function () {
    const fixture = deviceFixture('HS300(US)_2.0_1.0.3');
    const powers = [1000, 2000, 3000, 4000, 5000, 60000];
    const requester = new FixtureRequester(fixture, (childId) => {
      const index = childId === null ? 0 : Number(childId.slice(-2));
      return {
        power_mw: powers[index],
        voltage_mv: 120000,
        current_ma: 100,
        total_wh: 10 + index,
        err_code: 0,
      };
    });
    const context = contextFor(requester);
    const outcome = await pollTarget(context, parseDeviceEntry('127.0.0.5'));
    const parent = String(fixture.system!.get_sysinfo!.deviceId);
    assert.deepEqual(
      outcome.readings.map((reading) => [reading.device_id, reading.power_w, reading.child_id]),
      powers.map((power, index) => [`${parent}0${index}`, power / 1000, `${parent}0${index}`]),
    );
    assert.equal(outcome.devices?.length, 7);
    const rows = outcome.devices;
    assert.ok(rows);
    assert.equal(rows[0]?.has_emeter, false, 'the strip has no series of its own');
    assert.ok(rows.slice(1).every((row) => row.parent_id === parent && row.has_emeter));
    requester.requests.length = 0;
    await pollTarget(context, parseDeviceEntry('127.0.0.5'));
    assert.equal(
      requester.requests.length,
      7,
      '1 sysinfo + 6 outlet requests per cycle (case-028 budget)',
    );
    assert.deepEqual(requester.requests[0], { system: { get_sysinfo: {} } });
  });

  it('notes once that a strip without meters has none, and asks it for sysinfo only', async function () {
    const requester = new FixtureRequester(deviceFixture('KP303(UK)_1.0_1.0.3'));
    const context = contextFor(requester);
    const kinds = [];
    for (let poll = 0; poll < 3; poll += 1) {
      const outcome = await pollTarget(context, parseDeviceEntry('127.0.0.7'));
      assert.equal(outcome.readings.length, 0);
      kinds.push(...outcome.notices.map((notice) => notice.kind));
    }
    assert.deepEqual(kinds, ['no-emeter']);
    assert.equal(requester.requests.filter((request) => 'emeter' in request).length, 1);
  });

  it('polls one outlet of a strip with host/N and rejects an outlet that does not exist', async function () {
    const requester = new FixtureRequester(deviceFixture('HS300(US)_1.0_1.0.21'));
    const context = contextFor(requester);
    const outcome = await pollTarget(context, parseDeviceEntry('127.0.0.5/5'));
    assert.equal(outcome.readings.length, 1);
    assert.match(outcome.readings[0]!.device_id, /05$/);
    await assert.rejects(
      pollTarget(context, parseDeviceEntry('127.0.0.5/6')),
      (error: unknown) =>
        error instanceof KasaError &&
        error.code === 'NO_SUCH_OUTLET' &&
        /has 6 outlets/.test(error.message),
    );
  });

  it('records a plug without a meter once and stops asking it for energy (case-002)', async function () {
    const { input, expected } = fieldCase('case-002-plug-without-emeter');
    const onoff = input.devices.find((device: { name: string }) => device.name === 'onoff-plug');
    const requester = new FixtureRequester({ system: { get_sysinfo: onoff.sysinfo } });
    const context = contextFor(requester);
    const notices = [];
    for (let cycle = 0; cycle < 10; cycle += 1) {
      const outcome = await pollTarget(context, parseDeviceEntry('127.0.0.6'));
      assert.equal(outcome.readings.length, 0);
      notices.push(...outcome.notices);
      if (cycle === 0) assert.equal(outcome.devices?.[0]?.has_emeter, false);
    }
    const emeterRequests = requester.requests.filter((request) => 'emeter' in request).length;
    assert.ok(emeterRequests <= 1, `${emeterRequests} emeter requests; ${expected['onoff-plug']}`);
    assert.deepEqual(
      notices.map((notice) => notice.kind),
      ['no-emeter'],
    );
  });

  it('rejects the implausible spike of case-013 without moving the energy baseline', async function () {
    const { input, expected } = fieldCase('case-013-absurd-power-spike');
    let sample = 0;
    const fixture = deviceFixture('HS110(EU)_4.0_1.0.4');
    const requester = new FixtureRequester(fixture, () => ({
      ...input.samples[sample],
      err_code: 0,
    }));
    const context = contextFor(requester);
    const stored = [];
    const problems = [];
    for (sample = 0; sample < input.samples.length; sample += 1) {
      const outcome = await pollTarget(context, parseDeviceEntry('127.0.0.7'));
      stored.push(...outcome.readings);
      problems.push(...outcome.problems);
    }
    assert.equal(stored.length, 3);
    assert.deepEqual(
      problems.map((problem) => problem.code),
      ['IMPLAUSIBLE_READING'],
    );
    const powers = stored.map((reading) => reading.power_w!);
    const average = powers.reduce((sum, power) => sum + power, 0) / powers.length;
    assert.ok(Math.abs(average - expected.avg_power_w) <= 0.01);
    assert.equal(Math.max(...powers), expected.max_power_w);
    const energy = stored.reduce((sum, reading) => sum + (reading.energy_wh ?? 0), 0);
    assert.equal(energy, expected.energy_wh_from_total);
  });

  it('files readings under the device that answered when another plug takes over the address (case-024)', async function () {
    const { input } = fieldCase('case-024-plug-changes-address');
    const [fridge, kettle] = Object.values<{
      deviceId: string;
      alias: string;
      power_mw: number;
      mac: string;
    }>(input.before);
    const answering = { device: fridge! };
    const fixture = deviceFixture('HS110(EU)_4.0_1.0.4');
    const requester = new FixtureRequester(fixture, () => ({
      power_mw: answering.device.power_mw,
      voltage_mv: 230000,
      current_ma: 100,
      total_wh: 1,
      err_code: 0,
    }));
    const original = requester.request.bind(requester);
    requester.request = async (address, payload) => {
      const reply = await original(address, payload);
      const sysinfo = (reply.system as { get_sysinfo: Reply }).get_sysinfo;
      (reply.system as { get_sysinfo: Reply }).get_sysinfo = {
        ...sysinfo,
        deviceId: answering.device.deviceId,
        alias: answering.device.alias,
        mac: answering.device.mac,
      };
      return reply;
    };
    const context = contextFor(requester);
    const target = parseDeviceEntry('127.0.0.1:19001');
    for (let poll = 0; poll < 5; poll += 1) await pollTarget(context, target);
    answering.device = kettle!;
    const outcome = await pollTarget(context, target);
    assert.equal(outcome.readings[0]!.device_id, kettle!.deviceId);
    assert.equal(outcome.readings[0]!.power_w, 2000);
    assert.deepEqual(outcome.notices, [
      {
        device_id: kettle!.deviceId,
        kind: 'identity-changed',
        previous_device_id: fridge!.deviceId,
      },
    ]);
  });
});
