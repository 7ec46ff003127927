/**
 * `npm start`: the main job on a fresh clone. Starts six simulated Kasa devices on 127.0.0.2 -
 * 127.0.0.7, a real Node-RED 4.1 on 127.0.0.1 with this package, FlowFuse Dashboard 2 and the
 * example flow "Energy dashboard" (poll, store, charts), prints the editor and dashboard addresses
 * and what reaches the database. Ctrl-C stops everything it started. Nothing here addresses
 * anything outside 127.0.0.0/8: Discover searches a loopback broadcast address.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { errorMessage } from '../lib/errors';
import { startNodeRed, type NodeRedProcess } from '../test/support/node-red-process';
import { startSimulatedHome, type SimulatedHome } from '../test/support/simulated-home';

const ROOT = join(__dirname, '..');
const DEMO_DIR = join(ROOT, '.demo');
const USER_DIR = join(DEMO_DIR, 'node-red');
const DB_FILE = join(USER_DIR, 'kasa-monitor.db');
const PORT = Number(process.env.PORT ?? 1880);
/** The example the demo deploys: it polls, stores and charts, so it is the whole demo. */
const DEMO_EXAMPLE = 'Energy dashboard.json';
/** The simulated devices answer discovery on loopback; the demo never broadcasts to the LAN. */
const DEMO_BROADCAST = '127.255.255.255';
const DASHBOARD_MODULE = '@flowfuse/node-red-dashboard';

function demoFlow(home: SimulatedHome): object[] {
  const flow = JSON.parse(readFileSync(join(ROOT, 'examples', DEMO_EXAMPLE), 'utf8')) as Record<
    string,
    unknown
  >[];
  for (const node of flow) {
    if (node.type === 'kasa-poll') node.devices = home.deviceList;
    // Discover in the editor then finds the simulated devices and never reaches the LAN.
    if (node.type === 'kasa-device-pool') node.broadcast = DEMO_BROADCAST;
  }
  return flow;
}

function report(): void {
  if (!existsSync(DB_FILE)) {
    console.log('[demo] waiting for the first readings ...');
    return;
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(DB_FILE, { readonly: true, fileMustExist: true });
    // Readings from the user's own nodes may name a device without an alias.
    const rows = db
      .prepare(
        `SELECT COALESCE(d.alias, d.device_id) AS name, COUNT(*) AS n,
                ROUND(MAX(r.power_w), 1) AS max_w, ROUND(COALESCE(SUM(r.energy_wh), 0), 1) AS wh
           FROM readings r JOIN devices d ON d.id = r.device
          GROUP BY r.device ORDER BY name`,
      )
      .all() as { name: string; n: number; max_w: number | null; wh: number }[];
    console.log(`[demo] ${new Date().toLocaleTimeString()}: ${rows.length} series in the database`);
    for (const row of rows) {
      console.log(
        `         ${row.name.padEnd(14)} ${String(row.n).padStart(5)} rows  max ${String(row.max_w).padStart(7)} W  ${String(row.wh).padStart(7)} Wh`,
      );
    }
  } catch (error) {
    console.log(`[demo] cannot read ${DB_FILE}: ${errorMessage(error)}`);
  } finally {
    db?.close();
  }
}

async function main(): Promise<void> {
  mkdirSync(USER_DIR, { recursive: true });
  const home = await startSimulatedHome(9999, 2, { discovery: true });
  console.log(
    `[demo] ${home.devices.length} simulated devices on ${home.devices.map((device) => device.host).join(', ')}`,
  );
  let nodeRed: NodeRedProcess | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\n[demo] stopping Node-RED and the simulated devices ...');
    clearInterval(ticker);
    await nodeRed?.stop();
    await home.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  const ticker = setInterval(report, 10_000);
  try {
    nodeRed = await startNodeRed({
      userDir: USER_DIR,
      port: PORT,
      flows: demoFlow(home),
      modules: [DASHBOARD_MODULE],
      echo: true,
    });
  } catch (error) {
    console.error(`[demo] Node-RED did not start: ${String(error)}`);
    await stop(1);
    return;
  }
  console.log(`[demo] Node-RED editor: ${nodeRed.url}/`);
  console.log(`[demo] Energy dashboard: ${nodeRed.url}/dashboard`);
  console.log(`[demo] readings are written to ${DB_FILE}`);
  console.log(
    `[demo] kasa poll's Discover button searches ${DEMO_BROADCAST} (the simulated devices only)`,
  );
  console.log('[demo] press Ctrl-C to stop');
}

void main();
