// @ts-check
// `podlease serve` from dist/bin/podlease.js on this Node, on free loopback ports, for the
// integration tests and bench:webhook (typed for TypeScript by podlease-serve.d.mts). The e2e
// harness runs it as a managed process and takes PODLEASE_BIN and serveArgs from here.
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { freePort } from './free-port.mjs';

/** The `podlease` executable `npm run build` makes (package.json `bin`). */
export const PODLEASE_BIN = fileURLToPath(new URL('../../dist/bin/podlease.js', import.meta.url));

const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 10_000;
const TAIL_CHARS = 8_000;

/**
 * `serve` with its listeners: HTTPS webhook on 127.0.0.1:port with the given certificate,
 * metrics and probes on 127.0.0.1:metricsPort.
 * @param {{ port: number, metricsPort: number, certPath: string, keyPath: string }} options
 * @returns {string[]}
 */
export const serveArgs = ({ port, metricsPort, certPath, keyPath }) => [
  'serve',
  '--listen',
  `127.0.0.1:${port}`,
  '--metrics-listen',
  `127.0.0.1:${metricsPort}`,
  '--tls-cert',
  certPath,
  '--tls-key',
  keyPath,
];

/**
 * Resolves true when GET /readyz on 127.0.0.1:metricsPort answers 2xx.
 * @param {number} metricsPort
 * @returns {Promise<boolean>}
 */
export const serveReady = async metricsPort => {
  try {
    return (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok;
  } catch {
    return false; // not listening yet
  }
};

/** @param {number} metricsPort */
const serveAlive = async metricsPort => {
  try {
    return (await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).ok;
  } catch {
    return false;
  }
};

/**
 * `podlease pools init` with the `--pools` of `args` (if any) and `env`: makes a Redis pool no pod
 * has used ready, as an operator would where no controller runs. A pool that is initialised
 * already is fine; a pool with state but no epoch, or a failing command, rejects.
 * @param {{ args?: readonly string[], env: Record<string, string> }} options
 * @returns {Promise<{ pool: string, result: string }[]>}
 */
export const initPools = async ({ args = [], env }) => {
  const at = args.indexOf('--pools');
  const pools = at >= 0 && args[at + 1] !== undefined ? ['--pools', args[at + 1] ?? ''] : [];
  const full = [PODLEASE_BIN, 'pools', 'init', ...pools, '-o', 'json'];
  /** @type {string} */
  const stdout = await new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      full,
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 },
      (err, out, errOut) => {
        // Exit 1 with JSON on stdout: some pool was initialised already (or refused; see below).
        if (err !== null && out.trim() === '') {
          reject(new Error(`podlease pools init failed: ${errOut || String(err)}`));
        } else resolve(out);
      },
    );
  });
  /** @type {{ pool: string, result: string }[]} */
  const rows = JSON.parse(stdout);
  const refused = rows.filter(r => r.result !== 'initialised' && r.result !== 'exists');
  if (refused.length > 0) throw new Error(`podlease pools init: ${JSON.stringify(refused)}`);
  return rows;
};

/**
 * @typedef {object} ServeProcess
 * @property {number} port
 * @property {number} metricsPort
 * @property {import('node:child_process').ChildProcess} child
 * @property {() => string} output the last lines of its output, for failure messages
 * @property {() => Promise<number | null>} stop SIGTERM, SIGKILL after 10 s; resolves to the exit code
 */

/**
 * Starts `podlease serve` with `<certDir>/tls.crt` and `tls.key`, then `args`, and an environment
 * of PATH and `env` only; resolves once /readyz answers. Rejects when it exits first, or kills it
 * and rejects when it is not ready within 20 s. `stdout: false` discards its stdout (the request
 * log) instead of keeping it for output().
 * With REDIS_URL in `env` it first runs `podlease pools init` (initPools) unless `init` is false.
 * `ready: false` resolves once /healthz answers instead (a server that is up but not ready).
 * @param {{ certDir: string, args: readonly string[], env: Record<string, string>, stdout?: boolean, init?: boolean, ready?: boolean }} options
 * @returns {Promise<ServeProcess>}
 */
export const startServe = async ({
  certDir,
  args,
  env,
  stdout = true,
  init = true,
  ready = true,
}) => {
  if (init && env.REDIS_URL !== undefined) await initPools({ args, env });
  const port = await freePort();
  const metricsPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      PODLEASE_BIN,
      ...serveArgs({
        port,
        metricsPort,
        certPath: `${certDir}/tls.crt`,
        keyPath: `${certDir}/tls.key`,
      }),
      ...args,
    ],
    {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', stdout ? 'pipe' : 'ignore', 'pipe'],
    },
  );
  let tail = '';
  /** @param {Buffer} d */
  const keep = d => {
    tail = (tail + d.toString()).slice(-TAIL_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr.on('data', keep);
  /** @type {Promise<number | null>} */
  const exited = new Promise(resolve => {
    child.once('exit', code => {
      resolve(code);
    });
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`podlease serve exited ${child.exitCode}:\n${tail}`);
    if (await (ready ? serveReady(metricsPort) : serveAlive(metricsPort))) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`podlease serve not ready within ${READY_TIMEOUT_MS / 1000} s:\n${tail}`);
    }
    await new Promise(r => setTimeout(r, 100));
  }
  return {
    port,
    metricsPort,
    child,
    output: () => tail,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
};
