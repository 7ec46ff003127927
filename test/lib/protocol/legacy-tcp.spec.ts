import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { encryptWithHeader } from 'tplink-smarthome-crypto';
import { Device } from 'tplink-smarthome-simulator';
import { isKasaError } from '../../../lib/errors';
import { FrameReader } from '../../../lib/protocol/frame-reader';
import { LegacyTcpTransport } from '../../../lib/protocol/legacy-tcp';
import {
  freeLoopbackPort,
  loadFixture,
  FakeFleet,
  type FakeKasaDeviceOptions,
  type KasaFixture,
} from '../../support/fake-kasa-device';
import { REALTIME, rejectsWith, SYSINFO, waitFor } from '../../support/waiting';

/** Records anything that escapes as an uncaught exception or unhandled rejection. */
function processGuard(): { seen: unknown[]; remove: () => Promise<void> } {
  const seen: unknown[] = [];
  const record = (error: unknown): void => {
    seen.push(error);
  };
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
  return {
    seen,
    remove: async () => {
      // Unhandled rejections are reported after the microtask queue drains.
      await new Promise((resolve) => setImmediate(resolve));
      process.off('uncaughtException', record);
      process.off('unhandledRejection', record);
    },
  };
}

function frameOf(payload: string): Buffer {
  return encryptWithHeader(payload);
}

describe('FrameReader', () => {
  const payload = '{"system":{"get_sysinfo":{"alias":"kitchen","relay_state":1}}}';
  const frame = frameOf(payload);
  const body = frame.subarray(4);

  it('reassembles a frame split at every pair of points, header included', () => {
    const reader = new FrameReader();
    for (let a = 1; a < frame.length; a += 1) {
      for (let b = a; b < frame.length; b += 1) {
        reader.reset();
        const pieces = [frame.subarray(0, a), frame.subarray(a, b), frame.subarray(b)];
        const results = pieces.map((piece) => reader.push(piece));
        assert.deepEqual(results.slice(0, 2), [null, null]);
        assert.ok(results[2]?.equals(body), `split ${a}/${b}`);
      }
    }
  });

  it('waits for all four header bytes instead of reading a zero length', () => {
    const reader = new FrameReader();
    for (let i = 0; i < 4; i += 1) assert.equal(reader.push(frame.subarray(i, i + 1)), null);
    assert.equal(reader.push(frame.subarray(4, 10)), null);
    assert.ok(reader.push(frame.subarray(10))?.equals(body));
  });

  it('rejects an absurd length header', () => {
    const reader = new FrameReader(1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025);
    assert.throws(
      () => reader.push(header),
      (error: unknown) => isKasaError(error) && error.code === 'DEVICE_BAD_REPLY',
    );
  });

  it('reports bytes after the frame', () => {
    const reader = new FrameReader();
    assert.ok(reader.push(Buffer.concat([frame, Buffer.from([1, 2, 3])]))?.equals(body));
    assert.equal(reader.extraBytes, 3);
  });
});

