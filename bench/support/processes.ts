import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const REPO = join(__dirname, '..', '..');
const TSX = join(REPO, 'node_modules', '.bin', 'tsx');

/** Runs a bench script in its own process and resolves with the JSON it prints last. */
export function runScript<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [join(REPO, script), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = output.trim().split('\n').at(-1) ?? '';
      if (code !== 0) reject(new Error(`${script} exited with ${String(code)}`));
      else resolve(JSON.parse(last) as T);
    });
  });
}

export interface DeviceServer {
  ports: number[];
  stop(): Promise<void>;
}

/** Starts the fake plugs in a child process. */
export async function startDeviceServer(count: number): Promise<DeviceServer> {
  const child: ChildProcess = spawn(
    TSX,
    [join(REPO, 'bench/support/device-server.ts'), String(count)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`device server exited with ${String(code)}`)));
  });
  lines.close();
  const { ports } = JSON.parse(first) as { ports: number[] };
  return {
    ports,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.stdin!.end();
      }),
  };
}
