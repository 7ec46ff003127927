import * as net from 'node:net';
import { decrypt, encryptWithHeader } from 'tplink-smarthome-crypto';
import { KasaError, type KasaErrorCode } from '../errors';
import { DEFAULT_MAX_REPLY_BYTES, FrameReader } from './frame-reader';
import type { DeviceAddress, Transport, TransportFactory } from './transport';

/** Options of the legacy (XOR, TCP port 9999) transport. */
export interface LegacyTcpTransportOptions {
  /** Keep one connection open between requests; default true. */
  keepAlive?: boolean;
  /** Close a kept-open connection after this long without traffic, ms; 0 = never. Default 60000. */
  idleTimeoutMs?: number;
  /** TCP keepalive probe delay on open connections, ms; default 15000. */
  keepAliveProbeDelayMs?: number;
  /** Largest reply accepted, bytes; a longer length header is a corrupt stream. Default 1 MiB. */
  maxReplyBytes?: number;
}

interface PendingRequest {
  frame: Buffer;
  timeoutMs: number;
  resolve: (reply: Record<string, unknown>) => void;
  reject: (error: Error) => void;
}

const FRAME_CACHE_SIZE = 16;

/** Errors that mean nothing answers at that address. */
const UNREACHABLE_ERRNOS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

/** Errors that mean an established connection was torn down under us. */
const CLOSED_ERRNOS: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

function classify(error: NodeJS.ErrnoException | null, connected: boolean): KasaErrorCode {
  const errno = error?.code;
  if (errno === undefined) return connected ? 'DEVICE_CLOSED' : 'DEVICE_UNREACHABLE';
  if (UNREACHABLE_ERRNOS.has(errno)) return 'DEVICE_UNREACHABLE';
  if (CLOSED_ERRNOS.has(errno)) return 'DEVICE_CLOSED';
  if (errno === 'ETIMEDOUT') return 'DEVICE_TIMEOUT';
  return connected ? 'DEVICE_CLOSED' : 'DEVICE_UNREACHABLE';
}

/**
 * The legacy Kasa protocol: JSON, XOR-"encrypted", with a 4-byte length header on TCP.
 *
 * One connection per device is kept open and reused. A device that closes the connection
 * after its first reply (older firmware, tplink-smarthome-simulator) is switched to one
 * connection per request, and a request that meets a kept-open connection the device has
 * meanwhile dropped is resent once on a fresh one. Requests are serialised: a second
 * `request()` while one is in flight waits its turn (the pool never does that).
 */
export class LegacyTcpTransport implements Transport {
  private opened = 0;
  private socket: net.Socket | null = null;
  /** Replies completed on the current socket; tells a fresh connection from a reused one. */
  private socketReplies = 0;
  private persistent: boolean;
  private current: PendingRequest | null = null;
  private readonly queue: PendingRequest[] = [];
  private readonly reader: FrameReader;
  private resent = false;
  private timer: NodeJS.Timeout | null = null;
  private timerMs = -1;
  private closed = false;
  private readonly frames = new Map<string, Buffer>();
  private readonly idleTimeoutMs: number;
  private readonly keepAliveProbeDelayMs: number;
  private readonly onTimer = (): void => {
    const req = this.current;
    // The timer is re-armed rather than cleared between requests, so a firing while idle is
    // just the tail of the previous request.
    if (req === null) return;
    this.fail('DEVICE_TIMEOUT', `no complete reply within ${req.timeoutMs} ms`, null);
  };

  constructor(
    readonly address: DeviceAddress,
    options: LegacyTcpTransportOptions = {},
  ) {
    this.persistent = options.keepAlive ?? true;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.keepAliveProbeDelayMs = options.keepAliveProbeDelayMs ?? 15_000;
    this.reader = new FrameReader(options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES);
  }

  get connectionsOpened(): number {
    return this.opened;
  }

  /** False once the device has shown it closes the connection after each reply. */
  get reusesConnection(): boolean {
    return this.persistent;
  }

