import assert from 'node:assert/strict';

import { KasaError } from '../../../lib/errors';
import {
  checkPlausible,
  DEFAULT_LIMITS,
  describeDevice,
  methodReply,
  readRealtime,
} from '../../../lib/readings/normalise';
import { deviceFixture, fieldCase } from '../../support/fixtures';

const close = (actual: number | null, expected: number, tolerance = 0.001) => {
  assert.ok(actual !== null, `expected ${expected}, got null`);
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `expected ${expected} ± ${tolerance}, got ${actual}`,
  );
};

describe('normalise', function () {
  describe('readRealtime()', function () {
    it('reads the base units of HS110 hardware 1 and converts kWh to Wh', function () {
      const fixture = deviceFixture('HS110(EU)_1.0_1.2.5');
      const realtime = readRealtime(methodReply(fixture, 'emeter', 'get_realtime'));
      assert.ok(realtime);
      close(realtime.power_w, 0.928511, 1e-6);
      close(realtime.voltage_v, 231.067823, 1e-6);
      close(realtime.current_a, 0.014937, 1e-6);
      close(realtime.total_wh, 55139, 1e-6);
    });

    it('reads the milli-units of newer hardware (HS110 v4, KP115, HS300)', function () {
      for (const name of ['HS110(EU)_4.0_1.0.4', 'KP115(EU)_1.0_1.0.16', 'HS300(US)_2.0_1.0.3']) {
        const raw = deviceFixture(name).emeter!.get_realtime!;
        const realtime = readRealtime(raw);
        assert.ok(realtime, name);
        close(realtime.power_w, (raw.power_mw as number) / 1000, 1e-9);
        close(realtime.voltage_v, (raw.voltage_mv as number) / 1000, 1e-9);
        close(realtime.current_a, (raw.current_ma as number) / 1000, 1e-9);
        close(realtime.total_wh, raw.total_wh as number, 1e-9);
      }
    });

    it('gives the values of case-001 for both hardware versions', function () {
      const { input, expected } = fieldCase('case-001-emeter-field-names-hw-versions');
      for (const device of input.devices) {
        const realtime = readRealtime(device['emeter.get_realtime']);
        const want = expected[device.name];
        assert.ok(realtime);
        close(realtime.power_w, want.power_w);
        close(realtime.voltage_v, want.voltage_v);
        close(realtime.current_a, want.current_a);
        close(realtime.total_wh, want.total_kwh * 1000, 1);
      }
    });

    it('keeps power as reported when it differs from volts times amps (case-014)', function () {
      const { input, expected } = fieldCase('case-014-power-not-volts-times-amps');
      const realtime = readRealtime(input['emeter.get_realtime']);
      assert.ok(realtime);
      close(realtime.power_w, expected.stored.power_w);
      close(realtime.voltage_v, expected.stored.voltage_v);
      close(realtime.current_a, expected.stored.current_a);
      close(realtime.total_wh, expected.stored.total_kwh * 1000);
      assert.doesNotThrow(() => checkPlausible(realtime, DEFAULT_LIMITS, 'kp125'));
    });

    it('returns null for a plug without a meter, whether the error is at module or method level', function () {
      const { input } = fieldCase('case-002-plug-without-emeter');
      const plug = input.devices.find((device: { name: string }) => device.name === 'onoff-plug');
      assert.equal(readRealtime(plug['emeter.get_realtime']), null);
      assert.equal(
        readRealtime(methodReply(plug.raw_reply_to_emeter_request, 'emeter', 'get_realtime')),
        null,
      );
      const hs103 = deviceFixture('HS103(US)_1.0_1.5.7');
      assert.equal(readRealtime(methodReply(hs103, 'emeter', 'get_realtime')), null);
    });

    it('reports a missing field as null, never NaN or 0 (case-025 b)', function () {
      const { input } = fieldCase('case-025-nan-in-averages');
      const realtime = readRealtime(input.b_missing_field[1].emeter);
      assert.ok(realtime);
      assert.equal(realtime.power_w, null);
      assert.equal(realtime.current_a, 0);
      close(realtime.voltage_v, 230);
    });

    it('throws DEVICE_ERROR_REPLY for other device errors', function () {
      assert.throws(
        () => readRealtime({ err_code: -3, err_msg: 'invalid argument' }),
        (error: unknown) => error instanceof KasaError && error.code === 'DEVICE_ERROR_REPLY',
      );
    });
  });

  describe('describeDevice()', function () {
    it('describes a plug with a meter', function () {
      const info = describeDevice(deviceFixture('KP115(EU)_1.0_1.0.16').system!.get_sysinfo!);
      assert.equal(info.model, 'KP115(EU)');
      assert.equal(info.has_emeter, true);
      assert.equal(info.outlets.length, 0);
      assert.match(info.device_id, /^[0-9A-F]{40}$/);
    });

    it('lists HS300 outlets by full child id with their aliases and states', function () {
      const sysinfo = deviceFixture('HS300(US)_1.0_1.0.21').system!.get_sysinfo!;
      const info = describeDevice(sysinfo);
      assert.equal(info.has_emeter, true);
      assert.equal(info.outlets.length, 6);
      info.outlets.forEach((outlet, index) => {
        assert.equal(outlet.device_id, info.device_id + String(index).padStart(2, '0'));
        assert.equal(outlet.index, index);
      });
    });

    it('prefixes short child ids of older firmware with the parent id', function () {
      const sysinfo = structuredClone(deviceFixture('HS300(US)_1.0_1.0.21').system!.get_sysinfo!);
      const children = sysinfo.children as { id: string }[];
      children.forEach((child, index) => (child.id = String(index).padStart(2, '0')));
      const info = describeDevice(sysinfo);
      assert.deepEqual(
        info.outlets.map((outlet) => outlet.device_id),
        children.map((_, index) => `${String(sysinfo.deviceId)}0${index}`),
      );
      assert.equal(info.outlets[3]!.child_id, '03');
    });

    it('knows strips and plugs without a meter from the feature flag', function () {
      for (const name of ['KP303(UK)_1.0_1.0.3', 'EP40(US)_1.0_1.0.2', 'HS100(UK)_1.0_1.2.6']) {
        assert.equal(
          describeDevice(deviceFixture(name).system!.get_sysinfo!).has_emeter,
          false,
          name,
        );
      }
    });

    it('rejects a sysinfo without a device id', function () {
      assert.throws(() => describeDevice({ alias: 'x', err_code: 0 }), /deviceId/);
    });
  });

  describe('checkPlausible()', function () {
    it('rejects the 134 kW spike of case-013 and keeps the normal samples', function () {
      const { input } = fieldCase('case-013-absurd-power-spike');
      const verdicts = input.samples.map((sample: Record<string, number>) => {
        const realtime = readRealtime({ ...sample, err_code: 0 })!;
        try {
          checkPlausible(realtime, DEFAULT_LIMITS, 'washer');
          return 'ok';
        } catch (error) {
          assert.ok(error instanceof KasaError);
          assert.equal(error.code, 'IMPLAUSIBLE_READING');
          return 'rejected';
        }
      });
      assert.deepEqual(verdicts, ['ok', 'ok', 'rejected', 'ok']);
    });

    it('rejects negative power and impossible voltage', function () {
      const base = { power_w: 10, voltage_v: 230, current_a: 0.1, total_wh: 5 };
      assert.throws(() => checkPlausible({ ...base, power_w: -1 }, DEFAULT_LIMITS, 'x'), /power/);
      assert.throws(
        () => checkPlausible({ ...base, voltage_v: 5000 }, DEFAULT_LIMITS, 'x'),
        /voltage/,
      );
    });
  });
});
