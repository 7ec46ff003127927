import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BACKFILL_MAX_DAYS, missingDays } from '../../../lib/polling/backfill';
import { parseDeviceEntry } from '../../../lib/polling/device-entries';
import { pollTarget, type PollOutcome } from '../../../lib/polling/poll-device';
import { SharedPool } from '../../../lib/pool/shared-pool';
import { readDayStat } from '../../../lib/readings/normalise';
import { closeDatabase, openDatabase } from '../../../lib/store/database';
import { LocalDays } from '../../../lib/store/local-day';
import { QueryEngine, type SummaryRow } from '../../../lib/store/query';
import { RetentionEngine } from '../../../lib/store/retention';
import { ReadingWriter } from '../../../lib/store/writer';
import { silentLogger } from '../../../lib/types';
import { FakeKasaDevice, loadFixture } from '../../support/fake-kasa-device';
import { fieldCase } from '../../support/fixtures';

const ZONE = 'Europe/Berlin';
const BERLIN = new LocalDays(ZONE);
/** 2022-08-29 20:00 and 2022-09-01 10:00 in Berlin (UTC+2): the plug was away in between. */
const LAST_SEEN = Date.parse('2022-08-29T18:00:00Z');
const BACK = Date.parse('2022-09-01T08:00:00Z');

type DayList = Record<string, unknown>;
const daystat = fieldCase('case-016-daystat-empty-and-unit-styles').input as {
  a_new_plug: { emeter: { get_daystat: DayList } };
  b_hw1_plug: { emeter: { get_daystat: DayList } };
  c_hw2_plug: { emeter: { get_daystat: DayList } };
};

describe('readDayStat() (case-016)', function () {
  it('gives no days, never NaN, for a new plug whose lists are empty', function () {
    assert.deepEqual(readDayStat(daystat.a_new_plug.emeter.get_daystat), []);
  });

  it('reads energy in kWh (older hardware) as Wh', function () {
    assert.deepEqual(readDayStat(daystat.b_hw1_plug.emeter.get_daystat), [
      { day: '2022-08-30', energy_wh: 138 },
      { day: '2022-08-31', energy_wh: 200 },
    ]);
  });

  it('reads energy_wh (newer hardware) as the same figure', function () {
    assert.deepEqual(readDayStat(daystat.c_hw2_plug.emeter.get_daystat), [
      { day: '2022-08-31', energy_wh: 200 },
    ]);
  });

  it('skips entries without a real date or energy, and says null for a plug without a meter', function () {
    const days = readDayStat({
      err_code: 0,
      day_list: [
        { year: 2022, month: 2, day: 30, energy_wh: 5 },
        { year: 2022, month: 3, day: 1, energy_wh: 'NaN' },
        { year: 2022, month: 3, day: 2, energy: -1 },
        { year: 2022, month: 3, day: 3 },
        null,
        { year: 2022, month: 3, day: 4, energy_wh: 7 },
      ],
    });
    assert.deepEqual(days, [{ day: '2022-03-04', energy_wh: 7 }]);
    assert.equal(readDayStat({ err_code: -1, err_msg: 'module not support' }), null);
    assert.deepEqual(readDayStat({ err_code: 0 }), []);
    assert.throws(() => readDayStat({ err_code: -3, err_msg: 'invalid argument' }), {
      code: 'DEVICE_ERROR_REPLY',
    });
  });
});

describe('missingDays()', function () {
  it('lists the whole local days between two readings, not the days they fall on', function () {
    assert.deepEqual(missingDays(BERLIN, LAST_SEEN, BACK), ['2022-08-30', '2022-08-31']);
    // 23:30 and 00:30 local on the next day: no whole day missing.
    const lateEvening = Date.parse('2022-08-29T21:30:00Z');
    assert.deepEqual(missingDays(BERLIN, lateEvening, lateEvening + 2 * 3_600_000), []);
  });

  it('counts days by local midnight across a DST change', function () {
    // Berlin leaves DST on 2022-10-30 (25 hours): 28th 23:00 local to 31st 01:00 local.
    const from = Date.parse('2022-10-28T21:00:00Z');
    const to = Date.parse('2022-10-31T00:00:00Z');
    assert.deepEqual(missingDays(BERLIN, from, to), ['2022-10-29', '2022-10-30']);
  });

  it('goes back no further than the daily tier keeps', function () {
    const days = missingDays(BERLIN, BACK - 3 * 365 * 86_400_000, BACK);
    assert.ok(days.length <= BACKFILL_MAX_DAYS && days.length >= BACKFILL_MAX_DAYS - 1);
    assert.equal(days.at(-1), '2022-08-31');
  });
});

