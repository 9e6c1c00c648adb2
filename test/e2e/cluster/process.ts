// Child processes of the e2e control plane: each one in its own process group, its output in a
// log file, killed as a group on stop() and, synchronously, when this process exits.
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export { freePort } from '../../../scripts/lib/free-port.mjs';

const STOP_GRACE_MS = 10_000;
const TAIL_LINES = 40;

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Set once the process has exited (code or signal). */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGTERM to the process group, SIGKILL after a grace period; resolves once it has exited. */
  stop(): Promise<void>;
}

const live = new Set<number>();
let exitHookInstalled = false;

/** Kill every process group still running; safe to call from an 'exit' handler (synchronous). */
export function killAllSync(): void {
  for (const pid of live) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllSync);
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  logPath: string,
  pidFile?: string,
  env?: NodeJS.ProcessEnv,
): ManagedProcess {
  installExitHook();
  const fd = openSync(logPath, 'a');
  const child = spawn(command, args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: env ?? process.env,
  });
  closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not start ${command}`);
  live.add(pid);
  if (pidFile) appendFileSync(pidFile, `${pid}\t${command}\n`);
  let status: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const done = new Promise<void>(resolve => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      live.delete(pid);
      resolve();
    });
  });
  child.once('error', () => {
    // reported through 'exit' or the readiness wait; keeps the error from being unhandled
  });
  return {
    name,
    pid,
    logPath,
    exited: () => status,
    async stop() {
      if (status) return;
      signalGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => {
        signalGroup(pid, 'SIGKILL');
      }, STOP_GRACE_MS);
      await done;
      clearTimeout(timer);
      // children the process left behind in its group
      signalGroup(pid, 'SIGKILL');
    },
  };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // group already gone
  }
}

/** The last lines of a log file, for error messages. */
export function tailFile(path: string, lines = TAIL_LINES): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Polls `check` until it returns true, failing early when `proc` has exited, and with the tail of
 * its log when `timeoutMs` passes.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  proc: ManagedProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    const status = proc.exited();
    if (status) {
      throw new Error(
        `${proc.name} exited (code ${String(status.code)}, signal ${String(status.signal)}) before ${what}; last lines of ${proc.logPath}:\n${tailFile(proc.logPath)}`,
      );
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise(resolve => setTimeout(resolve, 200));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what} (${lastError}); last lines of ${proc.logPath}:\n${tailFile(proc.logPath)}`,
  );
}

const OWNER_FILE = 'owner.pid';
const PIDS_FILE = 'pids';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Marks `dir` (a temp dir named `<prefix>…`) as owned by this process; returns the file to pass
 * as `pidFile` to startProcess so sweepStaleDirs can clean up after a crash.
 */
export function claimDir(dir: string): string {
  writeFileSync(path.join(dir, OWNER_FILE), `${process.pid}\n`);
  return path.join(dir, PIDS_FILE);
}

/**
 * Cleans up after runs that died without reaching their exit hooks (SIGKILL, OOM): for every temp
 * dir starting with `prefix` whose owner process is gone, kills the process groups it recorded
 * (only when /proc still shows the recorded command), calls `extra(dir)` and removes the dir.
 */
export function sweepStaleDirs(prefix: string, extra?: (dir: string) => void): string[] {
  const swept: string[] = [];
  for (const name of readdirSync(os.tmpdir())) {
    if (!name.startsWith(prefix)) continue;
    const dir = path.join(os.tmpdir(), name);
    let owner: number;
    try {
      owner = Number(readFileSync(path.join(dir, OWNER_FILE), 'utf8').trim());
    } catch {
      continue; // not claimed (yet): leave it alone
    }
    if (!Number.isInteger(owner) || owner <= 0 || alive(owner)) continue;
    killRecorded(path.join(dir, PIDS_FILE));
    try {
      extra?.(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    swept.push(dir);
  }
  return swept;
}

function killRecorded(pidFile: string): void {
  let lines: string[];
  try {
    lines = readFileSync(pidFile, 'utf8').trim().split('\n');
  } catch {
    return;
  }
  for (const line of lines) {
    const [pidText, command] = line.split('\t');
    const pid = Number(pidText);
    if (!Number.isInteger(pid) || pid <= 0 || !command) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone
    }
    if (cmdline.startsWith(command)) signalGroup(pid, 'SIGKILL');
  }
}
