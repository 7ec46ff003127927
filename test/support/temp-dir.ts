import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Creates a fresh directory under the OS temp dir; remove it with `removeTempDir`. */
export function makeTempDir(prefix = 'kasa-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A temp dir per test for the surrounding mocha `describe`: `dir()` is valid inside each test and
 * the directory is gone after it.
 */
export function useTempDir(prefix?: string): { dir(): string } {
  let current: string | null = null;
  beforeEach(() => {
    current = makeTempDir(prefix);
  });
  afterEach(() => {
    if (current !== null) removeTempDir(current);
    current = null;
  });
  return {
    dir: () => {
      if (current === null) throw new Error('useTempDir: only valid inside a test');
      return current;
    },
  };
}
