import assert from 'node:assert/strict';

import {
  describeDiscovered,
  deviceEntry,
  discoverDevices,
  isIpv4Address,
} from '../../../lib/discovery/discover';
import {
  DISCOVERY_BROADCAST,
  FakeFleet,
  freeLoopbackPort,
  loadFixture,
} from '../../support/fake-kasa-device';

const PLUG_ID = '8006AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA01';
const STRIP_ID = '8006BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB02';

describe('discovery', function () {
  this.timeout(20_000);
  const fleet = new FakeFleet();
  afterEach(async function () {
    await fleet.stopAll();
  });

  it('lists the simulated devices that answer a loopback broadcast, outlets included', async function () {
    await fleet.start('HS110(EU)_4.0_1.0.4', {
      host: '127.0.0.2',
      port: 9999,
      deviceId: PLUG_ID,
      alias: 'Fridge',
      discovery: true,
    });
    const stripPort = await freeLoopbackPort('127.0.0.3');
    await fleet.start('HS300(US)_1.0_1.0.21', {
      host: '127.0.0.3',
      port: stripPort,
      deviceId: STRIP_ID,
      alias: 'Office strip',
      discovery: true,
    });
    // Listening only on its own address: not reached by the broadcast.
    await fleet.start('KP115(EU)_1.0_1.0.16', { host: '127.0.0.4', port: 9999, udp: true });

    const devices = await discoverDevices({ broadcast: DISCOVERY_BROADCAST, timeoutMs: 1500 });

    assert.deepEqual(
      devices.map((device) => [device.host, device.port, device.device_id, device.alias]),
      [
        ['127.0.0.2', 9999, PLUG_ID, 'Fridge'],
        ['127.0.0.3', stripPort, STRIP_ID, 'Office strip'],
      ],
    );
    const [plug, strip] = devices;
    assert.equal(plug!.model, 'HS110(EU)');
    assert.equal(plug!.has_emeter, true);
    assert.deepEqual(plug!.outlets, []);
    assert.equal(strip!.model, 'HS300(US)');
    assert.equal(strip!.outlets.length, 6);
    // Over UDP strips list short child ids; discovery reports the full ones.
    assert.deepEqual(strip!.outlets[2], {
      index: 2,
      id: `${STRIP_ID}02`,
      alias: strip!.outlets[2]!.alias,
    });
    assert.equal(deviceEntry(plug!), '127.0.0.2');
    assert.equal(deviceEntry(strip!, 2), `127.0.0.3:${stripPort}/2`);
  });

  it('resolves with an empty list when nothing answers', async function () {
    const devices = await discoverDevices({ broadcast: DISCOVERY_BROADCAST, timeoutMs: 300 });
    assert.deepEqual(devices, []);
  });

  it('refuses a broadcast address that is not IPv4', async function () {
    await assert.rejects(
      discoverDevices({ broadcast: 'everyone', timeoutMs: 100 }),
      /not an IPv4 address/,
    );
    assert.equal(isIpv4Address('127.255.255.255'), true);
    assert.equal(isIpv4Address('192.168.1.256'), false);
    assert.equal(isIpv4Address('::1'), false);
  });

  it('describes a plug without a meter and a strip with full child ids', function () {
    const hs100 = loadFixture('HS100(UK)_1.0_1.2.6').system!.get_sysinfo;
    const plug = describeDiscovered(hs100, '127.0.0.5', 9999);
    assert.equal(plug.has_emeter, false);
    assert.deepEqual(plug.outlets, []);
    const kp303 = loadFixture('KP303(UK)_1.0_1.0.3').system!.get_sysinfo as {
      deviceId: string;
      children: { id: string }[];
    };
    const strip = describeDiscovered(kp303, '127.0.0.6', 9999);
    assert.equal(strip.outlets.length, kp303.children.length);
    for (const outlet of strip.outlets) assert.ok(outlet.id.startsWith(kp303.deviceId));
  });
});
