/**
 * The Redis flags (docs/redis.md): where Redis is (`REDIS_URL`, or `--redis-sentinels` with
 * `--redis-sentinel-master`, or `--redis-cluster`), how to authenticate (`--redis-username`,
 * `--redis-password-file`) and to check its certificate (`rediss://`, `--redis-tls`,
 * `--redis-ca-file`), and `--redis-min-replicas`. Parsed into a RedisConfig by config.ts, every
 * problem reported at once; the password and the CA are read from their files here, once.
 */
import type { RedisNode, RedisTopology } from '../pool/redis-connection.js';
import { valueFlag, type FlagSpec } from './flags.js';
import { parseBoolean, parseHostPort } from './parse.js';

export interface RedisConfig {
  readonly topology: RedisTopology;
  readonly username: string | undefined;
  /** Read from `--redis-password-file` (a trailing newline dropped); never printed. */
  readonly password: string | undefined;
  /** TLS to Sentinel and Cluster nodes; a single server takes it from `rediss://`. */
  readonly tls: boolean;
  readonly caFile: string | undefined;
  /** PEM text of `--redis-ca-file`. */
  readonly ca: string | undefined;
  /** 0: no WAIT. */
  readonly minReplicas: number;
}

export const REDIS_FLAGS: Readonly<Record<string, FlagSpec>> = {
  'redis-sentinels': valueFlag(
    'Redis Sentinel addresses host:port,… (instead of REDIS_URL; with --redis-sentinel-master)',
  ),
  'redis-sentinel-master': valueFlag('the master name Sentinel monitors, e.g. mymaster'),
  'redis-cluster': valueFlag('Redis Cluster seed addresses host:port,… (instead of REDIS_URL)'),
  'redis-username': valueFlag('Redis ACL user (default: the URL, else `default`)'),
  'redis-password-file': valueFlag('file holding the Redis password (e.g. a mounted Secret)'),
  'redis-tls': valueFlag('true: TLS to Sentinel and Cluster nodes (REDIS_URL: use rediss://)'),
  'redis-ca-file': valueFlag("CA certificate (PEM) for Redis' TLS certificates; implies TLS"),
  'redis-min-replicas': valueFlag(
    'WAIT for this many replicas to acknowledge each write that hands out an address (0: none)',
  ),
};

/** What config.ts's flag lookup offers. */
export interface FlagReader {
  raw(flag: string): string | undefined;
  origin(flag: string): string;
  readonly issues: string[];
}

/** `host:port,host:port`; undefined when any entry is not one (or a port is 0). */
export const parseNodeList = (text: string): RedisNode[] | undefined => {
  const nodes = text.split(',').map(s => parseHostPort(s.trim()));
  if (nodes.length === 0 || nodes.some(n => n === undefined || n.port === 0)) return undefined;
  return nodes as RedisNode[];
};

const readText = (
  look: FlagReader,
  flag: string,
  readFile: (path: string) => string,
): string | undefined => {
  const path = look.raw(flag);
  if (path === undefined) return undefined;
  try {
    return readFile(path);
  } catch (err) {
    look.issues.push(`${look.origin(flag)}: cannot read ${path}: ${(err as Error).message}`);
    return undefined;
  }
};

const nodesOf = (look: FlagReader, flag: string): RedisNode[] | undefined => {
  const text = look.raw(flag);
  if (text === undefined) return undefined;
  const nodes = parseNodeList(text);
  if (nodes === undefined) {
    look.issues.push(`${look.origin(flag)}: "${text}" is not host:port,host:port,…`);
  }
  return nodes ?? [];
};

/** The one topology the flags and REDIS_URL name; undefined when none (or a conflict). */
const topologyOf = (look: FlagReader, redisUrl: string | undefined): RedisTopology | undefined => {
  const sentinels = nodesOf(look, 'redis-sentinels');
  const cluster = nodesOf(look, 'redis-cluster');
  const named = [
    redisUrl === undefined ? undefined : 'REDIS_URL',
    sentinels === undefined ? undefined : look.origin('redis-sentinels'),
    cluster === undefined ? undefined : look.origin('redis-cluster'),
  ].filter(x => x !== undefined);
  if (named.length > 1) {
    look.issues.push(`${named.join(' and ')}: name one Redis, not ${named.length}`);
    return undefined;
  }
  const sentinel = sentinelOf(look, sentinels);
  if (sentinel !== undefined) return sentinel;
  if (cluster !== undefined) return { kind: 'cluster', nodes: cluster };
  if (redisUrl !== undefined) return { kind: 'single', url: redisUrl };
  return undefined;
};

