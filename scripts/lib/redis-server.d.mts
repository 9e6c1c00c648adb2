// Types of redis-server.mjs for the TypeScript tests.
import type { ChildProcess } from 'node:child_process';

export { freePort } from './free-port.mjs';

/** REDIS_URL when it is set and not empty: a Redis to use instead of starting one. */
export declare function externalRedisUrl(): string | undefined;

export declare function redisServerInstalled(): boolean;

/** The version `redis-server --version` reports (`v=…`), undefined when it cannot tell. */
export declare function redisServerVersion(): string | undefined;

/** The redis-server command line: loopback only, no RDB snapshots, no AOF, files in `dir`. */
export declare function redisServerArgs(port: number, dir: string): string[];

/** Resolves true when a RESP PING on 127.0.0.1:port answers +PONG within `timeoutMs` (500). */
export declare function redisPing(port: number, timeoutMs?: number): Promise<boolean>;

export interface RedisServer {
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** Its working directory (a fresh temp dir). */
  readonly dir: string;
  readonly child: ChildProcess;
  /** SIGTERM, and the working directory removed. */
  stop(): void;
}

/**
 * Starts redis-server in a fresh temp dir named `<prefix>…` (default `podlease-redis-`) and
 * resolves once it answers PING; kills it and rejects when it exits first or does not answer
 * within `timeoutMs` (default 10 s).
 */
export declare function startRedisServer(options?: {
  prefix?: string;
  timeoutMs?: number;
  /** Appended to the command line, e.g. ['--maxmemory-policy', 'allkeys-lru']. */
  args?: readonly string[];
}): Promise<RedisServer>;
