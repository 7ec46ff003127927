import assert from 'node:assert/strict';

import { isKasaError, type KasaError, type KasaErrorCode } from '../../lib/errors';

/** Resolves once `predicate` holds, checking every 5 ms; fails after `timeoutMs` naming `what`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 2000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what}: not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Awaits `promise` and checks it rejected with a KasaError of `code`, which it returns. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: KasaErrorCode,
): Promise<KasaError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isKasaError(error), `expected a KasaError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected a rejection with ${code}`);
}

/** The two requests the pool and transport tests send most. */
export const SYSINFO = { system: { get_sysinfo: {} } };
export const REALTIME = { emeter: { get_realtime: {} } };
