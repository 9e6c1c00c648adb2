/**
 * Entry point of the `podlease` CNI executable (bundled into dist/cni/podlease): read stdin,
 * run the plugin, exit with its code. The only place in src/cni that touches `process`.
 */
import { runPlugin } from './plugin.js';

const readStdin = async (): Promise<string> => {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

const main = async (): Promise<void> => {
  process.exitCode = await runPlugin({
    env: process.env,
    stdin: await readStdin(),
    stdout: process.stdout,
    stderr: process.stderr,
  });
};

main().catch((e: unknown) => {
  process.stderr.write(
    `podlease-cni: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
  );
  process.exitCode = 1;
});
