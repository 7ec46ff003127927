import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { Device as SimulatedDevice } from 'tplink-smarthome-simulator';

import { freeLoopbackPort } from '../support/fake-kasa-device';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { startSimulatedHome, type SimulatedHome } from '../support/simulated-home';

const EXAMPLE = join(__dirname, '..', '..', 'examples', 'Monitor plugs into SQLite.json');

interface StoredSeries {
  device_id: string;
  rows: number;
  min_v: number;
  max_v: number;
  max_a: number;
  max_w: number;
  negative_energy: number;
}

describe('end to end: the example flow in a real Node-RED', function () {
  this.timeout(60_000);
  let home: SimulatedHome;
  let nodeRed: NodeRedProcess;
  const cleanups: (() => Promise<unknown>)[] = [];
  const simulatorId = '8006E2E0000000000000000000000000000000A1';

  before(async function () {
    home = await startSimulatedHome(await freeLoopbackPort('127.0.0.20'), 20);
    cleanups.push(() => home.stop());
    const simulatorPort = await freeLoopbackPort('127.0.0.26');
    const options = {
      model: 'hs110',
      address: '127.0.0.26',
      port: simulatorPort,
      data: { alias: 'Simulated HS110', system: { sysinfo: { deviceId: simulatorId } } },
    };
    const simulator = new SimulatedDevice(options as never);
    await simulator.start();
    cleanups.push(() => simulator.stop());
    // The simulator re-emits socket errors here; unheard they would crash the test process.
    simulator.deviceNetworking.on('error', () => undefined);
    const flow = JSON.parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>[];
    for (const node of flow) {
      if (node.type === 'kasa-poll') {
        node.devices = `${home.deviceList}\n127.0.0.26:${simulatorPort}`;
        node.interval = '1';
      }
    }
    nodeRed = await startNodeRed({ flows: flow });
    cleanups.push(() => nodeRed.stop());
  });

  after(async function () {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  function series(): StoredSeries[] {
    const db = new Database(join(nodeRed.userDir, 'kasa-monitor.db'), {
      readonly: true,
      fileMustExist: true,
    });
    try {
      return db
        .prepare(
          `SELECT d.device_id, COUNT(*) AS rows, MIN(r.voltage_v) AS min_v, MAX(r.voltage_v) AS max_v,
                  MAX(r.current_a) AS max_a, MAX(r.power_w) AS max_w,
                  SUM(CASE WHEN r.energy_wh < 0 THEN 1 ELSE 0 END) AS negative_energy
             FROM readings r JOIN devices d ON d.id = r.device GROUP BY r.device`,
        )
        .all() as StoredSeries[];
    } finally {
      db.close();
    }
  }

  it('stores one series per metered plug and outlet, in W/V/A, and none for meterless devices', async function () {
    const expected = [...home.meteredIds, simulatorId].sort();
    let stored: StoredSeries[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      try {
        stored = series();
      } catch {
        continue;
      }
      if (stored.length >= expected.length && stored.every((row) => row.rows >= 3)) break;
    }
    assert.deepEqual(stored.map((row) => row.device_id).sort(), expected);
    for (const row of stored) {
      assert.ok(row.rows >= 3, `${row.device_id}: ${row.rows} rows`);
      // Both unit styles end up in volts: about 230 V for our loads, about 120 V for the simulator.
      assert.ok(
        row.min_v > 100 && row.max_v < 260,
        `${row.device_id}: ${row.min_v}..${row.max_v} V`,
      );
      assert.ok(row.max_a < 20, `${row.device_id}: ${row.max_a} A`);
      assert.equal(row.negative_energy, 0);
    }
    const heater = stored.find((row) => row.device_id === home.meteredIds.at(-1));
    assert.ok(
      heater && heater.max_w > 700 && heater.max_w < 800,
      `HS300 outlet 5 draws ~750 W, got ${heater?.max_w}`,
    );

    const db = new Database(join(nodeRed.userDir, 'kasa-monitor.db'), { readonly: true });
    try {
      const meterless = db
        .prepare(
          `SELECT device_id, has_emeter FROM devices WHERE device_id IN (?, ?) ORDER BY device_id`,
        )
        .all(...home.meterlessIds) as { device_id: string; has_emeter: number }[];
      assert.deepEqual(
        meterless,
        [...home.meterlessIds].sort().map((id) => ({ device_id: id, has_emeter: 0 })),
      );
      const meterlessRows = db
        .prepare(
          `SELECT COUNT(*) AS n FROM readings r JOIN devices d ON d.id = r.device WHERE d.has_emeter = 0`,
        )
        .get() as { n: number };
      assert.equal(meterlessRows.n, 0);
    } finally {
      db.close();
    }
  });

  it('logs no errors', function () {
    const errors = nodeRed
      .log()
      .split('\n')
      .filter((line) => /\[error\]/.test(line));
    assert.deepEqual(errors, []);
  });
});
