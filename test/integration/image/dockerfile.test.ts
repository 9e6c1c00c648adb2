// The Dockerfile without a container engine: its runtime stage's RUN steps run, as written, on
// the package `npm pack` makes (what the build stage copies over), in a temp dir standing for
// WORKDIR; then `podlease version` and `podlease serve` start from the result with the stage's
// ENV, as its USER (a non-root uid that owns none of the files, as on a read-only root file
// system). Also checks what the Dockerfile promises: Node 24, two stages, production
// dependencies only, a numeric non-root USER.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { freePort } from '../../../scripts/lib/free-port.mjs';

const execFileAsync = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;
const requireAll = process.env.PODLEASE_REQUIRE_ALL === '1';

interface Instruction {
  readonly op: string;
  readonly args: string;
}
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly steps: Instruction[];
}

/** Instructions of a Dockerfile (comments dropped, `\` continuations joined), split by stage. */
const parseDockerfile = (text: string): { args: Map<string, string>; stages: Stage[] } => {
  const lines = text.split('\n').filter(l => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of joined
    .split('\n')
    .map(l => l.trim())
    .filter(Boolean)) {
    const [op = '', ...rest] = line.split(/\s+/);
    const body = rest.join(' ');
    if (op.toUpperCase() === 'FROM') {
      const [from = '', as, name] = body.split(/\s+/);
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, steps: [] });
    } else if (stages.length === 0 && op.toUpperCase() === 'ARG') {
      const [k = '', v = ''] = body.split('=');
      args.set(k, v);
    } else {
      stages.at(-1)?.steps.push({ op: op.toUpperCase(), args: body });
    }
  }
  return { args, stages };
};

/** `RUN --mount=… cmd`: the shell command without BuildKit's flags. */
const runCommand = (args: string): string => args.replace(/^(--\S+\s+)+/, '');

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.stages.at(-1)!;
const build = dockerfile.stages[0]!;
const workdir = runtime.steps.filter(s => s.op === 'WORKDIR').at(-1)?.args ?? '/';
const user = runtime.steps.filter(s => s.op === 'USER').at(-1)?.args ?? '';
const [uid, gid] = user.split(':').map(Number);

const missing = process.getuid?.() !== 0 ? 'root (to run the image steps as another user)' : '';
// Under PODLEASE_REQUIRE_ALL=1 a missing prerequisite fails the suite instead of skipping it.
const skip = requireAll ? '' : missing;
if (skip) console.warn(`\n!! SKIPPING Dockerfile test: needs ${skip}\n`);

