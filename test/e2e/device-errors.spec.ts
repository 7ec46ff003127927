import assert from 'node:assert/strict';

import { freePort, startNodeRed, type NodeRedProcess } from '../support/node-red-process';
import { waitFor } from '../support/waiting';

/** Lines of `log` that `pattern` matches. */
const linesOf = (log: string, pattern: RegExp): string[] =>
  log.split('\n').filter((line) => pattern.test(line));

describe('device errors in a real Node-RED runtime (e2e)', function () {
  this.timeout(60_000);
  let red: NodeRedProcess | null = null;
  afterEach(async function () {
    await red?.stop();
    red = null;
  });

  it('reports a plug that nobody answers for to the Catch node once per deploy, redeploys included', async function () {
    // A loopback port nothing listens on: every attempt is refused at once.
    const deadPort = await freePort();
    const flows = [
      { id: 'tab', type: 'tab', label: 'errors' },
      { id: 'pool', type: 'kasa-device-pool', name: 'plugs', timeout: 1, retries: 0 },
      {
        id: 'poll',
        type: 'kasa-poll',
        z: 'tab',
        name: 'nobody home',
        pool: 'pool',
        devices: `127.0.0.77:${deadPort}`,
        interval: 1,
        output: 'reading',
        x: 100,
        y: 100,
        wires: [[]],
      },
      { id: 'catch', type: 'catch', z: 'tab', scope: null, x: 100, y: 200, wires: [['caught']] },
      {
        id: 'caught',
        type: 'debug',
        z: 'tab',
        name: 'caught',
        active: true,
        tosidebar: false,
        console: true,
        complete: 'error.message',
        targetType: 'msg',
        x: 300,
        y: 200,
        wires: [],
      },
    ];
    red = await startNodeRed({ flows });
    const running = red;
    const caught = () => linesOf(running.log(), /\[debug:caught\]/).length;
    await waitFor(() => caught() >= 1, 10_000, 'the first caught error');

    // The pool keeps the device's health across the redeploy, so the new node's first poll is
    // refused at once while the pool backs off: that must still reach the Catch node.
    await running.deploy(flows);
    await waitFor(() => caught() >= 2, 10_000, 'the caught error after the redeploy');
    // Long enough for the pool's back-off (5 s after the first failure) to end and the device to
    // be tried again: the same outage must not be reported a second time.
    await new Promise((resolve) => setTimeout(resolve, 7_000));

    const log = running.log();
    assert.deepEqual(
      linesOf(log, /\[error\] \[kasa-poll/),
      [],
      'no device error went past the Catch node into the log',
    );
    const reports = linesOf(log, /\[debug:caught\]/);
    assert.equal(reports.length, 2, `one report per deploy:\n${reports.join('\n')}`);
    // The debug node prints the message on the line after its tag.
    assert.match(log, /Device 127\.0\.0\.77:\d+: unreachable \(ECONNREFUSED\)/);
    assert.doesNotMatch(log, /waiting before the next attempt/, 'the cause is named, not the wait');
  });
});
