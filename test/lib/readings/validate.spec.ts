import assert from 'node:assert/strict';

import { KasaError } from '../../../lib/errors';
import {
  describeRejected,
  toDeviceInfo,
  toDeviceInfos,
  toReading,
  toReadings,
  toStoreInput,
} from '../../../lib/readings/validate';

const TS = Date.parse('2024-05-01T12:00:00Z');
const DEVICE = '80060000000000000000000000000000000A0001';

function badReading(value: unknown, pattern: RegExp): void {
  assert.throws(
    () => toReading(value),
    (error: unknown) =>
      error instanceof KasaError && error.code === 'BAD_READING' && pattern.test(error.message),
  );
}

describe('toReading()', function () {
  it('should return a full reading with nulls for what was not given', function () {
    assert.deepEqual(toReading({ device_id: DEVICE, ts: TS, power_w: 12.5 }), {
      device_id: DEVICE,
      ts: TS,
      power_w: 12.5,
      voltage_v: null,
      current_a: null,
      total_wh: null,
      energy_wh: null,
      alias: null,
      model: null,
      host: null,
      port: null,
      child_id: null,
      relay_on: null,
    });
  });

  it('should accept ts as an ISO string, a digit string or a Date and give ms', function () {
    assert.equal(toReading({ device_id: DEVICE, ts: '2024-05-01T12:00:00Z' }).ts, TS);
    assert.equal(toReading({ device_id: DEVICE, ts: '2024-05-01T14:00:00+02:00' }).ts, TS);
    assert.equal(toReading({ device_id: DEVICE, ts: String(TS) }).ts, TS);
    assert.equal(toReading({ device_id: DEVICE, ts: new Date(TS) }).ts, TS);
    assert.equal(toReading({ device_id: DEVICE, ts: TS + 0.6 }).ts, TS + 1);
  });

  it('should reject non-objects, naming what was received', function () {
    badReading('hello', /must be an object, got "hello"/);
    badReading(null, /got null/);
    badReading([1], /got an array/);
    badReading(42, /got 42/);
    badReading({ device_id: DEVICE, ts: NaN }, /ts is not a valid time: NaN/);
  });

  it('should reject a missing or empty device_id', function () {
    badReading({ ts: TS }, /device_id is missing/);
    badReading({ device_id: '', ts: TS }, /device_id is missing/);
    badReading({ device_id: '   ', ts: TS }, /device_id must be a non-empty string/);
    badReading({ device_id: 7, ts: TS }, /device_id must be a non-empty string, got 7/);
  });

  it('should reject a missing, invalid or seconds-based ts', function () {
    badReading({ device_id: DEVICE }, /ts is missing/);
    badReading({ device_id: DEVICE, ts: null }, /ts is missing/);
    badReading({ device_id: DEVICE, ts: 'yesterday' }, /ts is not a valid time: "yesterday"/);
    badReading({ device_id: DEVICE, ts: Number.NaN }, /ts is not a valid time/);
    badReading({ device_id: DEVICE, ts: {} }, /ts must be ms since the epoch or an ISO time/);
    badReading({ device_id: DEVICE, ts: 1714564800 }, /looks like seconds/);
  });

  it('should turn NaN, Infinity and non-numeric strings into null, never NaN (case-025)', function () {
    const reading = toReading({
      device_id: DEVICE,
      ts: TS,
      power_w: Number.NaN,
      voltage_v: 'NaN',
      current_a: Number.POSITIVE_INFINITY,
      total_wh: 'Infinity',
      energy_wh: 'abc',
    });
    for (const field of ['power_w', 'voltage_v', 'current_a', 'total_wh', 'energy_wh'] as const) {
      assert.equal(reading[field], null, field);
    }
  });

  it('should accept numeric strings and drop a negative energy', function () {
    const reading = toReading({ device_id: DEVICE, ts: TS, power_w: ' 12.5 ', energy_wh: -3 });
    assert.equal(reading.power_w, 12.5);
    assert.equal(reading.energy_wh, null);
  });

  it('should keep text fields only when they are strings and ports only when valid', function () {
    const reading = toReading({
      device_id: DEVICE,
      ts: TS,
      alias: 'Fridge',
      model: 42,
      host: '',
      child_id: '00',
      port: '9999',
      relay_on: 1,
    });
    assert.equal(reading.alias, 'Fridge');
    assert.equal(reading.model, null);
    assert.equal(reading.host, null);
    assert.equal(reading.child_id, '00');
    assert.equal(reading.port, 9999);
    assert.equal(reading.relay_on, true);
    assert.equal(toReading({ device_id: DEVICE, ts: TS, port: 70000 }).port, null);
  });

  it('should return a copy, leaving the input untouched', function () {
    const input = { device_id: DEVICE, ts: '2024-05-01T12:00:00Z', power_w: 'NaN' };
    toReading(input);
    assert.deepEqual(input, { device_id: DEVICE, ts: '2024-05-01T12:00:00Z', power_w: 'NaN' });
  });
});

