/**
 * Entry point of the `podlease` CNI executable (bundled into dist/cni/podlease): read stdin, run
 * the plugin, exit with its code. The only place in src/cni that touches `process`.
 *
 * Start-up matters (one process per pod per verb), so stdin and stdout use plain synchronous fd
 * I/O: touching `process.stdin`/`process.stdout` loads `net`, `tty` and the stream machinery,
 * which costs more than the plugin's own work. The process exits as soon as the answer is written.
 */
import { readSync, writeSync } from 'node:fs';
import { runPlugin, type Writer } from './plugin.js';

const readRestFromStream = async (chunks: Buffer[]): Promise<string> => {
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

/**
 * Stdin with synchronous reads (a terminal waits for end-of-file, as Go plugins do). Should the
 * runtime hand over a non-blocking pipe (EAGAIN), the rest is read through the stream.
 */
const readStdin = async (): Promise<string> => {
  const chunks: Buffer[] = [];
  for (;;) {
    const buf = Buffer.allocUnsafe(64 * 1024);
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') return readRestFromStream(chunks);
      if (code === 'EOF' || code === 'EBADF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(buf.subarray(0, n));
  }
  return Buffer.concat(chunks).toString('utf8');
};

/** A writer on a file descriptor that survives a non-blocking pipe (EAGAIN) and a closed one. */
const fdWriter = (fd: number): Writer => ({
  write(chunk: string): void {
    let buf = Buffer.from(chunk, 'utf8');
    for (let tries = 0; buf.length > 0 && tries < 10_000; tries++) {
      try {
        buf = buf.subarray(writeSync(fd, buf));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      }
    }
  },
});

const stderr = fdWriter(2);

const main = async (): Promise<number> =>
  runPlugin({ env: process.env, stdin: await readStdin(), stdout: fdWriter(1), stderr });

main().then(
  code => process.exit(code),
  (e: unknown) => {
    stderr.write(`podlease-cni: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