describe('Dockerfile', () => {
  it('builds on Node 24 in two stages and runs as a numeric non-root user', () => {
    expect(dockerfile.args.get('NODE_IMAGE')).toMatch(/^node:24(\.|-|$)/);
    expect(dockerfile.stages.map(s => s.from)).toEqual(['${NODE_IMAGE}', '${NODE_IMAGE}']);
    expect(build.steps.some(s => s.op === 'RUN' && s.args.includes('npm pack'))).toBe(true);
    expect(runtime.steps.filter(s => s.op === 'COPY').map(s => s.args)).toEqual([
      '--from=build /pack/podlease.tgz /pack/package-lock.json ./',
    ]);
    expect(runtime.steps.some(s => s.args.includes('--omit=dev'))).toBe(true);
    expect(uid).toBeGreaterThan(0);
    expect(Number.isInteger(uid) && Number.isInteger(gid)).toBe(true);
    expect(readFileSync(join(ROOT, '.dockerignore'), 'utf8')).toMatch(/^node_modules$/m);
  });

  describe.skipIf(skip !== '')("the runtime stage's steps on the packed package", () => {
    let dir: string;
    let env: NodeJS.ProcessEnv;

    beforeAll(async () => {
      if (missing !== '') throw new Error(`PODLEASE_REQUIRE_ALL=1 but needs ${missing}`);
      dir = mkdtempSync(join(tmpdir(), 'podlease-image-'));
      chmodSync(dir, 0o755);
      // what the build stage leaves in /pack: the packed package and the lockfile
      const { stdout } = await execFileAsync('npm', ['pack', '--pack-destination', dir, '--json'], {
        cwd: ROOT,
        maxBuffer: 16 * 1024 * 1024,
      });
      const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
      await execFileAsync('mv', [join(dir, filename), join(dir, 'podlease.tgz')]);
      await execFileAsync('cp', [join(ROOT, 'package-lock.json'), dir]);
      // the stage's ENV, with WORKDIR standing for this dir; node is the image's, on PATH
      env = {
        PATH: `${dirname(process.execPath)}${delimiter}/usr/bin:/bin`,
        HOME: dir,
      };
      for (const step of runtime.steps) {
        if (step.op === 'ENV') {
          const [k = '', ...v] = step.args.split('=');
          env[k] = v
            .join('=')
            .replaceAll(workdir, dir)
            .replace('$PATH', env.PATH ?? '');
        } else if (step.op === 'RUN') {
          // as root, like a build; the npm cache mount is the user's own npm cache here
          await execFileAsync('sh', ['-ec', runCommand(step.args)], {
            cwd: dir,
            env: { ...process.env, ...env, HOME: process.env.HOME },
            maxBuffer: 16 * 1024 * 1024,
            timeout: 240_000,
          });
        }
      }
    }, 300_000);

    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const asUser = { uid, gid };

    it('installs production dependencies only, and the CNI plugin', () => {
      const deps = Object.keys(
        (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: object })
          .dependencies,
      );
      for (const dep of deps) expect(existsSync(join(dir, 'node_modules', dep)), dep).toBe(true);
      for (const dev of ['typescript', 'vitest', 'esbuild', '@aws-cdk/lambda-layer-kubectl-v33']) {
        expect(existsSync(join(dir, 'node_modules', dev)), dev).toBe(false);
      }
      expect(existsSync(join(dir, 'dist/cni/podlease'))).toBe(true);
      expect(existsSync(join(dir, 'src'))).toBe(false);
    });

    it('answers `podlease version` as the non-root user', async () => {
      const { stdout } = await execFileAsync('podlease', ['version'], { cwd: dir, env, ...asUser });
      const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
        version: string;
      };
      expect(stdout.trim()).toBe(`podlease ${version}`);
      const help = await execFileAsync('podlease-cni-install', ['--help'], {
        cwd: dir,
        env,
        ...asUser,
      });
      expect(help.stdout).toContain('Usage: podlease-cni-install');
    });

    it('runs `podlease serve` as the non-root user until SIGTERM, writing nothing', async () => {
      // the serving certificate comes from outside the image (the chart mounts a Secret)
      const certs = mkdtempSync(join(tmpdir(), 'podlease-image-tls-'));
      chmodSync(certs, 0o755);
      await execFileAsync('bash', [join(dir, 'certs/gen-dev-certs.sh'), certs]);
      chmodSync(join(certs, 'tls.key'), 0o644);
      const [port, metricsPort] = [await freePort(), await freePort()];
      const child = spawn(
        'podlease',
        [
          'serve',
          '--store',
          'memory',
          '--listen',
          `127.0.0.1:${port}`,
          '--metrics-listen',
          `127.0.0.1:${metricsPort}`,
          '--tls-cert',
          join(certs, 'tls.crt'),
          '--tls-key',
          join(certs, 'tls.key'),
          '--shutdown-delay',
          '0',
        ],
        { cwd: dir, env, ...asUser, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>(resolve => {
        child.on('exit', code => {
          resolve(code);
        });
      });
      try {
        let ready = false;
        for (let i = 0; i < 200 && !ready && child.exitCode === null; i++) {
          ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
            r => r.ok,
            () => false,
          );
          if (!ready) await new Promise(r => setTimeout(r, 100));
        }
        expect(ready, output).toBe(true);
        const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        expect(metrics).toContain('# TYPE');
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited, output).toBe(0);
      rmSync(certs, { recursive: true, force: true });
      // it could not have: the files are root's; nothing in the tree belongs to its user
      const owned = await execFileAsync('find', [dir, '-uid', String(uid)]);
      expect(owned.stdout).toBe('');
    });
  });
});
