import assert from 'node:assert/strict';

import { numberSetting } from '../../nodes/shared/settings';
import type { Node, NodeAPI } from '../../nodes/shared/types';

describe('numeric node settings (numberSetting)', function () {
  const errors: { key: string; params: Record<string, string> }[] = [];
  const RED = {
    _: (key: string, params: Record<string, string>) => {
      errors.push({ key, params });
      return key;
    },
  } as unknown as NodeAPI;
  const said: string[] = [];
  const node = {
    error: (text: string) => said.push(text),
    on: () => undefined,
  } as unknown as Node;
  /** Setup problems are reported at the end of the turn (after the flow has started). */
  const reported = () => new Promise((resolve) => setImmediate(resolve));
  const rule = { fallback: 8, min: 1, max: 1000, integer: true };
  beforeEach(function () {
    errors.length = 0;
    said.length = 0;
  });

  it('takes numbers and numeric strings (what ${ENV_VAR} becomes) and keeps blanks at the default', async function () {
    assert.equal(numberSetting(RED, node, 'maxInFlight', 4, rule), 4);
    assert.equal(numberSetting(RED, node, 'maxInFlight', ' 16 ', rule), 16);
    assert.equal(numberSetting(RED, node, 'maxInFlight', '', rule), 8);
    assert.equal(numberSetting(RED, node, 'maxInFlight', undefined, rule), 8);
    assert.equal(numberSetting(RED, node, 'ttl', '0.5', { fallback: 60, min: 0.001 }), 0.5);
    await reported();
    assert.deepEqual(said, []);
  });

  it('reports an unset variable, a non-number and a value out of range once each, and uses the default', async function () {
    assert.equal(numberSetting(RED, node, 'maxInFlight', '${POOL_THREADS}', rule), 8);
    assert.equal(numberSetting(RED, node, 'maxInFlight', 'many', rule), 8);
    assert.equal(numberSetting(RED, node, 'maxInFlight', '2.5', rule), 8);
    assert.equal(numberSetting(RED, node, 'maxInFlight', 5000, rule), 8);
    await reported();
    assert.equal(said.length, 4);
    assert.match(errors[0]!.key, /kasa-device-pool\.settings\.env-not-set$/);
    assert.equal(errors[0]!.params.variable, 'POOL_THREADS');
    assert.match(errors[1]!.key, /settings\.not-a-whole-number$/);
    assert.equal(errors[1]!.params.value, 'many');
    assert.deepEqual(
      [errors[3]!.params.name, errors[3]!.params.min, errors[3]!.params.max],
      ['maxInFlight', '1', '1000'],
    );
  });
});