/** `--redis-sentinels` and `--redis-sentinel-master` come together. */
const sentinelOf = (
  look: FlagReader,
  sentinels: RedisNode[] | undefined,
): RedisTopology | undefined => {
  const master = look.raw('redis-sentinel-master');
  if (sentinels !== undefined && master === undefined) {
    look.issues.push(`${look.origin('redis-sentinels')} needs --redis-sentinel-master NAME`);
  }
  if (master !== undefined && sentinels === undefined) {
    look.issues.push(`${look.origin('redis-sentinel-master')} needs --redis-sentinels host:port,…`);
  }
  if (sentinels === undefined || master === undefined) return undefined;
  return { kind: 'sentinel', masterName: master, sentinels };
};

const minReplicasOf = (look: FlagReader): number => {
  const text = look.raw('redis-min-replicas');
  if (text === undefined) return 0;
  const n = /^\d{1,3}$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isInteger(n)) {
    look.issues.push(`${look.origin('redis-min-replicas')}: "${text}" is not a whole number ≥ 0`);
    return 0;
  }
  return n;
};

const passwordOf = (
  look: FlagReader,
  readFile: (path: string) => string,
  redisUrl: string | undefined,
): string | undefined => {
  const text = readText(look, 'redis-password-file', readFile);
  if (text === undefined) return undefined;
  const password = text.replace(/\r?\n$/, '');
  if (password === '') {
    look.issues.push(`${look.origin('redis-password-file')}: the file is empty`);
  }
  if (redisUrl !== undefined && /\/\/[^@/]*:[^@/]*@/.test(redisUrl)) {
    look.issues.push(
      `${look.origin('redis-password-file')}: REDIS_URL carries a password too; give it once`,
    );
  }
  return password;
};

const tlsOf = (look: FlagReader, topology: RedisTopology | undefined, ca: boolean): boolean => {
  const text = look.raw('redis-tls');
  const tls = text === undefined ? undefined : parseBoolean(text);
  if (text !== undefined && tls === undefined) {
    look.issues.push(`${look.origin('redis-tls')}: "${text}" is not true or false`);
  }
  if (topology?.kind !== 'single') return tls ?? ca;
  const scheme = topology.url.startsWith('rediss://');
  if (tls !== undefined && tls !== scheme) {
    look.issues.push(
      `${look.origin('redis-tls')} ${String(tls)} disagrees with REDIS_URL: use ${tls ? 'rediss://' : 'redis://'}`,
    );
  }
  if (ca && !scheme) look.issues.push('--redis-ca-file: use a rediss:// REDIS_URL for TLS');
  return scheme;
};

/**
 * The Redis to use: undefined when no Redis is named (then config.ts reports what `--store redis`
 * lacks). `redisUrl` is REDIS_URL (empty counts as unset).
 */
export const loadRedis = (
  look: FlagReader,
  redisUrl: string | undefined,
  readFile: (path: string) => string,
): RedisConfig | undefined => {
  const topology = topologyOf(look, redisUrl);
  const ca = readText(look, 'redis-ca-file', readFile);
  const config = {
    username: look.raw('redis-username'),
    password: passwordOf(look, readFile, redisUrl),
    tls: tlsOf(look, topology, ca !== undefined),
    caFile: look.raw('redis-ca-file'),
    ca,
    minReplicas: minReplicasOf(look),
  };
  return topology === undefined ? undefined : { topology, ...config };
};

/** Whether any Redis flag beyond REDIS_URL was given (refused with `--store memory`). */
export const redisFlagsGiven = (look: FlagReader): string[] =>
  Object.keys(REDIS_FLAGS).filter(f => look.raw(f) !== undefined);