describe('backfill after an outage (real pool, real protocol, real SQLite)', function () {
  this.timeout(20_000);
  let folder: string;
  const devices: FakeKasaDevice[] = [];
  const pools: SharedPool[] = [];
  let now = BACK;

  beforeEach(function () {
    folder = mkdtempSync(join(tmpdir(), 'kasa-backfill-'));
    now = BACK;
  });
  afterEach(async function () {
    for (const pool of pools.splice(0)) await pool.close();
    for (const device of devices.splice(0)) await device.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  /** A plug whose counter stands at `totalWh` and whose day lists are `dayStat`'s. */
  async function plug(
    totalWh: number,
    dayStat: (year: number, month: number, childId: string | null) => DayList,
    fixture = 'HS110(EU)_4.0_1.0.4',
  ): Promise<FakeKasaDevice> {
    const device = await new FakeKasaDevice({
      fixture: loadFixture(fixture),
      emeter: () => ({ power_mw: 40_000, voltage_mv: 230_000, current_ma: 200, total_wh: totalWh }),
      onTime: () => 900_000,
      dayStat,
    }).start();
    devices.push(device);
    return device;
  }

  /**
   * A pool that last saw `deviceKey` at LAST_SEEN with the counter at 1000 Wh, as its baseline
   * file says after Node-RED (or the plug) was away for days.
   */
  function poolRemembering(deviceKey: string): SharedPool {
    const baselinePath = join(folder, 'baselines.json');
    writeFileSync(
      baselinePath,
      JSON.stringify({ [deviceKey]: { total_wh: 1000, on_time_s: 600_000, ts: LAST_SEEN } }),
    );
    const pool = new SharedPool({
      pool: { requestTimeoutMs: 2000, retries: 0 },
      limits: { maxPowerW: 4000, maxVoltageV: 300, maxCurrentA: 20 },
      baselinePath,
      clock: { now: () => now },
      logger: silentLogger,
    });
    pool.context.days = BERLIN;
    pools.push(pool);
    return pool;
  }

  const deviceIdOf = (fixture: string): string => {
    const info = loadFixture(fixture).system?.get_sysinfo as { deviceId: string };
    return info.deviceId;
  };

  async function pollOnce(pool: SharedPool, device: FakeKasaDevice): Promise<PollOutcome> {
    return pollTarget(pool.context, parseDeviceEntry(`127.0.0.1:${device.port}`), 'poll-node');
  }

  it('fills the whole days of the outage from the plug (kWh style) and books each Wh once', async function () {
    const id = deviceIdOf('HS110(EU)_4.0_1.0.4');
    const asked: string[] = [];
    // 138 + 200 Wh on the missing days, 50 Wh on the partial days at either end.
    const device = await plug(1388, (year, month) => {
      asked.push(`${year}-${month}`);
      return month === 8 ? daystat.b_hw1_plug.emeter.get_daystat : { day_list: [], err_code: 0 };
    });
    const outcome = await pollOnce(poolRemembering(`poll-node/${id}`), device);

    assert.deepEqual(outcome.problems, []);
    assert.deepEqual(asked, ['2022-8'], 'one request for the one month the gap spans');
    assert.deepEqual(outcome.daily, [
      {
        device_id: id,
        day: '2022-08-30',
        day_start: Date.parse('2022-08-29T22:00:00Z'),
        energy_wh: 138,
        source: 'device',
      },
      {
        device_id: id,
        day: '2022-08-31',
        day_start: Date.parse('2022-08-30T22:00:00Z'),
        energy_wh: 200,
        source: 'device',
      },
    ]);
    assert.equal(outcome.readings[0]?.energy_wh, 50, 'the reading keeps only the partial days');
    assert.deepEqual(
      outcome.notices.map((notice) => [notice.kind, notice.days]),
      [['backfilled', 2]],
    );

    // A later poll is an ordinary one: no more day statistics asked for.
    now += 10_000;
    const next = await pollOnce(pools[0]!, device);
    assert.deepEqual(next.daily, []);
    assert.deepEqual(asked, ['2022-8']);
  });

  it('reads the Wh style of newer plugs and leaves unlisted days in the reading', async function () {
    const id = deviceIdOf('HS110(EU)_4.0_1.0.4');
    const device = await plug(1388, () => daystat.c_hw2_plug.emeter.get_daystat);
    const outcome = await pollOnce(poolRemembering(`poll-node/${id}`), device);
    assert.deepEqual(
      outcome.daily.map((day) => [day.day, day.energy_wh]),
      [['2022-08-31', 200]],
    );
    assert.equal(outcome.readings[0]?.energy_wh, 188);
  });

  it('fills nothing and keeps the whole delta for a new plug with empty lists', async function () {
    const id = deviceIdOf('HS110(EU)_4.0_1.0.4');
    const device = await plug(1388, () => daystat.a_new_plug.emeter.get_daystat);
    const outcome = await pollOnce(poolRemembering(`poll-node/${id}`), device);
    assert.deepEqual(outcome.daily, []);
    assert.deepEqual(outcome.problems, []);
    assert.equal(outcome.readings[0]?.energy_wh, 388);
  });

  it('reports a plug that cannot give its statistics and loses nothing', async function () {
    const id = deviceIdOf('HS110(EU)_4.0_1.0.4');
    const device = await plug(1388, () => ({ err_code: -3, err_msg: 'invalid argument' }));
    const outcome = await pollOnce(poolRemembering(`poll-node/${id}`), device);
    assert.deepEqual(outcome.daily, []);
    assert.deepEqual(
      outcome.problems.map((problem) => problem.code),
      ['BACKFILL_FAILED'],
    );
    assert.match(outcome.problems[0]!.message, /invalid argument/);
    assert.equal(outcome.readings[0]?.energy_wh, 388, 'the outage energy stays in the reading');
  });

  it('asks each outlet of a strip for its own days', async function () {
    const fixture = 'HS300(US)_1.0_1.0.21';
    const childIds: (string | null)[] = [];
    const device = await plug(
      1388,
      (_year, _month, childId) => {
        childIds.push(childId);
        return daystat.b_hw1_plug.emeter.get_daystat;
      },
      fixture,
    );
    const outlet = `${deviceIdOf(fixture)}01`;
    const pool = poolRemembering(`poll-node/${outlet}`);
    const outcome = await pollTarget(
      pool.context,
      parseDeviceEntry(`127.0.0.1:${device.port}/1`),
      'poll-node',
    );
    assert.deepEqual(childIds, [outlet]);
    assert.deepEqual(
      outcome.daily.map((day) => [day.device_id, day.day, day.energy_wh]),
      [
        [outlet, '2022-08-30', 138],
        [outlet, '2022-08-31', 200],
      ],
    );
  });

  it('stores the days marked as from the device, keeps readings-based days, and gives way to readings at roll-up', async function () {
    const id = deviceIdOf('HS110(EU)_4.0_1.0.4');
    const device = await plug(1388, () => daystat.b_hw1_plug.emeter.get_daystat);
    const outcome = await pollOnce(poolRemembering(`poll-node/${id}`), device);

    const db = openDatabase(join(folder, 'energy.db'));
    try {
      const writer = new ReadingWriter(db, { clock: { now: () => now } });
      writer.upsertDevices([{ ...deviceRow(id) }]);
      // 2022-08-30 already has a summary from readings: the device's figure must not replace it.
      writer.flush();
      const key = (
        db.prepare('SELECT id FROM devices WHERE device_id = ?').get(id) as { id: number }
      ).id;
      db.prepare(
        `INSERT INTO daily_summaries (device, day, day_start, samples, avg_power_w, energy_wh)
         VALUES (?, '2022-08-30', ?, 8640, 5.5, 132)`,
      ).run(key, BERLIN.startOf('2022-08-30'));

      writer.enqueue(outcome.readings);
      writer.addDeviceDays(outcome.daily);
      writer.addDeviceDays(outcome.daily); // delivered twice: still one row per day
      assert.equal(writer.flush(), true);

      const query = new QueryEngine(db, { clock: { now: () => now } });
      const days = (
        query.run({
          type: 'summary',
          device_id: id,
          tier: 'daily',
          from: '2022-08-29T00:00:00Z',
          to: '2022-09-01T00:00:00Z',
        }).rows as SummaryRow[]
      ).map((row) => [row.bucket_start, row.energy_wh, row.source, row.samples]);
      assert.deepEqual(days, [
        [BERLIN.startOf('2022-08-30'), 132, 'readings', 8640],
        [BERLIN.startOf('2022-08-31'), 200, 'device', 0],
      ]);

      // Late readings of 2022-08-31 reach the daily tier: they replace the device's figure.
      const late = BERLIN.startOf('2022-08-31') + 3_600_000;
      db.prepare(
        `INSERT INTO hourly_summaries (device, hour_start, samples, avg_power_w, energy_wh)
         VALUES (?, ?, 360, 10, 10)`,
      ).run(key, late);
      new RetentionEngine(db, {
        clock: { now: () => Date.parse('2022-10-15T00:00:00Z') },
        timeZone: ZONE,
        rawDays: 7,
        hourlyDays: 30,
        dailyDays: 365,
      }).run();
      const after = db
        .prepare(`SELECT day, energy_wh, source FROM daily_summaries WHERE device = ? ORDER BY day`)
        .all(key);
      assert.deepEqual(after, [
        { day: '2022-08-30', energy_wh: 132, source: 'readings' },
        { day: '2022-08-31', energy_wh: 10, source: 'readings' },
        // The reading after the outage, with only the partial days' 50 Wh.
        { day: '2022-09-01', energy_wh: 50, source: 'readings' },
      ]);
      writer.close();
    } finally {
      closeDatabase(db);
    }
  });
});

function deviceRow(deviceId: string) {
  return {
    device_id: deviceId,
    parent_id: null,
    child_id: null,
    host: '127.0.0.1',
    port: null,
    alias: null,
    model: 'HS110(EU)',
    hw_ver: null,
    sw_ver: null,
    mac: null,
    has_emeter: true,
  };
}