describe('LegacyTcpTransport', function () {
  this.timeout(5000);
  const fleet = new FakeFleet();
  const transports: LegacyTcpTransport[] = [];

  const fake = (fixture: string, options: Partial<FakeKasaDeviceOptions> = {}) =>
    fleet.start(fixture, options);

  function transportTo(device: { host: string; port: number }): LegacyTcpTransport {
    const transport = new LegacyTcpTransport({ host: device.host, port: device.port });
    transports.push(transport);
    return transport;
  }

  afterEach(async () => {
    for (const transport of transports.splice(0)) transport.close();
    await fleet.stopAll();
  });

  it('keeps one connection open over 20 requests', async () => {
    let power = 1000;
    const device = await fake('HS110(EU)_4.0_1.0.4', {
      emeter: () => ({ power_mw: power++, voltage_mv: 230000, current_ma: 10, total_wh: 5 }),
    });
    const transport = transportTo(device);
    for (let i = 0; i < 20; i += 1) {
      const reply = await transport.request(REALTIME, 1000);
      assert.deepEqual(reply, {
        emeter: {
          get_realtime: {
            power_mw: 1000 + i,
            voltage_mv: 230000,
            current_ma: 10,
            total_wh: 5,
            err_code: 0,
          },
        },
      });
    }
    assert.equal(device.connectionsAccepted, 1);
    assert.equal(transport.connectionsOpened, 1);
    assert.equal(transport.reusesConnection, true);
    assert.equal(device.openConnections, 1);
  });

  it('switches to a connection per request when the device hangs up after each reply', async () => {
    const device = await fake('KP115(EU)_1.0_1.0.16', { keepAlive: false });
    const transport = transportTo(device);
    for (let i = 0; i < 10; i += 1) {
      const reply = await transport.request(SYSINFO, 1000);
      assert.equal(
        (reply.system as { get_sysinfo: { model: string } }).get_sysinfo.model,
        'KP115(EU)',
      );
    }
    assert.equal(transport.reusesConnection, false);
    assert.equal(device.requests.length, 10);
    // At most one request may have met the connection in the instant before its FIN arrived.
    assert.ok(device.connectionsAccepted >= 10 && device.connectionsAccepted <= 11);
    await waitFor(() => device.openConnections === 0);
  });

  async function simulator(endSocketAfterResponse: boolean): Promise<{
    device: Device;
    deviceId: string;
    port: number;
  }> {
    const port = await freeLoopbackPort();
    const deviceId = '8006A1B2C3D4E5F60718293A4B5C6D7E8F901234';
    // Not a literal: the simulator's DataType omits deviceId, which it nevertheless honours.
    const data = { alias: 'simulated plug', deviceId };
    const device = new Device({ model: 'hs110v2', address: '127.0.0.1', port, data });
    device.endSocketAfterResponse = endSocketAfterResponse;
    // The simulator re-emits socket errors on this emitter; unheard, they would throw.
    device.deviceNetworking.on('error', () => undefined);
    await device.start();
    return { device, deviceId, port };
  }

  for (const endSocketAfterResponse of [false, true]) {
    it(`works against tplink-smarthome-simulator (endSocketAfterResponse ${endSocketAfterResponse})`, async () => {
      const { device, deviceId, port } = await simulator(endSocketAfterResponse);
      const transport = transportTo({ host: '127.0.0.1', port });
      try {
        for (let i = 0; i < 5; i += 1) {
          const reply = await transport.request({ ...SYSINFO, ...REALTIME }, 1000);
          const sysinfo = (reply.system as { get_sysinfo: Record<string, unknown> }).get_sysinfo;
          assert.equal(sysinfo.deviceId, deviceId);
          assert.equal(sysinfo.alias, 'simulated plug');
          const realtime = (reply.emeter as { get_realtime: Record<string, unknown> }).get_realtime;
          assert.equal(realtime.err_code, 0);
          assert.equal(typeof realtime.power_mw, 'number');
        }
        if (endSocketAfterResponse) {
          assert.equal(transport.reusesConnection, false);
          assert.ok(transport.connectionsOpened >= 5 && transport.connectionsOpened <= 6);
        } else {
          assert.equal(transport.reusesConnection, true);
          assert.equal(transport.connectionsOpened, 1);
        }
      } finally {
        transport.close();
        await device.stop();
      }
    });
  }

  describe('case-005: reply split across segments', () => {
    /** An HS300 with 20-character outlet aliases: its sysinfo reply is about 1.4 KB. */
    function longAliasStrip(): KasaFixture {
      const fixture = loadFixture('HS300(US)_1.0_1.0.21');
      const sysinfo = fixture.system!.get_sysinfo as { children: { alias: string }[] };
      sysinfo.children.forEach((child, index) => {
        child.alias = `Workshop outlet no.${index + 1}`.padEnd(20, '_').slice(0, 20);
      });
      return fixture;
    }

    it('parses a reply written as [2 header bytes][2 + 700][600][rest] like one write', async () => {
      const fixture = longAliasStrip();
      const control = await fleet.start(fixture);
      const split = await fleet.start(fixture);
      split.splitReply = { chunks: [2, 702, 600], pauseMs: 20 };
      // What a poll asks a strip for: sysinfo and realtime in one request, ~1.4 KB.
      const request = { ...SYSINFO, ...REALTIME };
      const replyBytes = Buffer.byteLength(JSON.stringify(split.answer(request)));
      assert.ok(replyBytes > 1350 && replyBytes < 1500, `reply is ${replyBytes} bytes`);

      const expected = await transportTo(control).request(request, 2000);
      const started = Date.now();
      const reply = await transportTo(split).request(request, 2000);
      assert.ok(Date.now() - started >= 55, 'the reply really came in pieces');
      assert.deepEqual(reply, expected);
      const children = (reply.system as { get_sysinfo: { children: unknown[] } }).get_sysinfo
        .children;
      assert.equal(children.length, 6);
    });

    it('parses a reply whose header arrives one byte at a time', async () => {
      const device = await fake('HS300(US)_2.0_1.0.3');
      device.splitReply = { chunks: [1, 1, 1, 1, 1, 300], pauseMs: 5 };
      const transport = transportTo(device);
      for (let i = 0; i < 3; i += 1) {
        const reply = await transport.request({ ...SYSINFO, ...REALTIME }, 2000);
        assert.deepEqual(reply, device.answer({ ...SYSINFO, ...REALTIME }));
      }
      assert.equal(device.connectionsAccepted, 1);
    });
  });

  describe('case-007: connection closed without a reply', () => {
    const variants: [string, 'close' | 'reset'][] = [
      ['a_fin', 'close'],
      ['b_rst', 'reset'],
    ];
    for (const [variant, behaviour] of variants) {
      it(`${variant}: DEVICE_CLOSED five times, nothing escapes, then 23.0 W`, async () => {
        const guard = processGuard();
        try {
          const device = await fake('HS110(EU)_4.0_1.0.4', {
            emeter: () => ({ power_mw: 23000, voltage_mv: 230000, current_ma: 100, total_wh: 1 }),
          });
          const transport = transportTo(device);
          device.behaviour = behaviour;
          for (let i = 0; i < 5; i += 1) {
            await rejectsWith(transport.request(REALTIME, 1000), 'DEVICE_CLOSED');
          }
          assert.equal(device.requests.length, 5);
          device.behaviour = 'normal';
          const reply = await transport.request(REALTIME, 1000);
          assert.equal(
            (reply.emeter as { get_realtime: { power_mw: number } }).get_realtime.power_mw,
            23000,
          );
        } finally {
          await guard.remove();
        }
        assert.deepEqual(guard.seen, []);
      });
    }

    it('c_refused: DEVICE_UNREACHABLE five times, nothing escapes, then 23.0 W', async () => {
      const guard = processGuard();
      try {
        const port = await freeLoopbackPort();
        const transport = transportTo({ host: '127.0.0.1', port });
        for (let i = 0; i < 5; i += 1) {
          await rejectsWith(transport.request(REALTIME, 1000), 'DEVICE_UNREACHABLE');
        }
        await fake('HS110(EU)_4.0_1.0.4', {
          port,
          emeter: () => ({ power_mw: 23000, voltage_mv: 230000, current_ma: 100, total_wh: 1 }),
        });
        const reply = await transport.request(REALTIME, 1000);
        assert.equal(
          (reply.emeter as { get_realtime: { power_mw: number } }).get_realtime.power_mw,
          23000,
        );
      } finally {
        await guard.remove();
      }
      assert.deepEqual(guard.seen, []);
    });
  });

  it('times out a silent device and destroys the socket', async () => {
    const device = await fake('HS110(EU)_1.0_1.2.5');
    device.behaviour = 'blackhole';
    const transport = transportTo(device);
    const started = Date.now();
    await rejectsWith(transport.request(SYSINFO, 150), 'DEVICE_TIMEOUT');
    assert.ok(Date.now() - started >= 140);
    await waitFor(() => device.openConnections === 0, 1000);
    device.behaviour = 'normal';
    await transport.request(SYSINFO, 1000);
    assert.equal(transport.connectionsOpened, 2);
  });

  it('times out queued requests one after another, each with its own limit', async () => {
    const device = await fake('HS110(EU)_1.0_1.2.5');
    device.behaviour = 'blackhole';
    const transport = transportTo(device);
    const started = Date.now();
    const settledAt: number[] = [];
    const requests = [0, 1].map((n) =>
      rejectsWith(
        transport.request({ system: { get_sysinfo: { n } } }, 100),
        'DEVICE_TIMEOUT',
      ).then(() => settledAt.push(Date.now() - started)),
    );
    await Promise.all(requests);
    assert.ok(settledAt[0]! >= 95 && settledAt[1]! >= 190, String(settledAt));
    assert.equal(device.requests.length, 2);
    assert.equal(transport.connectionsOpened, 2);
  });

  it('reports an impossible port as DEVICE_UNREACHABLE and stays usable', async () => {
    const transport = transportTo({ host: '127.0.0.1', port: 70000 });
    await rejectsWith(transport.request(SYSINFO, 1000), 'DEVICE_UNREACHABLE');
    await rejectsWith(transport.request(SYSINFO, 1000), 'DEVICE_UNREACHABLE');
  });

  it('reports a non-JSON reply as DEVICE_BAD_REPLY and recovers', async () => {
    const device = await fake('HS110(EU)_1.0_1.2.5');
    device.behaviour = 'garbage';
    const transport = transportTo(device);
    await rejectsWith(transport.request(SYSINFO, 1000), 'DEVICE_BAD_REPLY');
    device.behaviour = 'normal';
    assert.deepEqual(await transport.request(SYSINFO, 1000), device.answer(SYSINFO));
  });

  it('reports an absurd length header as DEVICE_BAD_REPLY without waiting for the bytes', async () => {
    let closed = 0;
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.on('close', () => (closed += 1));
      socket.once('data', () => socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3])));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const transport = transportTo({ host: '127.0.0.1', port });
    try {
      const started = Date.now();
      await rejectsWith(transport.request(SYSINFO, 2000), 'DEVICE_BAD_REPLY');
      assert.ok(Date.now() - started < 1000);
      await waitFor(() => closed === 1, 1000);
    } finally {
      transport.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('resends once on a fresh connection when the device dropped the kept-open one', async () => {
    const device = await fake('HS110(EU)_4.0_1.0.4');
    const transport = transportTo(device);
    for (let i = 0; i < 3; i += 1) await transport.request(SYSINFO, 1000);
    device.dropConnections();
    // Sent at once, before the client has seen the close: it meets the dead connection.
    assert.deepEqual(await transport.request(SYSINFO, 1000), device.answer(SYSINFO));
    await transport.request(SYSINFO, 1000);
    device.dropConnections();
    await waitFor(() => device.openConnections === 0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(await transport.request(SYSINFO, 1000), device.answer(SYSINFO));
    assert.equal(transport.connectionsOpened, 3);
    assert.equal(transport.reusesConnection, true, 'a device that served many replies keeps them');
    assert.equal(device.requests.length, 6);
  });

  it('serialises concurrent requests on one transport', async () => {
    const device = await fake('HS300(US)_1.0_1.0.21');
    device.responseDelayMs = 10;
    const transport = transportTo(device);
    const replies = await Promise.all(
      device.childIds.map((id) =>
        transport.request({ context: { child_ids: [id] }, ...REALTIME }, 2000),
      ),
    );
    assert.equal(replies.length, 6);
    assert.equal(device.maxConcurrentConnections, 1);
    assert.deepEqual(
      device.requests.map(
        (request) => (request.payload.context as { child_ids: string[] }).child_ids[0],
      ),
      device.childIds,
    );
  });

  it('close() rejects the request in flight and queued ones, and later ones, with POOL_CLOSED', async () => {
    const device = await fake('HS110(EU)_1.0_1.2.5');
    device.behaviour = 'blackhole';
    const transport = transportTo(device);
    const inFlight = transport.request(SYSINFO, 5000);
    const queued = transport.request(REALTIME, 5000);
    await waitFor(() => device.requests.length === 1);
    transport.close();
    transport.close();
    await rejectsWith(inFlight, 'POOL_CLOSED');
    await rejectsWith(queued, 'POOL_CLOSED');
    await rejectsWith(transport.request(SYSINFO, 1000), 'POOL_CLOSED');
    await waitFor(() => device.openConnections === 0, 1000);
    assert.equal(transport.connectionsOpened, 1);
  });
});