describe('toReadings()', function () {
  it('should accept a single reading', function () {
    const { readings, rejected } = toReadings({ device_id: DEVICE, ts: TS });
    assert.equal(readings.length, 1);
    assert.equal(rejected.length, 0);
  });

  it('should keep the valid items of an array and report each bad one by index', function () {
    const { readings, rejected } = toReadings([
      { device_id: DEVICE, ts: TS },
      { ts: TS },
      { device_id: DEVICE, ts: TS + 60_000 },
      'junk',
    ]);
    assert.deepEqual(
      readings.map((r) => r.ts),
      [TS, TS + 60_000],
    );
    assert.deepEqual(
      rejected.map((r) => [r.index, r.error.code, r.error.details.index]),
      [
        [1, 'BAD_READING', 1],
        [3, 'BAD_READING', 3],
      ],
    );
    assert.match(rejected[0]!.error.message, /device_id is missing/);
  });

  it('should reject a string payload as item 0', function () {
    const { readings, rejected } = toReadings('{"device_id":"x"}');
    assert.equal(readings.length, 0);
    assert.equal(rejected[0]?.index, 0);
  });
});

describe('toDeviceInfo()', function () {
  it('should fill defaults and read has_emeter', function () {
    assert.deepEqual(toDeviceInfo({ device_id: DEVICE, model: 'HS103(US)', has_emeter: 0 }), {
      device_id: DEVICE,
      parent_id: null,
      child_id: null,
      host: null,
      port: null,
      alias: null,
      model: 'HS103(US)',
      hw_ver: null,
      sw_ver: null,
      mac: null,
      has_emeter: false,
    });
    assert.equal(toDeviceInfo({ device_id: DEVICE, has_emeter: true }).has_emeter, true);
  });

  it('should reject devices without an id, by index', function () {
    const { devices, rejected } = toDeviceInfos([{ device_id: DEVICE }, { alias: 'x' }]);
    assert.equal(devices.length, 1);
    assert.equal(rejected[0]?.index, 1);
    assert.match(rejected[0].error.message, /device_id is missing/);
  });
});

describe('toStoreInput()', function () {
  it('should check readings and devices together, saying where each bad item was', function () {
    const input = toStoreInput([{ device_id: DEVICE, ts: TS }, { ts: TS }], [{ alias: 'x' }]);
    assert.equal(input.readings.length, 1);
    assert.equal(input.devices.length, 0);
    assert.equal(
      describeRejected(input.rejected),
      'payload[1]: device_id is missing; devices[0]: device_id is missing',
    );
  });

  it('should ignore a payload that only triggered a message carrying devices, and check any other', function () {
    for (const trigger of [1714564800000, undefined, null, '']) {
      const input = toStoreInput(trigger, [{ device_id: DEVICE }]);
      assert.deepEqual(input.rejected, [], `payload ${String(trigger)}`);
      assert.equal(input.devices.length, 1);
    }
    assert.equal(toStoreInput(1714564800000).rejected.length, 1, 'alone, it is no reading');
    const wrong = toStoreInput('hello', [{ device_id: DEVICE }]);
    assert.equal(wrong.devices.length, 1, 'the devices are kept');
    assert.equal(
      describeRejected(wrong.rejected),
      'payload: a reading must be an object, got "hello"',
    );
  });

  it('should check days filled from a device, keeping the good ones and naming the bad', function () {
    const day = { device_id: DEVICE, day: '2022-08-31', day_start: 1661896800000, energy_wh: 200 };
    const input = toStoreInput(undefined, undefined, [
      day,
      { ...day, day: '31.08.2022' },
      { ...day, energy_wh: -5 },
      { ...day, energy_wh: 'NaN' },
    ]);
    assert.deepEqual(input.daily, [{ ...day, source: 'device' }]);
    assert.deepEqual(input.readings, []);
    assert.equal(
      describeRejected(input.rejected),
      'daily[1]: day must be a \'YYYY-MM-DD\' date, got "31.08.2022"; ' +
        'daily[2]: energy_wh must be >= 0, got -5; ' +
        'daily[3]: energy_wh must be a number >= 0, got "NaN"',
    );
  });

  it('should list at most three rejections and mark the rest', function () {
    const { rejected } = toStoreInput([1, 2, 3, 4, 5]);
    const text = describeRejected(rejected);
    assert.equal(text.split(';').length, 4);
    assert.match(text, /^payload\[0\]: .*payload\[2\]: .*; …$/);
  });
});
