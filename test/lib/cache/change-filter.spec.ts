import assert from 'node:assert/strict';

import { ChangeFilter } from '../../../lib/cache/change-filter';

const T0 = Date.parse('2024-05-01T12:00:00Z');

const reading = (power: number | null, extra: Record<string, unknown> = {}) => ({
  device_id: 'plug',
  ts: T0,
  power_w: power,
  voltage_v: 230,
  total_wh: 100,
  relay_on: true,
  ...extra,
});

describe('ChangeFilter', function () {
  let time: number;
  const clock = { now: () => time };

  beforeEach(function () {
    time = T0;
  });

  it('passes the first value and then only readings whose power moved beyond the deadband', function () {
    const filter = new ChangeFilter({ deadbandW: 2, clock });
    assert.equal(filter.changed('plug', reading(100)), true);
    assert.equal(filter.changed('plug', reading(101.5, { ts: T0 + 1, voltage_v: 231 })), false);
    assert.equal(filter.changed('plug', reading(98)), false, 'exactly on the deadband: unchanged');
    assert.equal(filter.changed('plug', reading(102.5)), true);
    assert.equal(filter.changed('other', reading(102.5)), true, 'keys are independent');
  });

  it('compares with the last value passed, so slow drift passes once it adds up', function () {
    const filter = new ChangeFilter({ deadbandW: 1, clock });
    assert.equal(filter.changed('plug', reading(10)), true);
    assert.equal(filter.changed('plug', reading(10.6)), false);
    assert.equal(filter.changed('plug', reading(11.2)), true, '1.2 W from the last value passed');
  });

  it('counts a relay switch, a device change and power appearing or vanishing as changes', function () {
    const filter = new ChangeFilter({ deadbandW: 5, clock });
    filter.changed('plug', reading(0));
    assert.equal(filter.changed('plug', reading(0, { relay_on: false })), true);
    assert.equal(filter.changed('plug', reading(0, { relay_on: false, device_id: 'x' })), true);
    assert.equal(filter.changed('plug', reading(null, { relay_on: false, device_id: 'x' })), true);
    assert.equal(filter.changed('plug', reading(null, { relay_on: false, device_id: 'x' })), false);
  });

  it('compares arrays of readings element by element and anything else as JSON', function () {
    const filter = new ChangeFilter({ deadbandW: 1, clock });
    assert.equal(filter.changed('cycle', [reading(1), reading(2)]), true);
    assert.equal(filter.changed('cycle', [reading(1.5), reading(2.5)]), false);
    assert.equal(filter.changed('cycle', [reading(1.5), reading(3.5)]), true);
    assert.equal(filter.changed('cycle', [reading(1.5)]), true, 'a different length is a change');
    assert.equal(filter.changed('text', 'on'), true);
    assert.equal(filter.changed('text', 'on'), false);
    assert.equal(filter.changed('text', 'off'), true);
    assert.equal(filter.changed('obj', { a: 1, b: [1, 2] }), true);
    assert.equal(filter.changed('obj', { a: 1, b: [1, 2] }), false);
    assert.equal(filter.changed('obj', { a: 1, b: [1, 3] }), true);
  });

  it('lets an unchanged value through again once per TTL, and after forget', function () {
    const filter = new ChangeFilter({ ttlMs: 10_000, clock });
    filter.changed('plug', reading(5));
    time += 9999;
    assert.equal(filter.changed('plug', reading(5)), false);
    time += 1;
    assert.equal(filter.changed('plug', reading(5)), true, 'the reference expired');
    assert.equal(filter.changed('short', reading(5), 100), true);
    time += 101;
    assert.equal(filter.changed('short', reading(5)), true, 'a per-value TTL applies');
    filter.forget('plug');
    assert.equal(filter.changed('plug', reading(5)), true);
    filter.forget();
    assert.equal(filter.changed('short', reading(5)), true);
  });
});
