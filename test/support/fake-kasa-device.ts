import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { decrypt, encrypt, encryptWithHeader } from 'tplink-smarthome-crypto';
import type { DeviceAddress } from '../../lib/protocol/transport';

/** A device dump: module -> method -> reply, as in test/fixtures/kasa-iot/*.json. */
export type KasaFixture = Record<string, Record<string, unknown>>;

/**
 * How the fake treats a request: answer it, swallow it (`blackhole`), hang up without a reply
 * (`close`: FIN, `reset`: RST) or answer with a valid header around a non-JSON payload.
 */
export type FakeBehaviour = 'normal' | 'blackhole' | 'close' | 'reset' | 'garbage';

export interface FakeRequest {
  transport: 'tcp' | 'udp';
  payload: Record<string, unknown>;
  /** ms since the epoch when the request was read. */
  at: number;
}

/** Writes a reply in pieces: `chunks` are the byte sizes of the first pieces, the rest follows. */
export interface SplitReply {
  chunks: number[];
  pauseMs: number;
}

export interface FakeKasaDeviceOptions {
  /** Default 127.0.0.1. Only ever a loopback address. */
  host?: string;
  /** Default 0: a free port, readable from `.port` after `start()`. */
  port?: number;
  fixture: KasaFixture;
  /** 40 hex chars; default the fixture's deviceId. Strip outlets are `${deviceId}00`, `01`, ... */
  deviceId?: string;
  mac?: string;
  alias?: string;
  /** List strip outlets as '00'..'05' in sysinfo (older firmware) instead of full ids. */
  shortChildIds?: boolean;
  /** Live get_realtime values; childId is the full outlet id or null. Default: the fixture's. */
  emeter?: (childId: string | null) => Record<string, number>;
  /**
   * `emeter.get_daystat` replies by month (the request's `{year, month}`), e.g. the day lists of
   * case-016; childId is the full outlet id or null. Default: the fixture's reply.
   */
  dayStat?: (year: number, month: number, childId: string | null) => Record<string, unknown>;
  /** Seconds the relay has been on, reported as on_time. Default: the fixture's. */
  onTime?: () => number;
  /** False: end the connection after each reply, like tplink-smarthome-simulator. Default true. */
  keepAlive?: boolean;
  /** Also answer on UDP (no length header) on the same port. Default false. */
  udp?: boolean;
  /**
   * Answer discovery: requests broadcast to this loopback address on UDP port 9999 are answered
   * from the device's own address and port, as a real device answers. `true` means
   * 127.255.255.255. Implies `udp`. Default off.
   */
  discovery?: boolean | string;
  /** Keep every request in `requests`; turn off for long benchmarks. Default true. */
  recordRequests?: boolean;
}

interface Connection {
  socket: net.Socket;
  pending: Buffer;
  frames: Buffer[];
  busy: boolean;
}

type Json = Record<string, unknown>;

const EMPTY = Buffer.alloc(0);
/** Where fakes listen for discovery by default: loopback's broadcast address, Kasa's port. */
export const DISCOVERY_BROADCAST = '127.255.255.255';
const DISCOVERY_PORT = 9999;

async function bindUdp(socket: dgram.Socket, port: number, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port, address }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => undefined);
}
const GARBAGE = Buffer.from('<html><body>502 Bad Gateway</body></html>');

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads test/fixtures/kasa-iot/<name>.json, e.g. `loadFixture('HS300(US)_1.0_1.0.21')`. */
export function loadFixture(name: string): KasaFixture {
  const file = path.join(__dirname, '..', 'fixtures', 'kasa-iot', `${name}.json`);
  return JSON.parse(readFileSync(file, 'utf8')) as KasaFixture;
}

/** A currently free TCP and UDP port on a loopback host (for servers that cannot take port 0). */
export async function freeLoopbackPort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const server = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: 0 }, () => {
        const bound = server.address();
        resolve(bound !== null && typeof bound === 'object' ? bound.port : 0);
      });
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const udp = dgram.createSocket('udp4');
    const udpFree = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind({ port, address: host }, () => resolve(true));
    });
    if (udpFree) {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      return port;
    }
    try {
      udp.close();
    } catch {
      // A socket whose bind failed may already be closed.
    }
  }
}

