import assert from 'node:assert/strict';

import { RetryingOpen } from '../../../lib/store/retrying-open';

describe('RetryingOpen', function () {
  let now = 0;
  const clock = { now: () => now };
  let broken = true;
  const events: string[] = [];
  const opener = () =>
    new RetryingOpen(
      () => {
        if (broken) throw new Error('no such folder');
        return { handle: 1 };
      },
      {
        retryMs: 1000,
        clock,
        onOpen: (_, recovered) => events.push(recovered ? 'recovered' : 'opened'),
        onFail: (error) => events.push(`failed: ${(error as Error).message}`),
      },
    );
  beforeEach(function () {
    now = 0;
    broken = true;
    events.length = 0;
  });

  it('opens at once when it can, and hands the value over once for closing', function () {
    broken = false;
    const open = opener();
    assert.deepEqual(open.open(), { handle: 1 });
    assert.deepEqual(events, ['opened']);
    assert.equal(open.refuse(), null, 'nothing failed');
    assert.deepEqual(open.take(), { handle: 1 });
    assert.equal(open.take(), null);
  });

  it('after a failure counts refused requests and tries again only once retryMs has passed', function () {
    const open = opener();
    assert.equal(open.open(), null);
    assert.deepEqual(open.refuse()?.refused, 1);
    broken = false;
    now = 999;
    assert.equal(open.get(), null, 'too early to try again');
    const second = open.refuse();
    assert.ok(second !== null);
    assert.equal(second.refused, 2);
    assert.equal((second.error as Error).message, 'no such folder');
    now = 1000;
    assert.deepEqual(open.get(), { handle: 1 });
    assert.deepEqual(events, ['failed: no such folder', 'recovered']);
    assert.equal(open.refuse(), null);
  });

  it('keeps counting across failed retries, timing each retry from the last attempt', function () {
    const open = opener();
    open.open();
    open.refuse();
    now = 1000;
    assert.equal(open.get(), null);
    assert.equal(open.refuse()?.refused, 2, 'the count carries on: reported once in all');
    now = 1500;
    broken = false;
    assert.equal(open.get(), null, 'the last attempt was at 1000');
    now = 2000;
    assert.deepEqual(open.get(), { handle: 1 });
  });
});
