/**
 * Child process for benchmarks: fake plugs on loopback that answer as fast as they can, so the
 * process under measurement is the only one whose CPU time is counted. Prints
 * `{"ports":[...]}` on its first line, then serves until stdin closes.
 */
import { FakeKasaDevice, loadFixture } from '../../test/support/fake-kasa-device';

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 8);
  const devices: FakeKasaDevice[] = [];
  for (let index = 0; index < count; index += 1) {
    let total = 1000;
    const device = new FakeKasaDevice({
      fixture: loadFixture('KP115(EU)_1.0_1.0.16'),
      deviceId: `BE4C0000000000000000000000000000000000${String(index).padStart(2, '0')}`,
      recordRequests: false,
      emeter: () => ({
        power_mw: 60000 + index,
        voltage_mv: 230000,
        current_ma: 270,
        total_wh: (total += 1),
      }),
    });
    devices.push(await device.start());
  }
  process.stdout.write(`${JSON.stringify({ ports: devices.map((device) => device.port) })}\n`);
  const stop = () => {
    void Promise.all(devices.map((device) => device.stop())).then(() => process.exit(0));
  };
  process.stdin.on('end', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
}

void main();
