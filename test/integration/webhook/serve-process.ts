/**
 * Spawns `podlease serve` from dist/bin/podlease.js on this Node (24 inside vitest), with dev
 * certificates in a temp dir and free loopback ports, and speaks HTTPS AdmissionReview to it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { fileURLToPath } from 'node:url';

import { freePort } from '../../../scripts/lib/free-port.mjs';

export { freePort };

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = `${ROOT}dist/bin/podlease.js`;

/** Builds dist/ when it is missing (npm test builds first through `pretest`). */
export const ensureBuilt = (): void => {
  if (!existsSync(BIN)) {
    execFileSync(
      process.execPath,
      [`${ROOT}node_modules/typescript/bin/tsc`, '-p', `${ROOT}tsconfig.json`],
      {
        stdio: 'inherit',
      },
    );
  }
};

export const generateCerts = (dir: string): void => {
  execFileSync('bash', [`${ROOT}certs/gen-dev-certs.sh`, dir], { stdio: 'ignore' });
};

export interface ServeProcess {
  readonly port: number;
  readonly metricsPort: number;
  readonly child: ChildProcess;
  /** The last lines of stdout and stderr, for failure messages. */
  output(): string;
  stop(): Promise<number | null>;
}

export const startServe = async (options: {
  certDir: string;
  args: readonly string[];
  env: Record<string, string>;
}): Promise<ServeProcess> => {
  const port = await freePort();
  const metricsPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--listen',
      `127.0.0.1:${port}`,
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
      '--tls-cert',
      `${options.certDir}/tls.crt`,
      '--tls-key',
      `${options.certDir}/tls.key`,
      ...options.args,
    ],
    { env: { PATH: process.env.PATH ?? '', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-8_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>(resolve => {
    child.once('exit', code => {
      resolve(code);
    });
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`podlease serve exited ${child.exitCode}:\n${tail}`);
    try {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`podlease serve not ready within 20 s:\n${tail}`);
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
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
};

export interface HttpsReply {
  readonly status: number;
  readonly body: unknown;
}

export const httpsAgent = (caFile: string, maxSockets = 64): Agent =>
  new Agent({ ca: readFileSync(caFile), keepAlive: true, maxSockets });

export const postJson = (
  agent: Agent,
  port: number,
  path: string,
  body: unknown,
): Promise<HttpsReply> =>
  new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = request(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': data.length },
      },
      res => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: text });
          }
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(data);
  });
