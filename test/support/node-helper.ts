import testHelper from 'node-red-node-test-helper';

import { sharedPools } from '../../lib/pool/shared-pool';

/** The test helper with flows typed as plain objects: our nodes carry their own properties. */
export const helper = testHelper as unknown as Omit<typeof testHelper, 'load'> & {
  load(nodes: unknown[], flow: object[], credentials?: object): Promise<void>;
};

// Problems found while nodes start are reported after the flow has started (reportSetupError):
// load resolves after that turn, so node.error has been called, and what Catch nodes pass on
// reaches their wired helper nodes just after (listen with collect() right after load).
const loadFlows = testHelper.load.bind(testHelper);
(testHelper as unknown as typeof helper).load = async (nodes, flow, credentials) => {
  await (loadFlows as unknown as typeof helper.load)(nodes, flow, credentials);
  await new Promise((resolve) => setImmediate(resolve));
};

// Pools close as soon as their config node stops, so every test can check nothing is left open.
testHelper.init(require.resolve('node-red'), {
  kasaMonitor: { poolLingerMs: 0, dbRetryMs: 200 },
} as unknown as Parameters<typeof testHelper.init>[1]);

/** Built node modules, as Node-RED loads them (run `npm run build` first; `npm test` does). */
export const nodes = {
  devicePool: require('../../dist/nodes/kasa-device-pool.js') as unknown,
  poll: require('../../dist/nodes/kasa-poll.js') as unknown,
  catchNode: require('@node-red/nodes/core/common/25-catch.js') as unknown,
};

/** Resolves with the next `count` messages a helper node receives. */
export function collect(
  node: { on(event: 'input', listener: (msg: any) => void): void },
  count: number,
  timeoutMs = 5000,
): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const messages: any[] = [];
    const timer = setTimeout(
      () => reject(new Error(`got ${messages.length} of ${count} messages in ${timeoutMs} ms`)),
      timeoutMs,
    );
    node.on('input', (msg) => {
      messages.push(msg);
      if (messages.length === count) {
        clearTimeout(timer);
        resolve(messages);
      }
    });
  });
}

export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Unloads the flows and checks that no pool outlived them. */
export async function unloadAll(): Promise<void> {
  await helper.unload();
  if (sharedPools.size !== 0)
    throw new Error(`${sharedPools.size} device pools left open after unload`);
}
