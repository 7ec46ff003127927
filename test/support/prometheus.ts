import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { freePort } from './node-red-process';
import { makeTempDir, removeTempDir } from './temp-dir';

const HOST = '127.0.0.1';

/** Where a Prometheus tool is, or a loud error: a test that needs it must fail, never skip. */
export function prometheusToolPath(tool: 'promtool' | 'prometheus'): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      `${tool} is not installed (not on PATH): the metrics tests need it. ` +
        "Install Debian's `prometheus` package (`apt-get install -y prometheus`); .ci/run does this on CI.",
    );
  }
}

/**
 * Runs `promtool check metrics` on exposition text. Resolves with promtool's complaints: an
 * empty string when the text is clean. Rejects when promtool itself cannot run.
 */
export async function promtoolCheckMetrics(
  text: string,
): Promise<{ code: number; output: string }> {
  const child = spawn(prometheusToolPath('promtool'), ['check', 'metrics'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stdin.end(text);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code: code ?? -1, output: output.trim() };
}

export interface PrometheusServer {
  url: string;
  pid: number;
  log(): string;
  /** GET /api/v1/query?query=... and its `data.result`. */
  query(expression: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** SIGTERM (SIGKILL after 10 s) and removal of its folder. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a private Prometheus on a free loopback port with its config and storage in a temp
 * folder, scraping `target` (`host:port`) at `metricsPath` every second.
 */
export async function startPrometheus(
  target: string,
  metricsPath: string,
): Promise<PrometheusServer> {
  const binary = prometheusToolPath('prometheus');
  const dir = makeTempDir('kasa-prometheus-');
  const port = await freePort();
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: kasa',
      `    metrics_path: ${metricsPath}`,
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${HOST}:${port}`,
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = once(child, 'exit');
  const url = `http://${HOST}:${port}`;

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      const killer = setTimeout(() => {
        if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      }, 10_000);
      await exited;
      clearTimeout(killer);
    }
    removeTempDir(dir);
  };

  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`prometheus exited while starting:\n${output}`);
      if (await ready(url)) break;
      if (Date.now() > deadline)
        throw new Error(`prometheus not ready on ${url} in 30 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    url,
    pid: child.pid!,
    log: () => output,
    query: async (expression) => {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expression)}`);
      const body = (await response.json()) as {
        status: string;
        data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      if (body.status !== 'success' || body.data === undefined)
        throw new Error(`query ${expression} failed: ${JSON.stringify(body)}`);
      return body.data.result;
    },
    stop,
  };
}

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/-/ready`)).ok;
  } catch {
    return false;
  }
}
