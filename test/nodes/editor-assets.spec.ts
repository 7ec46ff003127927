import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const NODES = join(ROOT, 'nodes');

/** The node sets package.json declares: every one is audited, so new ones are covered too. */
const nodeSets = Object.keys(
  (
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      'node-red': { nodes: Record<string, string> };
    }
  )['node-red'].nodes,
);

const PACKAGE_NAME = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string }
).name;

type Catalog = Record<string, unknown>;

function lookup(catalog: Catalog, key: string): unknown {
  return key.split('.').reduce<unknown>((at, part) => (at as Catalog | undefined)?.[part], catalog);
}

/** The type, category, inputs and outputs a registerType call states literally. */
function registration(html: string) {
  const type = /RED\.nodes\.registerType\(\s*'([^']+)'/.exec(html)?.[1];
  const category = /category:\s*'([^']+)'/.exec(html)?.[1];
  const inputs = Number(/\binputs:\s*(\d)/.exec(html)?.[1] ?? 0);
  const outputs = Number(/\boutputs:\s*(\d)/.exec(html)?.[1] ?? 0);
  const icon = /\bicon:\s*'([^']+)'/.exec(html)?.[1];
  const paletteLabel = /\bpaletteLabel:/.test(html);
  return { type, category, inputs, outputs, icon, paletteLabel };
}

describe('editor definitions, catalogs and help of every node', function () {
  for (const name of nodeSets) {
    describe(name, function () {
      const editor = readFileSync(join(NODES, `${name}.html`), 'utf8');
      const catalogFile = join(NODES, 'locales', 'en-US', `${name}.json`);
      const helpFile = join(NODES, 'locales', 'en-US', `${name}.html`);
      const reg = registration(editor);

      it('registers its type literally, with a palette label and an SVG icon unless a config node', function () {
        assert.equal(reg.type, name);
        assert.ok(reg.category, 'category');
        if (reg.category === 'config') return;
        assert.ok(reg.paletteLabel, 'paletteLabel');
        assert.match(reg.icon ?? '', /\.svg$/);
        assert.ok(existsSync(join(ROOT, 'icons', reg.icon!)), `icons/${reg.icon}`);
      });

      it('takes every text of its dialog and validators from its message catalog', function () {
        const catalog = JSON.parse(readFileSync(catalogFile, 'utf8')) as Catalog;
        const keys = new Set<string>();
        for (const match of editor.matchAll(/data-i18n="(?:\[[a-z]+\])?([^"]+)"/g))
          keys.add(match[1]!);
        // Literal keys handed to _() / say() / RED._() (the last with the node set's namespace).
        for (const match of editor.matchAll(
          /'(?:[^':]+:)?(kasa-[a-z-]+\.[A-Za-z0-9.-]*[A-Za-z0-9])'/g,
        )) {
          if (match[1]!.startsWith(`${name}.`) && !match[1]!.endsWith('.svg')) keys.add(match[1]!);
        }
        // Prefixes completed at run time ('kasa-x.validation.' + key): the prefix must exist.
        for (const match of editor.matchAll(/'(kasa-[a-z-]+\.[A-Za-z0-9.-]+)\.'\s*\+/g)) {
          assert.equal(typeof lookup(catalog, match[1]!), 'object', match[1]);
        }
        // The shared helpers (resources/kasa-editor.js) complete keys of the type they serve:
        // rule('x') and numberIn('x') explain with <type>.validation.x, labels use paletteLabel.
        const helperType = /KasaMonitorEditor\.forType\('([^']+)'\)/.exec(editor)?.[1];
        if (helperType !== undefined) {
          assert.equal(helperType, name, 'the helpers serve this node set');
          for (const match of editor.matchAll(/editor\.(?:rule|numberIn)\(\s*'([A-Za-z-]+)'/g)) {
            keys.add(`${name}.validation.${match[1]!}`);
          }
          if (/editor\.(?:paletteLabel|label)\b/.test(editor)) keys.add(`${name}.paletteLabel`);
        }
        assert.ok(keys.size > 0);
        for (const key of keys) {
          assert.equal(typeof lookup(catalog, key), 'string', `${name}.json lacks ${key}`);
        }
        // Every validator explains itself: none returns a bare false when asked for a message.
        assert.doesNotMatch(editor, /validate:\s*function\s*\(value\)/);
        assert.doesNotMatch(editor, /RED\.validators\.number\(\)/);
      });

      it('loads the shared editor helpers before the script that uses them', function () {
        const uses = editor.indexOf('KasaMonitorEditor');
        if (uses === -1) return;
        const loads = editor.indexOf(`src="resources/${PACKAGE_NAME}/kasa-editor.js"`);
        assert.ok(loads !== -1 && loads < uses, 'a <script src> of the helpers comes first');
      });

      it('has help with a summary line, Inputs and Outputs where it has them, and Details', function () {
        const help = readFileSync(helpFile, 'utf8');
        assert.match(help, new RegExp(`data-help-name="${name}"`));
        assert.match(help, /^<script[^>]*>\s*<p>/, 'the first element is the summary paragraph');
        assert.match(help, /<h3>Details<\/h3>/);
        if (reg.inputs > 0) {
          assert.match(help, /<h3>Inputs<\/h3>[\s\S]*?<dl class="message-properties">/);
        }
        if (reg.outputs > 0) {
          assert.match(help, /<h3>Outputs<\/h3>[\s\S]*?<dl class="message-properties">/);
        }
      });
    });
  }
});
