#!/usr/bin/env node
/**
 * The `podlease` executable: parses the config once, answers `help` and `version` itself, and
 * hands every other command to start.ts, the start-up wiring (stores, namespace cache, servers).
 * start.ts is imported only then: `help` and `version` load no store, server or client library.
 */
import { readFileSync } from 'node:fs';
import { loadConfig, type Config } from '../config/config.js';
import { ConfigError } from '../config/errors.js';
import { EXIT, type CommandIo } from '../cli/commands.js';
import { barStyleFor } from '../cli/output.js';
import { usage } from '../cli/usage.js';
import { isPoolError } from '../pool/errors.js';

const NODE_MAJOR = 24;

const io: CommandIo = {
  stdout: { write: t => process.stdout.write(t) },
  stderr: { write: t => process.stderr.write(t) },
};

const version = (): string =>
  (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;

/** The store and server libraries need Node 24: say so rather than fail deep inside one. */
const wrongNode = (command: string): string | undefined => {
  const major = Number(process.versions.node.split('.')[0]);
  if (major === NODE_MAJOR) return undefined;
  return (
    `podlease ${command}: needs Node ${NODE_MAJOR}, this is Node ${process.versions.node}. ` +
    'Run it through npm (npx podlease …, npm start), or put Node 24 first on PATH ' +
    '(the repository pins it: node_modules/node/bin).\n'
  );
};

export const main = async (argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> => {
  let config: Config;
  try {
    config = loadConfig(argv, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`${err.message}\nRun \`podlease help\` for usage.\n`);
    return EXIT.USAGE;
  }
  const cmd = config.command;
  if (cmd.name === 'help') {
    io.stdout.write(usage(cmd.topic));
    return argv.length === 0 ? EXIT.USAGE : EXIT.OK;
  }
  if (cmd.name === 'version') {
    io.stdout.write(`podlease ${version()}\n`);
    return EXIT.OK;
  }
  const refusal = wrongNode(cmd.name);
  if (refusal !== undefined) {
    io.stderr.write(refusal);
    return EXIT.FAILED;
  }
  try {
    const { runCommand } = await import('./start.js');
    return await runCommand(config, { ...io, style: barStyleFor(process.stdout.isTTY, env) });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`podlease ${cmd.name}: ${isPoolError(err) ? message : `failed: ${message}`}\n`);
    return EXIT.FAILED;
  }
};

main(process.argv.slice(2), process.env).then(
  code => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `podlease: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = EXIT.FAILED;
  },
);
