import assert from 'node:assert/strict';

import { EnergyTracker } from '../../../lib/readings/energy';
import { fieldCase } from '../../support/fixtures';

const at = (hhmm: string) => Date.parse(`2024-05-01T${hhmm}:00Z`);

describe('EnergyTracker', function () {
  it('counts the 40 Wh of case-011 across a reboot and never goes negative', function () {
    const { input, expected } = fieldCase('case-011-total-counter-resets-on-reboot');
    const tracker = new EnergyTracker();
    const steps = input.readings.map((reading: { t: string; total_wh: number; on_time: number }) =>
      tracker.next('plug', {
        ts: at(reading.t),
        total_wh: reading.total_wh,
        on_time_s: reading.on_time,
      }),
    );
    const energies = steps.map((step: { energy_wh: number | null }) => step.energy_wh ?? 0);
    assert.ok(energies.every((energy: number) => energy >= 0));
    assert.equal(
      energies.reduce((sum: number, energy: number) => sum + energy, 0),
      expected.energy_10_00_to_10_25_wh,
    );
    assert.deepEqual(
      steps.map((step: { event: string }) => step.event),
      ['first', 'normal', 'normal', 'reset', 'normal', 'normal'],
    );
  });

  it('treats a one-off drop with on_time still rising as a glitch and keeps the baseline', function () {
    const tracker = new EnergyTracker();
    tracker.next('plug', { ts: 1000, total_wh: 500, on_time_s: 100 });
    const glitch = tracker.next('plug', { ts: 2000, total_wh: 0, on_time_s: 110 });
    const after = tracker.next('plug', { ts: 3000, total_wh: 502, on_time_s: 120 });
    assert.deepEqual(glitch, { energy_wh: 0, event: 'glitch' });
    assert.deepEqual(after, { energy_wh: 2, event: 'normal' });
  });

  it('tells a glitch from a reset by the next value when on_time is unknown', function () {
    const glitchy = new EnergyTracker();
    glitchy.next('a', { ts: 1, total_wh: 100 });
    assert.equal(glitchy.next('a', { ts: 2, total_wh: 0 }).event, 'suspect-drop');
    assert.deepEqual(glitchy.next('a', { ts: 3, total_wh: 103 }), {
      energy_wh: 3,
      event: 'normal',
    });

    const rebooted = new EnergyTracker();
    rebooted.next('b', { ts: 1, total_wh: 100 });
    assert.deepEqual(rebooted.next('b', { ts: 2, total_wh: 4 }), {
      energy_wh: 0,
      event: 'suspect-drop',
    });
    // Still below the old counter: it was a reset, and the 12 Wh since boot include the held 4.
    assert.deepEqual(rebooted.next('b', { ts: 3, total_wh: 12 }), {
      energy_wh: 12,
      event: 'reset',
    });
  });

  it('books nothing for a repeated or older timestamp', function () {
    const tracker = new EnergyTracker();
    tracker.next('a', { ts: 10, total_wh: 1000 });
    assert.deepEqual(tracker.next('a', { ts: 10, total_wh: 1000 }), {
      energy_wh: 0,
      event: 'repeat',
    });
    assert.deepEqual(tracker.next('a', { ts: 20, total_wh: 1001 }), {
      energy_wh: 1,
      event: 'normal',
    });
  });

  it('continues from a seeded baseline, as after a restart', function () {
    const tracker = new EnergyTracker();
    tracker.seed('a', { total_wh: 884, on_time_s: 50, ts: 1 });
    assert.deepEqual(tracker.next('a', { ts: 2, total_wh: 890, on_time_s: 60 }), {
      energy_wh: 6,
      event: 'normal',
    });
    assert.deepEqual(tracker.snapshot().a, { total_wh: 890, on_time_s: 60, ts: 2 });
  });

  it('keeps kWh-derived deltas free of float noise', function () {
    const tracker = new EnergyTracker();
    tracker.next('a', { ts: 1, total_wh: 296.866 * 1000 });
    assert.equal(tracker.next('a', { ts: 2, total_wh: 296.867 * 1000 }).energy_wh, 1);
  });
});
