import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const FIXTURES = join(__dirname, '..', 'fixtures');

/** A trimmed real device reply set from test/fixtures/kasa-iot (module -> method -> reply). */
export function deviceFixture(
  name: string,
): Record<string, Record<string, Record<string, unknown>>> {
  return JSON.parse(readFileSync(join(FIXTURES, 'kasa-iot', `${name}.json`), 'utf8')) as Record<
    string,
    Record<string, Record<string, unknown>>
  >;
}

/** A field case from test/fixtures/cases (copied from the project's shared cases). */
export function fieldCase(id: string): { input: any; expected: any } {
  return JSON.parse(readFileSync(join(FIXTURES, 'cases', `${id}.json`), 'utf8')) as {
    input: any;
    expected: any;
  };
}
