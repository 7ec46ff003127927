import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';

type Validator = (this: object, value: unknown, opt?: object) => boolean | string;
interface ForType {
  rule(messageKey: string, check: (this: object, text: string) => boolean): Validator;
  numberIn(messageKey: string, low: number, high: number, whole: boolean): Validator;
  paletteLabel(this: object): string;
  label(this: object): string;
  labelStyle(this: object): string;
}
interface Helpers {
  ENV: RegExp;
  IPV4: RegExp;
  forType(type: string): ForType;
}

/** The helpers as the editor gets them: the file run as a browser script against a `window`. */
function loadHelpers(): Helpers {
  const source = readFileSync(join(__dirname, '..', '..', 'resources', 'kasa-editor.js'), 'utf8');
  const window: { KasaMonitorEditor?: Helpers } = {};
  runInNewContext(source, { window });
  assert.ok(window.KasaMonitorEditor, 'the script defines window.KasaMonitorEditor');
  return window.KasaMonitorEditor;
}

/** A node as validators see it: `_` translates from the node set's catalog. */
const node = (fields: object = {}) => ({ _: (key: string) => `text of ${key}`, ...fields });

describe('editor helpers shared by every dialog (resources/kasa-editor.js)', function () {
  const helpers = loadHelpers();
  const editor = helpers.forType('kasa-test');

  it('accepts numbers in range and ${ENV_VAR}, and explains the rest from the type’s catalog', function () {
    const seconds = editor.numberIn('seconds', 1, 60, false);
    for (const good of [1, '1', ' 30 ', 60, '2.5', '${POLL_SECONDS}']) {
      assert.equal(seconds.call(node(), good, {}), true, String(good));
    }
    assert.equal(seconds.call(node(), undefined, {}), true, 'absent: the runtime’s default');
    for (const bad of ['', ' ', 0, '61', 'soon', '${not valid}', null, 'NaN']) {
      assert.equal(
        seconds.call(node(), bad, {}),
        'text of kasa-test.validation.seconds',
        String(bad),
      );
      assert.equal(seconds.call(node(), bad), false, 'a bare false when no message is asked');
    }
    const whole = editor.numberIn('count', 0, 10, true);
    assert.equal(whole.call(node(), '3', {}), true);
    assert.equal(whole.call(node(), '3.5', {}), 'text of kasa-test.validation.count');
  });

  it('runs a rule on the trimmed text with the node as this, and lets absent values through', function () {
    const path = editor.rule('path', function (this: object, text: string) {
      return !(this as { endpoint?: boolean }).endpoint || text.startsWith('/');
    });
    assert.equal(path.call(node({ endpoint: true }), '  /metrics ', {}), true);
    assert.equal(
      path.call(node({ endpoint: true }), 'metrics', {}),
      'text of kasa-test.validation.path',
    );
    assert.equal(path.call(node({ endpoint: false }), 'metrics', {}), true);
    assert.equal(path.call(node({ endpoint: true }), undefined, {}), true, 'absent: the default');
    assert.equal(
      path.call(node({ endpoint: true }), '', {}),
      'text of kasa-test.validation.path',
      'an emptied field is checked',
    );
  });

  it('labels a node by its name, else by the palette label of its catalog', function () {
    assert.equal(editor.paletteLabel.call(node()), 'text of kasa-test.paletteLabel');
    assert.equal(editor.label.call(node({ name: 'Kitchen' })), 'Kitchen');
    assert.equal(editor.label.call(node({ name: '' })), 'text of kasa-test.paletteLabel');
    assert.equal(editor.labelStyle.call(node({ name: 'Kitchen' })), 'node_label_italic');
    assert.equal(editor.labelStyle.call(node({ name: '' })), '');
  });

  it('knows a dotted IPv4 address from anything else', function () {
    for (const good of ['127.255.255.255', '0.0.0.0', '192.168.1.255']) {
      assert.ok(helpers.IPV4.test(good), good);
    }
    for (const bad of ['256.1.1.1', '1.2.3', '01.2.3.4', 'localhost', '::1']) {
      assert.ok(!helpers.IPV4.test(bad), bad);
    }
  });
});
