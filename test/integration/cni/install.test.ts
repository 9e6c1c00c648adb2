// The built installer (dist/bin/podlease-cni-install.js) as the DaemonSet runs it: SIGKILLed at
// random moments (and right after it wrote a temp copy, before the rename) while it replaces an older install with the real 100 MiB plugin, with another
// process's reads racing it, every file at a destination name is always whole (the old or the
// new one); restarted, it finishes. Left running, it copies each token rotation to the host.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ensureBinary, ROOT } from './support.js';

const INSTALLER = join(ROOT, 'dist/bin/podlease-cni-install.js');
const KILLS = 8;

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Size of whatever file is at `path` right now, read through one open descriptor. */
const sizeNow = (path: string): number | undefined => {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
};

/** Why the small file at `path` is not whole (the token, or parseable JSON); undefined when it is. */
const wholeOrAbsent = (path: string): string | undefined => {
  try {
    const text = readFileSync(path, 'utf8');
    if (path.endsWith('token')) return text === 'token-a\n' ? undefined : `token "${text}"`;
    JSON.parse(text);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : `${path}: ${String(e)}`;
  }
};

const waitExit = (child: ChildProcess): Promise<number | null> =>
  new Promise(resolve => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else
      child.once('exit', code => {
        resolve(code);
      });
  });

describe('podlease-cni-install (the built entry)', () => {
  let dir: string;
  let args: string[];
  let plugin: string;

  beforeAll(() => {
    plugin = ensureBinary();
    dir = mkdtempSync(join(tmpdir(), 'podlease-install-it-'));
    for (const d of ['bin', 'net.d', 'sa']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'sa/token'), 'token-a\n');
    writeFileSync(join(dir, 'sa/ca.crt'), 'CA\n');
    writeFileSync(
      join(dir, 'conflist.json'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'pods',
        plugins: [{ type: 'bridge', ipam: { type: 'podlease' } }],
      }),
    );
    args = [
      INSTALLER,
      '--bin-dir',
      join(dir, 'bin'),
      '--conf-dir',
      join(dir, 'net.d'),
      '--host-conf-dir',
      '/etc/cni/net.d',
      '--token-file',
      join(dir, 'sa/token'),
      '--ca-file',
      join(dir, 'sa/ca.crt'),
      '--server',
      'https://127.0.0.1:6443',
      '--conflist',
      join(dir, 'conflist.json'),
      '--log-level',
      'warn',
    ];
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('never shows a partial file, however it is killed, and finishes when restarted', async () => {
    const dest = join(dir, 'bin/podlease');
    const small = [
      'net.d/podlease/token',
      'net.d/podlease/kubeconfig',
      'net.d/10-podlease.conflist',
    ];
    const newSize = sizeNow(plugin)!;
    const newSha = sha(plugin);
    const oldPlugin = Buffer.from('#!/bin/sh\necho old plugin\n');
    const seenSizes = new Set<number | undefined>();
    const bad: string[] = [];
    let killedMidCopy = 0;
    for (let round = 0; round < KILLS; round++) {
      // an older install in place: the kill lands while it is being replaced
      writeFileSync(dest, oldPlugin, { mode: 0o755 });
      for (const f of small) rmSync(join(dir, f), { force: true });
      const child = spawn(process.execPath, [...args, '--once'], { stdio: 'ignore' });
      const reader = setInterval(() => {
        const size = sizeNow(dest);
        seenSizes.add(size);
        if (size !== oldPlugin.length && size !== newSize)
          bad.push(`plugin of ${String(size)} bytes`);
        for (const f of small) {
          const problem = wholeOrAbsent(join(dir, f));
          if (problem !== undefined) bad.push(problem);
        }
      }, 2);
      if (round % 2 === 0) {
        // between write and rename: as soon as the temp copy shows up
        await new Promise<void>(resolve => {
          const watch = setInterval(() => {
            const copying = readdirSync(join(dir, 'bin')).some(n => n.includes('podlease-tmp'));
            if (copying || child.exitCode !== null) {
              clearInterval(watch);
              resolve();
            }
          }, 1);
        });
      } else {
        await new Promise(r => setTimeout(r, 50 + Math.floor(Math.random() * 900)));
      }
      child.kill('SIGKILL');
      await waitExit(child);
      clearInterval(reader);
      if (readdirSync(join(dir, 'bin')).some(n => n.includes('podlease-tmp'))) killedMidCopy++;
      const after = sizeNow(dest);
      expect([oldPlugin.length, newSize]).toContain(after);
      if (after === newSize) expect(sha(dest)).toBe(newSha);
    }
    expect(bad).toEqual([]);
    expect(killedMidCopy).toBeGreaterThan(0);
    // the restarted pod finishes the job and clears the leftovers of the killed ones
    const done = spawn(process.execPath, [...args, '--once'], { stdio: 'inherit' });
    expect(await waitExit(done)).toBe(0);
    expect(sha(dest)).toBe(newSha);
    for (const d of ['bin', 'net.d', 'net.d/podlease']) {
      expect(readdirSync(join(dir, d)).filter(n => n.includes('podlease-tmp'))).toEqual([]);
    }
    console.log(
      `${killedMidCopy} of ${KILLS} kills left a half-copied plugin behind (under its temp name); ` +
        `plugin sizes a racing reader saw: ${[...seenSizes].join(', ')}`,
    );
  });

  it('copies a rotated token to the host while it runs, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [...args, '--interval', '100ms'], { stdio: 'inherit' });
    const installed = join(dir, 'net.d/podlease/token');
    const until = async (what: () => boolean): Promise<void> => {
      for (let i = 0; i < 300 && !what(); i++) await new Promise(r => setTimeout(r, 50));
      expect(what()).toBe(true);
    };
    await until(() => sizeNow(installed) !== undefined);
    // the kubelet swaps the projected file atomically
    writeFileSync(join(dir, 'sa/.token.new'), 'token-b\n');
    renameSync(join(dir, 'sa/.token.new'), join(dir, 'sa/token'));
    await until(() => readFileSync(installed, 'utf8') === 'token-b\n');
    child.kill('SIGTERM');
    expect(await waitExit(child)).toBe(0);
    expect(readFileSync(installed, 'utf8')).toBe('token-b\n'); // left in place
  });
});
