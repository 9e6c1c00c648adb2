// Types of podlease-serve.mjs for the TypeScript tests.
import type { ChildProcess } from 'node:child_process';

/** The `podlease` executable `npm run build` makes (package.json `bin`). */
export declare const PODLEASE_BIN: string;

/**
 * `serve` with its listeners: HTTPS webhook on 127.0.0.1:port with the given certificate,
 * metrics and probes on 127.0.0.1:metricsPort.
 */
export declare function serveArgs(options: {
  port: number;
  metricsPort: number;
  certPath: string;
  keyPath: string;
}): string[];

/** Resolves true when GET /readyz on 127.0.0.1:metricsPort answers 2xx. */
export declare function serveReady(metricsPort: number): Promise<boolean>;

export interface ServeProcess {
  readonly port: number;
  readonly metricsPort: number;
  readonly child: ChildProcess;
  /** The last lines of stdout and stderr, for failure messages. */
  output(): string;
  /** SIGTERM, SIGKILL after 10 s; resolves to the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `podlease serve` with `<certDir>/tls.crt` and `tls.key`, then `args`, and an environment
 * of PATH and `env` only; resolves once /readyz answers. Rejects when it exits first, or kills it
 * and rejects when it is not ready within 20 s. `stdout: false` discards its stdout (the request
 * log) instead of keeping it for output().
 */
export declare function startServe(options: {
  certDir: string;
  args: readonly string[];
  env: Record<string, string>;
  stdout?: boolean;
  /** With REDIS_URL in env, run `podlease pools init` first (default true). */
  init?: boolean;
  /** false: resolve once /healthz answers, ready or not (default true: /readyz). */
  ready?: boolean;
}): Promise<ServeProcess>;

/**
 * `podlease pools init` with the `--pools` of `args` and `env`; a pool initialised already is
 * fine, anything else refused rejects.
 */
export declare function initPools(options: {
  args?: readonly string[];
  env: Record<string, string>;
}): Promise<{ pool: string; result: string }[]>;
