import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { LocalDays } from '../../lib/store/local-day';
import { FakeKasaDevice, freeLoopbackPort, loadFixture } from '../support/fake-kasa-device';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { waitFor } from '../support/waiting';

const DAY_MS = 86_400_000;
const ZONE = 'Europe/Berlin';
const WH_PER_DAY = 480;
const PARTIAL_WH = 75;

/**
 * Node-RED comes back after three days away (its pool remembers the plug's counter from then):
 * the first poll fills the whole days in between from the plug's own day statistics, the store
 * keeps them marked as coming from the device, and no Wh is counted twice.
 */
describe('end to end: backfill after a long outage', function () {
  this.timeout(60_000);
  let plug: FakeKasaDevice | undefined;
  let nodeRed: NodeRedProcess | undefined;
  let userDir: string;
  const days = new LocalDays(ZONE);
  const lastSeen = Date.now() - 3 * DAY_MS - 2 * 3_600_000;
  const missing: string[] = [];
  for (let day = LocalDays.next(days.dayOf(lastSeen)); day < days.dayOf(Date.now());) {
    missing.push(day);
    day = LocalDays.next(day);
  }
  const deviceId = (loadFixture('HS110(EU)_4.0_1.0.4').system?.get_sysinfo as { deviceId: string })
    .deviceId;

  before(async function () {
    const counterNow = 1000 + missing.length * WH_PER_DAY + PARTIAL_WH;
    const device = await new FakeKasaDevice({
      host: '127.0.0.31',
      port: await freeLoopbackPort('127.0.0.31'),
      fixture: loadFixture('HS110(EU)_4.0_1.0.4'),
      emeter: () => ({
        power_mw: 20_000,
        voltage_mv: 230_000,
        current_ma: 100,
        total_wh: counterNow,
      }),
      onTime: () => 9_000_000,
      // Every day the device lists had WH_PER_DAY; newer hardware's unit style.
      dayStat: (year, month) => ({
        err_code: 0,
        day_list: missing
          .filter((day) => day.startsWith(`${year}-${String(month).padStart(2, '0')}`))
          .map((day) => ({ year, month, day: Number(day.slice(8)), energy_wh: WH_PER_DAY })),
      }),
    }).start();
    plug = device;

    userDir = mkdtempSync(join(tmpdir(), 'kasa-backfill-e2e-'));
    mkdirSync(join(userDir, 'kasa-monitor'));
    writeFileSync(
      join(userDir, 'kasa-monitor', 'energy-baselines-pool.json'),
      JSON.stringify({
        [`poll/${deviceId}`]: { total_wh: 1000, on_time_s: 8_000_000, ts: lastSeen },
      }),
    );
    nodeRed = await startNodeRed({
      userDir,
      env: { TZ: ZONE },
      flows: [
        { id: 'tab', type: 'tab', label: 'backfill' },
        { id: 'pool', type: 'kasa-device-pool', name: 'plugs', timeout: 2, retries: 0 },
        { id: 'db', type: 'kasa-sqlite-db', name: 'energy', path: 'energy.db' },
        {
          id: 'poll',
          type: 'kasa-poll',
          z: 'tab',
          x: 100,
          y: 100,
          pool: 'pool',
          devices: `127.0.0.31:${device.port}`,
          interval: 0,
          output: 'reading',
          wires: [['store']],
        },
        {
          id: 'go',
          type: 'inject',
          z: 'tab',
          x: 50,
          y: 100,
          once: true,
          onceDelay: 0.5,
          repeat: '',
          topic: '',
          payload: '',
          payloadType: 'date',
          wires: [['poll']],
        },
        {
          id: 'store',
          type: 'kasa-sqlite-store',
          z: 'tab',
          x: 300,
          y: 100,
          db: 'db',
          mode: 'store',
          batchSize: 1,
          flushInterval: 0.1,
          wires: [[]],
        },
      ],
    });
  });

  after(async function () {
    await nodeRed?.stop();
    await plug?.stop();
    rmSync(userDir, { recursive: true, force: true });
  });

  it('stores the missing days from the device and only the partial days in the reading', async function () {
    assert.ok(missing.length >= 2, `the outage spans whole days: ${missing.join(', ')}`);
    const file = join(userDir, 'energy.db');
    const read = () => {
      const db = new Database(file, { readonly: true, fileMustExist: true });
      try {
        return {
          daily: db
            .prepare(`SELECT day, energy_wh, source, samples FROM daily_summaries ORDER BY day`)
            .all() as { day: string; energy_wh: number; source: string; samples: number }[],
          readings: db.prepare('SELECT energy_wh FROM readings').pluck().all() as number[],
        };
      } finally {
        db.close();
      }
    };
    await waitFor(() => {
      try {
        const stored = read();
        return stored.readings.length > 0 && stored.daily.length > 0;
      } catch {
        return false;
      }
    }, 20_000);
    const stored = read();
    assert.deepEqual(
      stored.daily,
      missing.map((day) => ({ day, energy_wh: WH_PER_DAY, source: 'device', samples: 0 })),
    );
    assert.deepEqual(stored.readings, [PARTIAL_WH]);
    assert.match(nodeRed?.log() ?? '', /was away for more than a day: filled \d+ whole days/);
  });
});
