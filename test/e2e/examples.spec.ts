import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';

const EXAMPLES = join(__dirname, '..', '..', 'examples');
const MODULE = '@kasa-monitor/node-red-kasa-monitor';

describe('end to end: example flows', function () {
  this.timeout(60_000);
  let nodeRed: NodeRedProcess;
  const files = readdirSync(EXAMPLES).filter((file) => file.endsWith('.json'));

  before(async function () {
    nodeRed = await startNodeRed({ modules: ['@flowfuse/node-red-dashboard'] });
  });
  after(async function () {
    await nodeRed.stop();
  });

  it('lists every example under Import > Examples', async function () {
    const response = await fetch(`${nodeRed.url}/library/examples/flows/${MODULE}`);
    assert.equal(response.status, 200);
    const listed = ((await response.json()) as { fn: string }[]).map((entry) => entry.fn).sort();
    assert.deepEqual(listed, files.map((file) => file.replace(/\.json$/, '')).sort());
  });

  for (const file of files) {
    it(`deploys "${file}" with every node type known`, async function () {
      const flow = JSON.parse(readFileSync(join(EXAMPLES, file), 'utf8')) as { type: string }[];
      assert.ok(
        flow.some((node) => node.type === 'comment'),
        'each example explains itself in a comment node',
      );
      await nodeRed.deploy(flow);
      const deployed = (await nodeRed.getFlows()) as { type: string }[];
      assert.equal(deployed.length, flow.length);
      assert.doesNotMatch(nodeRed.log(), /Waiting for missing types|unknown type/i);
    });
  }
});