/**
 * A Kasa device on loopback speaking the real legacy protocol (XOR, 4-byte length header on
 * TCP, none on UDP) and answering from a fixture, with switchable faults for tests, the demo
 * and benchmarks.
 */
export class FakeKasaDevice {
  /** Switchable at any time; applies to requests read afterwards. */
  behaviour: FakeBehaviour = 'normal';
  /** Delay before each answer (or hang-up), ms. */
  responseDelayMs = 0;
  splitReply: SplitReply | undefined;
  /** Further concurrent connections are reset at once, like a real HS300. */
  maxConnections: number | undefined;

  readonly requests: FakeRequest[] = [];
  requestCount = 0;
  connectionsAccepted = 0;
  /** Connections reset at once because of `maxConnections`. */
  connectionsRejected = 0;
  openConnections = 0;
  maxConcurrentConnections = 0;

  readonly host: string;
  readonly deviceId: string;
  /** Full ids of the outlets of a strip, in order; empty for single plugs. */
  readonly childIds: readonly string[];

  private readonly fixture: KasaFixture;
  private readonly baseSysinfo: Json | undefined;
  private readonly options: FakeKasaDeviceOptions;
  private readonly keepAlive: boolean;
  private readonly recordRequests: boolean;
  private listenPort: number;
  private server: net.Server | null = null;
  private udpSocket: dgram.Socket | null = null;
  private discoverySocket: dgram.Socket | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(options: FakeKasaDeviceOptions) {
    this.options = options;
    this.host = options.host ?? '127.0.0.1';
    this.listenPort = options.port ?? 0;
    this.fixture = options.fixture;
    this.keepAlive = options.keepAlive ?? true;
    this.recordRequests = options.recordRequests ?? true;
    const sysinfo = options.fixture.system?.get_sysinfo;
    const base = isObject(sysinfo) ? (JSON.parse(JSON.stringify(sysinfo)) as Json) : undefined;
    const fixtureId = base !== undefined && typeof base.deviceId === 'string' ? base.deviceId : '';
    this.deviceId = options.deviceId ?? fixtureId;
    const childIds: string[] = [];
    if (base !== undefined) {
      base.deviceId = this.deviceId;
      if (options.mac !== undefined) base.mac = options.mac;
      if (options.alias !== undefined) base.alias = options.alias;
      if (Array.isArray(base.children)) {
        base.children.forEach((child: unknown, index) => {
          const full = `${this.deviceId}${String(index).padStart(2, '0')}`;
          childIds.push(full);
          if (isObject(child)) child.id = options.shortChildIds === true ? full.slice(-2) : full;
        });
      }
    }
    this.baseSysinfo = base;
    this.childIds = childIds;
  }

  /** The listening port; the chosen one after `start()` when constructed with port 0. */
  get port(): number {
    return this.listenPort;
  }

  get address(): DeviceAddress {
    return { host: this.host, port: this.listenPort };
  }

