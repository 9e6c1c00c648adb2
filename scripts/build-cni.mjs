#!/usr/bin/env node
// Build the `podlease` CNI IPAM plugin as ONE self-contained executable, dist/cni/podlease:
//   1. esbuild bundles src/cni/main.ts (and everything it imports, `yaml` included) into one
//      CommonJS file; anything that is not TypeScript/JavaScript goes in through the text loader;
//   2. Node's single-executable-application support turns it into a blob (with a V8 code cache,
//      so the bundle is not compiled again at every start);
//   3. postject injects the blob into a copy of the Node 24 binary.
// Node 24.21 has no `--build-sea` (that came in 25.x), so this is the --experimental-sea-config +
// postject route of the Node 24 docs. A SEA runs its blob as CommonJS whatever package.json says,
// which sidesteps the "type": "module" pitfall for an extension-less file.
//
// Usage: node scripts/build-cni.mjs [--no-code-cache] [--out <path>] [--keep-intermediates] [--no-minify]
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const flag = name => argv.includes(name);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};

const out = option('--out', join(root, 'dist/cni/podlease'));
// Intermediate files sit beside the output so the final rename never crosses file systems.
const work = `${out}.build`;
const bundle = join(work, 'podlease.cjs');
const blob = join(work, 'podlease.blob');
const seaConfig = join(work, 'sea-config.json');
const useCodeCache = !flag('--no-code-cache');

/** The Node 24 binary to copy: this process when it is Node 24 (npm scripts), else the pinned one. */
const nodeBinary = () => {
  if (process.versions.node.startsWith('24.')) return process.execPath;
  const pinned = join(root, 'node_modules/node/bin/node');
  if (existsSync(pinned)) return pinned;
  throw new Error(
    `build-cni: Node 24 is required (running ${process.version}); run via npm run build`,
  );
};

const runQuietly = (cmd, args, options) => {
  try {
    execFileSync(cmd, args, options);
  } catch (e) {
    process.stderr.write(`${e.stdout ?? ''}${e.stderr ?? ''}`);
    throw e;
  }
};

const step = (what, fn) => {
  const t0 = performance.now();
  fn();
  process.stderr.write(`build-cni: ${what} (${Math.round(performance.now() - t0)} ms)\n`);
};

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
mkdirSync(dirname(out), { recursive: true });

const node = nodeBinary();

step('bundle src/cni/main.ts with esbuild', () => {
  const esbuild = require('esbuild');
  esbuild.buildSync({
    entryPoints: [join(root, 'src/cni/main.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minify: !flag('--no-minify'),
    legalComments: 'none',
    // Non-TS assets (none today; Lua, YAML or text later) are inlined as strings.
    loader: { '.lua': 'text', '.txt': 'text', '.yaml': 'text', '.yml': 'text', '.pem': 'text' },
    // Only node built-ins stay outside; a SEA cannot `require` anything from disk.
    external: [],
    logLevel: 'warning',
  });
});

step(`SEA blob (useCodeCache: ${useCodeCache})`, () => {
  writeFileSync(
    seaConfig,
    JSON.stringify(
      {
        main: bundle,
        output: blob,
        disableExperimentalSEAWarning: true,
        useSnapshot: false,
        useCodeCache,
        // Loading node:tls would otherwise parse Node's ~150 bundled root certificates on a
        // second thread at every API-path ADD; the plugin names its CAs itself
        // (src/cni/apiserver.ts, trustCas). Nothing else in the plugin uses TLS.
        execArgv: ['--use-openssl-ca'],
      },
      null,
      2,
    ),
  );
  execFileSync(node, ['--experimental-sea-config', seaConfig], { cwd: work, stdio: 'inherit' });
});

// Inject into a temporary copy and rename it into place only once it answers VERSION, so a
// concurrent reader never sees a half-built file (a plain Node binary would run stdin as a script).
const staged = join(work, 'podlease');

step(`inject into a copy of ${node}`, () => {
  copyFileSync(node, staged);
  chmodSync(staged, 0o755);
  const postject = join(dirname(require.resolve('postject/package.json')), 'dist/cli.js');
  runQuietly(
    node,
    [
      postject,
      staged,
      'NODE_SEA_BLOB',
      blob,
      '--sentinel-fuse',
      'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
    ],
    // postject warns about ELF note sections it does not know; show its output only on failure.
    { stdio: 'pipe' },
  );
  chmodSync(staged, 0o755);
});

step('smoke test: CNI_COMMAND=VERSION', () => {
  const answer = execFileSync(staged, [], {
    env: { CNI_COMMAND: 'VERSION' },
    input: '{"cniVersion":"1.1.0"}',
  }).toString();
  if (!answer.includes('"supportedVersions"'))
    throw new Error(`build-cni: bad VERSION answer: ${answer}`);
});

renameSync(staged, out);
if (!flag('--keep-intermediates')) rmSync(work, { recursive: true, force: true });
process.stderr.write(`build-cni: wrote ${out}\n`);
