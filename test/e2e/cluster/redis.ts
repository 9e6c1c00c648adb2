// A throw-away redis-server for the e2e run (the Debian package), on a free loopback port, with no
// persistence, managed like the control-plane processes: its own process group, killed on stop()
// and on exit, and swept by the next run when this one crashed.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { redisPing, redisServerArgs } from '../../../scripts/lib/redis-server.mjs';
import {
  claimDir,
  freePort,
  type ManagedProcess,
  startProcess,
  sweepStaleDirs,
  waitFor,
} from './process.js';

export { redisServerInstalled } from '../../../scripts/lib/redis-server.mjs';

const WORK_DIR_PREFIX = 'podlease-e2e-redis-';
const START_TIMEOUT_MS = 15_000;
const PING_TIMEOUT_MS = 1_000;

export interface Redis {
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  readonly logPath: string;
  stop(): Promise<void>;
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
      redisServerArgs(port, workDir),
      logPath,
      pidFile,
    );
    await waitFor(
      'redis-server PING',
      () => redisPing(port, PING_TIMEOUT_MS),
      proc,
      START_TIMEOUT_MS,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `redis://127.0.0.1:${port}`, logPath, stop };
}
