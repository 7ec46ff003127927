import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';

import { freePort } from './node-red-process';
import { makeTempDir, removeTempDir } from './temp-dir';

const HOST = '127.0.0.1';

export interface RedisServer {
  port: number;
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** Process id of the running server (changes on restart). */
  readonly pid: number;
  /** Everything the server printed so far. */
  log(): string;
  /** SIGKILL: Redis disappears mid-run without a goodbye. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is saved). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that is connected but does not answer. */
  pause(): void;
  resume(): void;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

/** Where `redis-server` is, or a loud error: a test that needs it must fail, never skip. */
export function redisServerPath(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      'redis-server is not installed (not on PATH): the cache tests need a real Redis. ' +
        'Install it with `apt-get install -y redis-server`; .ci/run does this on CI.',
    );
  }
}

/**
 * Starts a private redis-server on a free loopback port in a temporary folder, with persistence
 * off. It is only ever signalled by its own process id. `args` are extra server options, e.g.
 * `['--requirepass', 'secret']`.
 */
export async function startRedisServer(options: { args?: string[] } = {}): Promise<RedisServer> {
  const binary = redisServerPath();
  const dir = makeTempDir('kasa-redis-');
  const port = await freePort();
  let child: ChildProcess | null = null;
  let output = '';

  const launch = async () => {
    const started = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        HOST,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--daemonize',
        'no',
        ...(options.args ?? []),
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = started;
    const collect = (chunk: Buffer) => (output += chunk.toString('utf8'));
    started.stdout.on('data', collect);
    started.stderr.on('data', collect);
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (started.exitCode !== null || started.signalCode !== null) {
        throw new Error(`redis-server exited while starting:\n${output}`);
      }
      if (Date.now() > deadline) {
        signal(started, 'SIGKILL');
        throw new Error(`redis-server did not listen on ${HOST}:${port} within 10 s:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  const halt = async (how: NodeJS.Signals) => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    signal(running, 'SIGCONT');
    signal(running, how);
    const killer = setTimeout(() => signal(running, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  };

  try {
    await launch();
  } catch (error) {
    await halt('SIGKILL');
    removeTempDir(dir);
    throw error;
  }

  let stopped = false;
  return {
    port,
    url: `redis://${HOST}:${port}`,
    get pid() {
      if (child?.pid === undefined) throw new Error('redis-server is not running');
      return child.pid;
    },
    log: () => output,
    kill: () => halt('SIGKILL'),
    restart: async () => {
      await halt('SIGTERM');
      await launch();
    },
    pause: () => {
      if (child !== null) signal(child, 'SIGSTOP');
    },
    resume: () => {
      if (child !== null) signal(child, 'SIGCONT');
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await halt('SIGTERM');
      removeTempDir(dir);
    },
  };
}

/** Whether something accepts a TCP connection on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function signal(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, name);
  } catch {
    // Exited between the check and the signal.
  }
}
