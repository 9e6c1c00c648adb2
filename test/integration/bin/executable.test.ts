import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { delimiter, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PODLEASE_BIN } from '../../../scripts/lib/podlease-serve.mjs';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** Runs the built file itself, as a user would: its `#!/usr/bin/env node` finds `node` on PATH. */
const run = (args: string[], path: string): string =>
  execFileSync(PODLEASE_BIN, args, { encoding: 'utf8', env: { ...process.env, PATH: path } });

describe('dist/bin/podlease.js after npm run build', () => {
  it('is executable and keeps its shebang', () => {
    expect(statSync(PODLEASE_BIN).mode & 0o111).toBe(0o111);
    expect(readFileSync(PODLEASE_BIN, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('answers version and help when run directly', () => {
    const path = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
    expect(run(['version'], path)).toBe(`podlease ${pkg.version}\n`);
    expect(run(['help', 'serve'], path)).toMatch(
      /--metrics-listen VALUE \(PODLEASE_METRICS_LISTEN\)/,
    );
  });
});
