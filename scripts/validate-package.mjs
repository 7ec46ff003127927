// `npm run validate`: the Node-RED flow library's scorecard (`node-red-dev validate`) run against
// the package as npm would publish it, with a gate on its JSON output.
//
// 1. `npm pack` (prepack builds dist/) into a temp dir and unpack the tarball.
// 2. Install its production dependencies there (`npm install --omit=dev --ignore-scripts`: D03
//    reads the installed node_modules; no native build is needed to read versions). This step
//    and P06/P07/D02/D03 need the npm registry.
// 3. Run node-red-dev with a preload that answers the flow library catalogue (P08, N01) from
//    scripts/catalogue-offline.json, so catalogue.nodered.org is never needed.
// 4. Fail on any failed check except D03 (better-sqlite3 13 needs Node 22; we stay on 12 for
//    Node 20, see the README), on a check missing from the scorecard (the tool stopped early), and
//    on `keywords` without `node-red` (node-red-dev records P05 as passed even when it fails).
//    node-red-dev's own exit code is 0 even when checks fail, so it is not used.
//
// The scorecard is copied to test-artifacts/scorecard.json.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const PRELOAD = join(ROOT, 'scripts', 'node-red-dev-offline.cjs');
/** The catalogue served for catalogue.nodered.org; KASA_VALIDATE_CATALOGUE overrides it. */
const CATALOGUE =
  process.env.KASA_VALIDATE_CATALOGUE ?? join(ROOT, 'scripts', 'catalogue-offline.json');
const ARTIFACT = join(ROOT, 'test-artifacts', 'scorecard.json');

/** Every check node-red-dev 0.1.6 records (P02 is disabled in the tool). */
const EXPECTED = [
  'P01',
  'P03',
  'P04',
  'P05',
  'P06',
  'P07',
  'P08',
  'N01',
  'N02',
  'D01',
  'D02',
  'D03',
];
/** Checks allowed to fail, and why. */
const ALLOWED = {
  D03: 'better-sqlite3 13 needs Node.js 22; this package supports Node.js 20 with better-sqlite3 12',
};
/** The only dependency D03 is expected to name. */
const EXPECTED_OUTDATED = ['better-sqlite3'];

function run(command, args, options = {}) {
  console.log(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${command} ${args[0]} failed with exit code ${result.status}`);
  }
}

function main() {
  const work = mkdtempSync(join(tmpdir(), 'kasa-validate-'));
  try {
    run('npm', ['pack', '--pack-destination', work], { cwd: ROOT });
    const tarball = readdirSync(work).find((file) => file.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack left no tarball in ${work}`);
    run('tar', ['-xzf', join(work, tarball), '-C', work]);
    const packageDir = join(work, 'package');
    const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
    run(
      'npm',
      ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock'],
      { cwd: packageDir },
    );

    const scorecardFile = join(work, 'scorecard.json');
    const cli = join(dirname(require.resolve('node-red-dev/package.json')), 'bin', 'run');
    const nodeOptions = [process.env.NODE_OPTIONS, `--require ${PRELOAD}`].filter(Boolean);
    run(process.execPath, [cli, 'validate', '-p', packageDir, '-o', scorecardFile], {
      cwd: work,
      env: { ...process.env, NODE_OPTIONS: nodeOptions.join(' '), KASA_CATALOGUE: CATALOGUE },
    });

    let scorecard;
    try {
      scorecard = JSON.parse(readFileSync(scorecardFile, 'utf8'));
    } catch (error) {
      throw new Error(`node-red-dev wrote no readable scorecard: ${error.message}`);
    }
    mkdirSync(dirname(ARTIFACT), { recursive: true });
    copyFileSync(scorecardFile, ARTIFACT);
    return gate(scorecard, pkg);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Prints the scorecard and returns the problems that fail the run. */
function gate(scorecard, pkg) {
  const problems = [];
  console.log(`\nscorecard of ${pkg.name}@${pkg.version}:`);
  for (const id of EXPECTED) {
    const check = scorecard[id];
    if (!check || typeof check.test !== 'boolean') {
      problems.push(`${id}: missing from the scorecard (node-red-dev stopped early?)`);
      console.log(`  ${id}  missing`);
      continue;
    }
    const { test, ...detail } = check;
    const note = Object.keys(detail).length > 0 ? `  ${JSON.stringify(detail)}` : '';
    if (test) {
      console.log(`  ${id}  pass${note}`);
    } else if (ALLOWED[id]) {
      console.log(`  ${id}  FAIL, allowed: ${ALLOWED[id]}${note}`);
      const unexpected = (check.packages ?? []).filter((name) => !EXPECTED_OUTDATED.includes(name));
      if (unexpected.length > 0) {
        console.log(`      note: also out of date now: ${unexpected.join(', ')} (worth an update)`);
      }
    } else {
      console.log(`  ${id}  FAIL${note}`);
      problems.push(`${id} failed${note}`);
    }
  }
  if (!Array.isArray(pkg.keywords) || !pkg.keywords.includes('node-red')) {
    problems.push(
      'P05: package.json keywords must contain "node-red" (node-red-dev misreports it)',
    );
  }
  return problems;
}

try {
  const problems = main();
  if (problems.length > 0) {
    console.error(`\nvalidate: FAILED\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`\nvalidate: ok (scorecard in ${ARTIFACT})`);
} catch (error) {
  console.error(`\nvalidate: ${error.message}`);
  process.exit(1);
}