  async start(): Promise<this> {
    if (this.server !== null) return this;
    const server = net.createServer((socket) => this.onConnection(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.host, port: this.listenPort }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const bound = server.address();
    if (bound !== null && typeof bound === 'object') this.listenPort = bound.port;
    const discovery = this.options.discovery;
    if (this.options.udp === true || (discovery !== undefined && discovery !== false)) {
      const udp = dgram.createSocket('udp4');
      this.udpSocket = udp;
      await bindUdp(udp, this.listenPort, this.host);
      udp.on('message', (message, remote) => this.onUdp(message, remote));
    }
    if (discovery !== undefined && discovery !== false) {
      const address = discovery === true ? DISCOVERY_BROADCAST : discovery;
      // Every fake binds the broadcast address too (shared), so each one hears each request.
      const listener = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      this.discoverySocket = listener;
      await bindUdp(listener, DISCOVERY_PORT, address);
      listener.on('message', (message, remote) => this.onUdp(message, remote));
    }
    return this;
  }

  /** Destroys every open connection, cancels pending replies and closes the servers. */
  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = null;
    const udp = this.udpSocket;
    this.udpSocket = null;
    if (udp !== null) await new Promise<void>((resolve) => udp.close(() => resolve()));
    const listener = this.discoverySocket;
    this.discoverySocket = null;
    if (listener !== null) await new Promise<void>((resolve) => listener.close(() => resolve()));
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Destroys the open connections, as a rebooting device or its idle timeout would. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /**
   * The reply the device gives to `payload` (what a TCP request gets in 'normal' behaviour).
   * A module missing from the fixture answers `err_code -1 module not support` like real
   * devices; an unknown outlet in `context.child_ids` answers `-14 entry not exist`.
   */
  answer(payload: Json, transport: 'tcp' | 'udp' = 'tcp'): Json {
    const reply: Json = {};
    let childId: string | null = null;
    let unknownChild = false;
    const context = payload.context;
    if (isObject(context) && Array.isArray(context.child_ids) && context.child_ids.length > 0) {
      childId = this.resolveChild(context.child_ids[0]);
      unknownChild = childId === null;
    }
    for (const moduleName of Object.keys(payload)) {
      if (moduleName === 'context') continue;
      const fixtureModule = this.fixture[moduleName];
      if (fixtureModule === undefined) {
        reply[moduleName] = { err_code: -1, err_msg: 'module not support' };
        continue;
      }
      const methods = payload[moduleName];
      const moduleReply: Json = {};
      for (const method of isObject(methods) ? Object.keys(methods) : []) {
        moduleReply[method] = unknownChild
          ? { err_code: -14, err_msg: 'entry not exist' }
          : this.answerMethod(moduleName, method, fixtureModule, childId, transport, methods);
      }
      reply[moduleName] = moduleReply;
    }
    return reply;
  }

  private resolveChild(id: unknown): string | null {
    if (typeof id !== 'string') return null;
    if (this.childIds.includes(id)) return id;
    if (/^\d\d$/.test(id)) return this.childIds[Number(id)] ?? null;
    return null;
  }

  private answerMethod(
    moduleName: string,
    method: string,
    fixtureModule: Record<string, unknown>,
    childId: string | null,
    transport: 'tcp' | 'udp',
    methods: unknown,
  ): unknown {
    if (moduleName === 'system' && method === 'get_sysinfo' && this.baseSysinfo !== undefined) {
      return this.sysinfo(transport);
    }
    if (moduleName === 'emeter' && method === 'get_realtime' && this.options.emeter) {
      return { ...this.options.emeter(childId), err_code: 0 };
    }
    if (moduleName === 'emeter' && method === 'get_daystat' && this.options.dayStat) {
      const params = isObject(methods) && isObject(methods[method]) ? methods[method] : {};
      return this.options.dayStat(Number(params.year), Number(params.month), childId);
    }
    return fixtureModule[method] ?? { err_code: -2, err_msg: 'member not support' };
  }

  private sysinfo(transport: 'tcp' | 'udp'): Json {
    const base = this.baseSysinfo ?? {};
    const info: Json = { ...base };
    const onTime = this.options.onTime?.();
    if (onTime !== undefined && 'on_time' in base) info.on_time = onTime;
    if (Array.isArray(base.children)) {
      info.children = base.children.map((child: unknown) => {
        if (!isObject(child)) return child;
        const copy: Json = { ...child };
        // Real strips list only the last two digits over UDP.
        if (transport === 'udp' && typeof copy.id === 'string') copy.id = copy.id.slice(-2);
        if (onTime !== undefined && 'on_time' in copy) copy.on_time = onTime;
        return copy;
      });
    }
    return info;
  }

  private record(transport: 'tcp' | 'udp', payload: Json): void {
    this.requestCount += 1;
    if (this.recordRequests) this.requests.push({ transport, payload, at: Date.now() });
  }

  private later(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private onConnection(socket: net.Socket): void {
    this.connectionsAccepted += 1;
    this.openConnections += 1;
    this.maxConcurrentConnections = Math.max(this.maxConcurrentConnections, this.openConnections);
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.openConnections -= 1;
      this.sockets.delete(socket);
    });
    if (this.maxConnections !== undefined && this.openConnections > this.maxConnections) {
      this.connectionsRejected += 1;
      socket.resetAndDestroy();
      return;
    }
    socket.setNoDelay(true);
    const conn: Connection = { socket, pending: EMPTY, frames: [], busy: false };
    socket.on('data', (chunk: Buffer) => this.onTcpData(conn, chunk));
  }

