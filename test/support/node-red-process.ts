import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** The package root (this file lives in test/support). */
export const REPO_ROOT = resolve(__dirname, '..', '..');
const PACKAGE_NAME = '@kasa-monitor/node-red-kasa-monitor';
const RED_JS = join(REPO_ROOT, 'node_modules', 'node-red', 'red.js');
const HOST = '127.0.0.1';

export interface NodeRedOptions {
  /** Node-RED user directory; a temp dir (removed on stop) by default. */
  userDir?: string;
  /** HTTP port on 127.0.0.1; a free one by default. */
  port?: number;
  /** Flows deployed before the start resolves. */
  flows?: object[];
  /** Extra settings.js entries (JSON-serialisable). */
  settings?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Extra arguments for node itself, before red.js (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** How long to wait for "Server now running", ms. Default 30000. */
  startTimeoutMs?: number;
  /** Also write Node-RED's output to this process's stdout (the demo). Default false. */
  echo?: boolean;
  /**
   * Other node modules from this repository's node_modules to install beside the package, e.g.
   * `['@flowfuse/node-red-dashboard']` for flows with Dashboard 2 nodes.
   */
  modules?: string[];
}

/** The log kept in memory is trimmed to this many characters, so a long run stays bounded. */
const MAX_LOG_CHARS = 4_000_000;

export interface NodeRedProcess {
  /** Base URL of the editor and admin API, e.g. http://127.0.0.1:41234 */
  url: string;
  pid: number;
  userDir: string;
  /** Everything the process wrote to stdout and stderr so far. */
  log(): string;
  /** Full deploy through the admin API; resolves once the flows have started. */
  deploy(flows: object[]): Promise<void>;
  getFlows(): Promise<object[]>;
  /** SIGINT, then SIGKILL after 10 s; removes the user dir if it was created here. */
  stop(): Promise<void>;
}

/**
 * Starts a real Node-RED (the devDependency's red.js) as a child process with this package
 * installed in its user directory through a symlink, as `npm install <path>` would. Build the
 * package first (`npm run build`): Node-RED loads dist/.
 */
export async function startNodeRed(options: NodeRedOptions = {}): Promise<NodeRedProcess> {
  const ownsUserDir = options.userDir === undefined;
  const userDir = options.userDir ?? mkdtempSync(join(tmpdir(), 'kasa-node-red-'));
  const port = options.port ?? (await freePort());
  const url = `http://${HOST}:${port}`;
  prepareUserDir(userDir, port, options.settings ?? {}, options.flows ?? [], options.modules ?? []);

  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), RED_JS, '-u', userDir, '-p', String(port), '--no-telemetry'],
    { cwd: userDir, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (child.pid === undefined) throw new Error('Node-RED did not start');
  const pid = child.pid;
  let output = '';
  // Characters trimmed off the front of `output`: positions handed out stay absolute.
  let dropped = 0;
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    if (options.echo === true) process.stdout.write(chunk);
    output += chunk.toString('utf8');
    if (output.length > MAX_LOG_CHARS) {
      const cut = output.length - MAX_LOG_CHARS / 2;
      output = output.slice(cut);
      dropped += cut;
    }
    for (const check of [...waiters]) check();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = once(child, 'exit');

  const waitForLog = (pattern: RegExp, from: number, timeoutMs: number, what: string) =>
    new Promise<void>((resolveWait, reject) => {
      const check = () => {
        if (pattern.test(output.slice(Math.max(0, from - dropped)))) {
          finish();
          resolveWait();
        } else if (child.exitCode !== null || child.signalCode !== null) {
          finish();
          reject(new Error(`Node-RED exited while waiting for ${what}:\n${output}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${output}`));
      }, timeoutMs);
      const onExit = () => check();
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
        child.off('exit', onExit);
      };
      waiters.add(check);
      child.on('exit', onExit);
      check();
    });

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      kill(child, 'SIGINT');
      const killer = setTimeout(() => kill(child, 'SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    child.stdout.off('data', onData);
    child.stderr.off('data', onData);
    if (ownsUserDir) rmSync(userDir, { recursive: true, force: true });
  };

  try {
    const timeout = options.startTimeoutMs ?? 30_000;
    await waitForLog(/Server now running/, 0, timeout, 'the server');
    // Printed for an empty flow file too; waiting for it keeps a later deploy from mistaking it
    // for its own.
    await waitForLog(/Started flows/, 0, timeout, 'the initial flows');
  } catch (error) {
    await stop();
    throw error;
  }

  const deploy = async (flows: object[]) => {
    const from = dropped + output.length;
    const response = await fetch(`${url}/flows`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify(flows),
    });
    if (!response.ok) {
      throw new Error(`deploy failed: HTTP ${response.status} ${await response.text()}`);
    }
    await waitForLog(/Started flows/, from, 30_000, 'the deployed flows');
  };

  const getFlows = async () => {
    const response = await fetch(`${url}/flows`);
    if (!response.ok) throw new Error(`GET /flows failed: HTTP ${response.status}`);
    return (await response.json()) as object[];
  };

  return { url, pid, userDir, log: () => output, deploy, getFlows, stop };
}

function prepareUserDir(
  userDir: string,
  port: number,
  extra: Record<string, unknown>,
  flows: object[],
  modules: string[],
): void {
  installByLink(userDir, PACKAGE_NAME, REPO_ROOT);
  for (const name of modules) installByLink(userDir, name, join(REPO_ROOT, 'node_modules', name));
  const settings = {
    uiHost: HOST,
    uiPort: port,
    flowFile: 'flows.json',
    credentialSecret: false,
    logging: { console: { level: 'info', metrics: false, audit: false } },
    editorTheme: { tours: false },
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false },
    ...extra,
  };
  writeFileSync(
    join(userDir, 'settings.js'),
    `module.exports = ${JSON.stringify(settings, null, 2)};\n`,
  );
  writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flows, null, 2));
  writeFileSync(
    join(userDir, 'package.json'),
    JSON.stringify({ name: 'node-red-project', private: true }),
  );
}

/** Makes `target` appear as `<userDir>/node_modules/<name>`, as `npm install <path>` would. */
function installByLink(userDir: string, name: string, target: string): void {
  const link = join(userDir, 'node_modules', ...name.split('/'));
  mkdirSync(dirname(link), { recursive: true });
  rmSync(link, { force: true, recursive: true });
  symlinkSync(target, link, 'dir');
}

/** Asks the OS for a free port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, HOST);
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port assigned');
  return address.port;
}

/** Signals only our own child, by its pid. */
function kill(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, signal);
  } catch {
    // Exited between the check and the signal.
  }
}
