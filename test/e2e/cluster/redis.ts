// A throw-away redis-server for the e2e run (the Debian package), on a free loopback port, with no
// persistence, managed like the control-plane processes: its own process group, killed on stop()
// and on exit, and swept by the next run when this one crashed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  claimDir,
  freePort,
  type ManagedProcess,
  startProcess,
  sweepStaleDirs,
  waitFor,
} from './process.js';

const WORK_DIR_PREFIX = 'podlease-e2e-redis-';
const START_TIMEOUT_MS = 15_000;

export interface Redis {
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  readonly logPath: string;
  stop(): Promise<void>;
}

export function redisServerInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Resolves true when a RESP PING on 127.0.0.1:port answers +PONG. */
export async function redisPing(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write('PING\r\n'));
    sock.setTimeout(1_000, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('data', d => {
      sock.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    sock.once('error', () => {
      resolve(false);
    });
  });
}

export async function startRedis(): Promise<Redis> {
  sweepStaleDirs(WORK_DIR_PREFIX);
  const workDir = mkdtempSync(path.join(os.tmpdir(), WORK_DIR_PREFIX));
  const pidFile = claimDir(workDir);
  const port = await freePort();
  const logPath = path.join(workDir, 'redis.log');
  let proc: ManagedProcess | undefined;
  const stop = async (): Promise<void> => {
    await proc?.stop();
    if (process.env.PODLEASE_E2E_KEEP !== '1') rmSync(workDir, { recursive: true, force: true });
  };
  try {
    proc = startProcess(
      'redis-server',
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        workDir,
      ],
      logPath,
      pidFile,
    );
    await waitFor('redis-server PING', () => redisPing(port), proc, START_TIMEOUT_MS);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `redis://127.0.0.1:${port}`, logPath, stop };
}