  private onTcpData(conn: Connection, chunk: Buffer): void {
    let pending = conn.pending.length === 0 ? chunk : Buffer.concat([conn.pending, chunk]);
    while (pending.length >= 4) {
      const end = 4 + pending.readUInt32BE(0);
      if (pending.length < end) break;
      conn.frames.push(pending.subarray(4, end));
      pending = pending.subarray(end);
    }
    conn.pending = pending;
    this.processNext(conn);
  }

  private processNext(conn: Connection): void {
    const { socket } = conn;
    // Requests after our own FIN are ignored: a device that hung up does not answer them.
    if (conn.busy || !socket.writable) return;
    const frame = conn.frames.shift();
    if (frame === undefined) return;
    let payload: unknown;
    try {
      payload = JSON.parse(decrypt(frame).toString('utf8'));
    } catch {
      socket.destroy();
      return;
    }
    if (!isObject(payload)) {
      socket.destroy();
      return;
    }
    const request = payload;
    this.record('tcp', request);
    const behaviour = this.behaviour;
    if (behaviour === 'blackhole') {
      conn.busy = true;
      return;
    }
    conn.busy = true;
    this.later(this.responseDelayMs, () => {
      if (!socket.writable) return;
      if (behaviour === 'close') {
        socket.end();
        return;
      }
      if (behaviour === 'reset') {
        socket.resetAndDestroy();
        return;
      }
      const body = behaviour === 'garbage' ? GARBAGE : JSON.stringify(this.answer(request));
      this.writeReply(socket, encryptWithHeader(body), () => {
        conn.busy = false;
        if (!this.keepAlive) socket.end();
        else this.processNext(conn);
      });
    });
  }

  private writeReply(socket: net.Socket, data: Buffer, done: () => void): void {
    const split = this.splitReply;
    if (split === undefined || split.chunks.length === 0) {
      socket.write(data);
      done();
      return;
    }
    let offset = 0;
    let index = 0;
    const step = (): void => {
      if (!socket.writable) return;
      const size = split.chunks[index];
      index += 1;
      const end = size === undefined ? data.length : Math.min(data.length, offset + size);
      socket.write(data.subarray(offset, end));
      offset = end;
      if (offset >= data.length) done();
      else this.later(split.pauseMs, step);
    };
    step();
  }

  private onUdp(message: Buffer, remote: dgram.RemoteInfo): void {
    let payload: unknown;
    try {
      payload = JSON.parse(decrypt(message).toString('utf8'));
    } catch {
      return;
    }
    if (!isObject(payload)) return;
    const request = payload;
    this.record('udp', request);
    const behaviour = this.behaviour;
    if (behaviour !== 'normal' && behaviour !== 'garbage') return;
    this.later(this.responseDelayMs, () => {
      const body = behaviour === 'garbage' ? GARBAGE : JSON.stringify(this.answer(request, 'udp'));
      this.udpSocket?.send(encrypt(body), remote.port, remote.address);
    });
  }
}

/** The fake devices one test file starts, stopped together in its `afterEach`. */
export class FakeFleet {
  private readonly started: FakeKasaDevice[] = [];

  /** Starts a fake answering from a fixture (a test/fixtures/kasa-iot name, or the data). */
  async start(
    fixture: string | KasaFixture,
    options: Partial<FakeKasaDeviceOptions> = {},
  ): Promise<FakeKasaDevice> {
    const device = new FakeKasaDevice({
      fixture: typeof fixture === 'string' ? loadFixture(fixture) : fixture,
      ...options,
    });
    this.started.push(device);
    return device.start();
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.started.splice(0).map((device) => device.stop()));
  }
}
