/**
 * Spawns `podlease serve` from dist/bin/podlease.js on this Node (24 inside vitest), with dev
 * certificates in a temp dir and free loopback ports, and speaks HTTPS AdmissionReview to it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { fileURLToPath } from 'node:url';

import { PODLEASE_BIN } from '../../../scripts/lib/podlease-serve.mjs';

export { startServe, type ServeProcess } from '../../../scripts/lib/podlease-serve.mjs';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Builds dist/ when it is missing (npm test builds first through `pretest`). */
export const ensureBuilt = (): void => {
  if (!existsSync(PODLEASE_BIN)) {
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
