#!/usr/bin/env node
// Build: TypeScript to dist/, Lua scripts beside the compiled store (BullMQ's copy:lua), then the
// self-contained CNI executable (scripts/build-cni.mjs). Runs on the pinned Node 24.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

rmSync(`${root}/dist`, { recursive: true, force: true });
run(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', 'tsconfig.json']);
cpSync(`${root}/src/pool/lua`, `${root}/dist/pool/lua`, { recursive: true });
if (existsSync(`${root}/scripts/build-cni.mjs`)) {
  run(process.execPath, [`${root}/scripts/build-cni.mjs`]);
}