  request(payload: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(this.closedError());
        return;
      }
      const req: PendingRequest = { frame: this.encode(payload), timeoutMs, resolve, reject };
      if (this.current === null) this.start(req);
      else this.queue.push(req);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.dropSocket();
    const current = this.current;
    this.current = null;
    if (current !== null) current.reject(this.closedError());
    for (const req of this.queue.splice(0)) req.reject(this.closedError());
  }

  private closedError(): KasaError {
    return new KasaError('POOL_CLOSED', 'connection closed', { ...this.address });
  }

  /**
   * Pollers send the same few payloads over and over (a strip: sysinfo plus one per outlet),
   * so their encrypted frames are kept; the bound stops a caller with ever-new payloads
   * from growing the cache.
   */
  private encode(payload: Record<string, unknown>): Buffer {
    const json = JSON.stringify(payload);
    let frame = this.frames.get(json);
    if (frame === undefined) {
      if (this.frames.size >= FRAME_CACHE_SIZE) this.frames.clear();
      frame = encryptWithHeader(json);
      this.frames.set(json, frame);
    }
    return frame;
  }

  private start(req: PendingRequest): void {
    this.current = req;
    this.resent = false;
    if (this.timer !== null && this.timerMs === req.timeoutMs) {
      this.timer.refresh();
    } else {
      if (this.timer !== null) clearTimeout(this.timer);
      // Unref'd: the socket in use keeps the process alive; an idle transport must not.
      this.timer = setTimeout(this.onTimer, req.timeoutMs).unref();
      this.timerMs = req.timeoutMs;
    }
    this.send(req);
  }

  private send(req: PendingRequest): void {
    this.reader.reset();
    let socket = this.socket;
    if (socket !== null && !socket.writable) {
      // The device's FIN is in but its 'close' is not yet: same verdict as onClose would give.
      if (this.socketReplies === 1) this.persistent = false;
      this.dropSocket();
      socket = null;
    }
    if (socket === null) {
      try {
        socket = this.connect();
      } catch (error) {
        // e.g. a port out of range: net throws instead of emitting 'error'.
        this.fail('DEVICE_UNREACHABLE', (error as Error).message, error);
        return;
      }
    } else {
      socket.ref();
    }
    socket.write(req.frame);
  }

  private connect(): net.Socket {
    const socket = net.createConnection({
      host: this.address.host,
      port: this.address.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: this.keepAliveProbeDelayMs,
    });
    this.opened += 1;
    this.socket = socket;
    this.socketReplies = 0;
    let connected = false;
    let lastError: NodeJS.ErrnoException | null = null;
    socket.once('connect', () => {
      connected = true;
    });
    socket.on('data', (chunk: Buffer) => {
      if (socket === this.socket) this.onData(chunk);
    });
    // Always handled: an unhandled socket 'error' would be an uncaught exception (case-007).
    socket.on('error', (error: NodeJS.ErrnoException) => {
      lastError = error;
    });
    socket.on('close', () => {
      if (socket === this.socket) this.onClose(lastError, connected);
    });
    if (this.persistent && this.idleTimeoutMs > 0) {
      socket.setTimeout(this.idleTimeoutMs, () => {
        if (socket === this.socket && this.current === null) this.dropSocket();
      });
    }
    return socket;
  }

  private onData(chunk: Buffer): void {
    if (this.current === null) {
      // Unsolicited bytes would be taken for the next reply; start that one clean.
      this.dropSocket();
      return;
    }
    let encrypted: Buffer | null;
    try {
      encrypted = this.reader.push(chunk);
    } catch (error) {
      this.fail('DEVICE_BAD_REPLY', (error as Error).message, error);
      return;
    }
    if (encrypted === null) return;
    let reply: unknown;
    try {
      reply = JSON.parse(decrypt(encrypted).toString('utf8'));
    } catch (error) {
      this.fail('DEVICE_BAD_REPLY', `reply is not JSON (${encrypted.length} bytes)`, error);
      return;
    }
    if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) {
      this.fail('DEVICE_BAD_REPLY', 'reply is not a JSON object', null);
      return;
    }
    const req = this.current;
    this.current = null;
    this.socketReplies += 1;
    if (!this.persistent || this.reader.extraBytes > 0) this.dropSocket();
    else this.socket?.unref();
    req.resolve(reply as Record<string, unknown>);
    this.next();
  }

  private onClose(error: NodeJS.ErrnoException | null, connected: boolean): void {
    const reusedSocket = this.socketReplies > 0;
    // A device that hangs up after its first reply does so every time.
    if (this.socketReplies === 1) this.persistent = false;
    this.socket = null;
    const req = this.current;
    if (req === null) return;
    const code = classify(error, connected);
    if (code === 'DEVICE_CLOSED' && reusedSocket && !this.reader.started && !this.resent) {
      // The device dropped the kept-open connection before our request reached it; that
      // says nothing about the device, so the request goes once more on a fresh connection.
      this.resent = true;
      this.send(req);
      return;
    }
    const reason =
      error === null
        ? `connection closed before a full reply${this.reader.started ? ' (partial reply)' : ''}`
        : error.message;
    this.fail(code, reason, error);
  }

  private fail(code: KasaErrorCode, message: string, cause: unknown): void {
    const req = this.current;
    if (req === null) return;
    this.current = null;
    this.dropSocket();
    req.reject(
      new KasaError(
        code,
        `${this.address.host}:${this.address.port}: ${message}`,
        // The short reason (an errno code where there is one) reads better next to the address.
        { ...this.address, reason: (cause as NodeJS.ErrnoException | null)?.code ?? message },
        { cause },
      ),
    );
    this.next();
  }

  private next(): void {
    const req = this.queue.shift();
    if (req !== undefined) this.start(req);
  }

  private dropSocket(): void {
    const socket = this.socket;
    if (socket === null) return;
    this.socket = null;
    socket.destroy();
  }
}

/** Creates a LegacyTcpTransport per device with the given options. */
export function createLegacyTcpTransportFactory(
  options: LegacyTcpTransportOptions = {},
): TransportFactory {
  return (address) => new LegacyTcpTransport(address, options);
}

/** The default transport factory: legacy protocol, kept-open connections. */
export const legacyTcpTransportFactory: TransportFactory = (address) =>
  new LegacyTcpTransport(address);
