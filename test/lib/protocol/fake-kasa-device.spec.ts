import { strict as assert } from 'node:assert';
import * as dgram from 'node:dgram';
import { readdirSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { decrypt, encrypt } from 'tplink-smarthome-crypto';
import { LegacyTcpTransport } from '../../../lib/protocol/legacy-tcp';
import { FakeKasaDevice, loadFixture } from '../../support/fake-kasa-device';

const SYSINFO = { system: { get_sysinfo: {} } };
const REALTIME = { emeter: { get_realtime: {} } };

type Json = Record<string, unknown>;

function sysinfoOf(reply: Json): Json {
  return (reply.system as { get_sysinfo: Json }).get_sysinfo;
}

async function udpRequest(port: number, payload: Json): Promise<Json> {
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const reply = new Promise<Buffer>((resolve) => socket.once('message', resolve));
    socket.send(encrypt(JSON.stringify(payload)), port, '127.0.0.1');
    return JSON.parse(decrypt(await reply).toString('utf8')) as Json;
  } finally {
    socket.close();
  }
}

describe('test fixtures and FakeKasaDevice', () => {
  const devices: FakeKasaDevice[] = [];
  const transports: LegacyTcpTransport[] = [];

  async function fake(
    name: string,
    options: Partial<ConstructorParameters<typeof FakeKasaDevice>[0]> = {},
  ): Promise<{ device: FakeKasaDevice; transport: LegacyTcpTransport }> {
    const device = await new FakeKasaDevice({ fixture: loadFixture(name), ...options }).start();
    devices.push(device);
    const transport = new LegacyTcpTransport(device.address);
    transports.push(transport);
    return { device, transport };
  }

  afterEach(async () => {
    for (const transport of transports.splice(0)) transport.close();
    await Promise.all(devices.splice(0).map((device) => device.stop()));
  });

  it('fixtures carry unique made-up ids and only sysinfo and realtime', () => {
    const dir = path.join(__dirname, '..', '..', 'fixtures', 'kasa-iot');
    const names = readdirSync(dir)
      .filter((file) => file.endsWith('.json'))
      .map((file) => file.slice(0, -5));
    assert.ok(names.length >= 9);
    const ids = new Set<string>();
    const macs = new Set<string>();
    for (const name of names) {
      const fixture = loadFixture(name);
      for (const [moduleName, methods] of Object.entries(fixture)) {
        const allowed = moduleName === 'system' ? ['get_sysinfo'] : ['get_realtime'];
        assert.ok(['system', 'emeter'].includes(moduleName), `${name}: ${moduleName}`);
        assert.deepEqual(Object.keys(methods), allowed, name);
      }
      const sysinfo = fixture.system!.get_sysinfo as {
        deviceId: string;
        mac: string;
        children?: { id: string }[];
      };
      assert.match(sysinfo.deviceId, /^[0-9A-F]{40}$/, name);
      assert.notEqual(sysinfo.deviceId, '0'.repeat(40), name);
      assert.match(sysinfo.mac, /^([0-9A-F]{2}:){5}[0-9A-F]{2}$/, name);
      ids.add(sysinfo.deviceId);
      macs.add(sysinfo.mac);
      sysinfo.children?.forEach((child, index) => {
        assert.equal(child.id, `${sysinfo.deviceId}${String(index).padStart(2, '0')}`, name);
      });
    }
    assert.equal(ids.size, names.length);
    assert.equal(macs.size, names.length);
  });

  it('answers several modules in one reply, and unknown ones like a real device', async () => {
    const { device, transport } = await fake('HS110(EU)_1.0_1.2.5', {
      deviceId: 'AB'.repeat(20),
      mac: '50:C7:BF:01:02:03',
      alias: 'Dishwasher',
      onTime: () => 4242,
    });
    const reply = await transport.request(
      { ...SYSINFO, ...REALTIME, schedule: { get_rules: {} }, emeter2: { x: {} } },
      1000,
    );
    const sysinfo = sysinfoOf(reply);
    assert.equal(sysinfo.deviceId, 'AB'.repeat(20));
    assert.equal(sysinfo.mac, '50:C7:BF:01:02:03');
    assert.equal(sysinfo.alias, 'Dishwasher');
    assert.equal(sysinfo.on_time, 4242);
    assert.equal(sysinfo.model, 'HS110(EU)');
    assert.deepEqual(reply.emeter, {
      get_realtime: {
        current: 0.014937,
        err_code: 0,
        power: 0.928511,
        total: 55.139,
        voltage: 231.067823,
      },
    });
    assert.deepEqual(reply.schedule, { err_code: -1, err_msg: 'module not support' });
    assert.deepEqual(reply.emeter2, { err_code: -1, err_msg: 'module not support' });
    const unknownMethod = await transport.request({ system: { get_nothing: {} } }, 1000);
    assert.deepEqual(unknownMethod, {
      system: { get_nothing: { err_code: -2, err_msg: 'member not support' } },
    });
    assert.equal(device.requests.length, 2);
    assert.equal(device.requests[0]!.transport, 'tcp');
  });

  it('answers per outlet of a strip for full and short child ids, -14 for unknown ones', async () => {
    const asked: (string | null)[] = [];
    const { device, transport } = await fake('HS300(US)_2.0_1.0.3', {
      emeter: (childId) => {
        asked.push(childId);
        return { power_mw: childId === null ? 0 : 100 + Number(childId.slice(-2)) };
      },
    });
    assert.equal(device.childIds.length, 6);
    const full = await transport.request(
      { context: { child_ids: [device.childIds[3]] }, ...REALTIME },
      1000,
    );
    assert.deepEqual(full, { emeter: { get_realtime: { power_mw: 103, err_code: 0 } } });
    const short = await transport.request({ context: { child_ids: ['05'] }, ...REALTIME }, 1000);
    assert.deepEqual(short, { emeter: { get_realtime: { power_mw: 105, err_code: 0 } } });
    const unknown = await transport.request({ context: { child_ids: ['07'] }, ...REALTIME }, 1000);
    assert.deepEqual(unknown, {
      emeter: { get_realtime: { err_code: -14, err_msg: 'entry not exist' } },
    });
    await transport.request(REALTIME, 1000);
    assert.deepEqual(asked, [device.childIds[3], device.childIds[5], null]);
  });

  it('lists short child ids when asked to, and always over UDP', async () => {
    const { device, transport } = await fake('KP303(UK)_1.0_1.0.3', {
      shortChildIds: true,
      udp: true,
    });
    const children = sysinfoOf(await transport.request(SYSINFO, 1000)).children as { id: string }[];
    assert.deepEqual(
      children.map((c) => c.id),
      ['00', '01', '02'],
    );
    const { device: strip } = await fake('HS300(US)_1.0_1.0.21', { udp: true });
    const overUdp = await udpRequest(strip.port, SYSINFO);
    assert.deepEqual(
      (sysinfoOf(overUdp).children as { id: string }[]).map((c) => c.id),
      ['00', '01', '02', '03', '04', '05'],
    );
    assert.deepEqual(
      strip.requests.map((r) => [r.transport, r.payload]),
      [['udp', SYSINFO]],
    );
    const noEmeter = await udpRequest(device.port, REALTIME);
    assert.deepEqual(noEmeter, { emeter: { err_code: -1, err_msg: 'module not support' } });
  });

  it('resets connections beyond maxConnections at once', async () => {
    const { device, transport } = await fake('HS300(US)_1.0_1.0.21');
    device.maxConnections = 1;
    await transport.request(SYSINFO, 1000);
    const second = new LegacyTcpTransport(device.address);
    transports.push(second);
    await assert.rejects(second.request(SYSINFO, 1000), { code: 'DEVICE_CLOSED' });
    assert.equal(device.connectionsRejected, 1);
    assert.equal(device.maxConcurrentConnections, 2);
    await transport.request(SYSINFO, 1000);
  });

  it('stop() closes open connections and the port', async () => {
    const { device, transport } = await fake('HS110(EU)_4.0_1.0.4', { udp: true });
    await transport.request(SYSINFO, 1000);
    assert.equal(device.openConnections, 1);
    const client = net.connect(device.port, '127.0.0.1');
    const clientClosed = new Promise((resolve) => client.once('close', resolve));
    client.on('error', () => undefined);
    await new Promise((resolve) => client.once('connect', resolve));
    await device.stop();
    await clientClosed;
    assert.equal(device.openConnections, 0);
    await assert.rejects(transport.request(SYSINFO, 1000), { code: 'DEVICE_UNREACHABLE' });
  });
});
