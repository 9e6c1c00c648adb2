// Types of redis-ha.mjs for the TypeScript tests.
import type { ChildProcess } from 'node:child_process';

export declare function redisSentinelInstalled(): boolean;
export declare function redisCliInstalled(): boolean;

/** `redis-cli -p port …args` on loopback; its stdout, trimmed. */
export declare function cli(port: number, args: readonly string[]): Promise<string>;

/** Polls `check` every 50 ms until it returns true, for at most `ms` (15 s). */
export declare function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms?: number,
): Promise<void>;

export interface RedisProcess {
  readonly port: number;
  /** Its working directory, kept across restarts. */
  readonly dir: string;
  readonly child: ChildProcess;
  readonly args: readonly string[];
}

/** redis-server on `port` in `dir` with `args` after redis-server.mjs's defaults. */
export declare function spawnRedis(
  port: number,
  dir: string,
  args: readonly string[],
): Promise<RedisProcess>;
/** SIGKILL, and waits for the process to be gone. */
export declare function killNode(p: RedisProcess): Promise<void>;
/** The same node again, on its port and in its directory. */
export declare function restartNode(p: RedisProcess): Promise<RedisProcess>;
/** `field:value` of `INFO section`. */
export declare function info(port: number, section: string): Promise<Map<string, string>>;

export interface SentinelSet {
  readonly masterName: string;
  /** The primary first, then the replicas (as started). */
  readonly nodes: RedisProcess[];
  readonly sentinels: { port: number; child: ChildProcess }[];
  readonly sentinelNodes: { host: string; port: number }[];
  /** The port Sentinel names as primary now. */
  primaryPort(): Promise<number>;
  stop(): Promise<void>;
}

/** A primary, `replicas` (2) replicas and `sentinels` (3) redis-sentinel processes. */
export declare function startSentinelSet(options?: {
  replicas?: number;
  sentinels?: number;
  masterName?: string;
  args?: readonly string[];
}): Promise<SentinelSet>;

export interface RedisClusterSet {
  readonly nodes: RedisProcess[];
  readonly seeds: { host: string; port: number }[];
  /** The node serving key's slot now. */
  masterOf(key: string): Promise<RedisProcess>;
  stop(): Promise<void>;
}

/** `masters` (3) primaries with `replicasPerMaster` (1) replicas each, `--cluster create`d. */
export declare function startRedisCluster(options?: {
  masters?: number;
  replicasPerMaster?: number;
  args?: readonly string[];
}): Promise<RedisClusterSet>;
