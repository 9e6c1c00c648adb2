#!/usr/bin/env node
// Build: TypeScript to dist/, Lua scripts beside the compiled store (BullMQ's copy:lua) and the
// pool map's script and stylesheet beside its app, then the
// self-contained CNI executable (scripts/build-cni.mjs). Runs on the pinned Node 24.
// dist/bin/podlease.js and dist/bin/podlease-cni-install.js (the package's `bin`s) keep their
// `#!/usr/bin/env node` line from the source and are made executable, so
// `./dist/bin/podlease.js version` works straight after a build.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

rmSync(`${root}/dist`, { recursive: true, force: true });
run(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', 'tsconfig.json']);
cpSync(`${root}/src/pool/lua`, `${root}/dist/pool/lua`, { recursive: true });
cpSync(`${root}/src/ui/assets`, `${root}/dist/ui/assets`, { recursive: true });
for (const name of ['podlease', 'podlease-cni-install']) {
  const bin = `${root}/dist/bin/${name}.js`;
  if (!readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')) {
    throw new Error(`${bin}: the compiled entry lost its #!/usr/bin/env node line`);
  }
  chmodSync(bin, 0o755);
}
if (existsSync(`${root}/scripts/build-cni.mjs`)) {
  run(process.execPath, [`${root}/scripts/build-cni.mjs`]);
}
