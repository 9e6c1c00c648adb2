#!/usr/bin/env node
// `npm test`: lint and type checks, then the unit, integration and e2e vitest projects one after
// the other (they compete for 2 cores and for root-only resources such as netns), the unit project
// with coverage of src/ (summary printed, floor in vitest.config.ts enforced), then one closing
// line `podlease: N passed, N failed, N skipped` over all of them. Exits non-zero if anything
// failed. `npm run build` has run before (pretest).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = name => join(root, 'node_modules', '.bin', name);
const out = mkdtempSync(join(tmpdir(), 'podlease-test-'));
const only = process.argv.slice(2);
const wanted = step => only.length === 0 || only.includes(step);

// The tools' bins start with `#!/usr/bin/env node`: put this Node (the pinned 24) first on PATH so
// they run on it even when this script was started outside npm, whose PATH already does that.
const env = {
  ...process.env,
  PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
};

let failedSteps = 0;
const totals = { passed: 0, failed: 0, skipped: 0 };

const run = (label, cmd, args) => {
  console.log(`\n=== ${label}: ${[cmd.replace(root, ''), ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    failedSteps++;
    console.log(`=== ${label} FAILED (exit ${r.status ?? r.signal})`);
  }
  return r.status === 0;
};

if (wanted('lint')) {
  run('eslint', bin('eslint'), ['.']);
  run('prettier', bin('prettier'), ['--check', '.']);
  run('tsc (src and tests)', bin('tsc'), ['-p', 'tsconfig.test.json', '--noEmit']);
  run('madge (no import cycles)', bin('madge'), ['--circular', '--extensions', 'ts', 'src']);
}

for (const project of ['unit', 'integration', 'e2e']) {
  if (!wanted(project)) continue;
  const json = join(out, `${project}.json`);
  run(`vitest ${project}`, bin('vitest'), [
    'run',
    '--project',
    project,
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${json}`,
    ...(project === 'unit' ? ['--coverage'] : []),
  ]);
  try {
    const r = JSON.parse(readFileSync(json, 'utf8'));
    totals.passed += r.numPassedTests;
    totals.failed += r.numFailedTests;
    totals.skipped += r.numPendingTests + r.numTodoTests;
    // A suite that failed to load counts as a failure even when it reported no test.
    const broken = r.testResults.filter(
      f => f.status === 'failed' && f.assertionResults.length === 0,
    );
    totals.failed += broken.length;
  } catch {
    totals.failed++;
    console.log(`=== vitest ${project}: no results were written (${json})`);
  }
}

rmSync(out, { recursive: true, force: true });
console.log(
  `\npodlease: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`,
);
process.exit(failedSteps > 0 || totals.failed > 0 ? 1 : 0);
