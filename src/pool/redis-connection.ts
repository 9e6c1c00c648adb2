/**
 * The Redis connection of the lease store, whichever way Redis is deployed (docs/redis.md): one
 * server (`REDIS_URL`), a Sentinel-monitored primary (node-redis `createSentinel`) or a Redis
 * Cluster (`createCluster`), with TLS and ACL credentials. Every key of a pool shares the pool's
 * hash tag, so every script and every MULTI the store sends touches one slot and runs unchanged
 * on all three; what is not per pool (the preflight's INFO and CONFIG GET, PING) goes to every
 * primary, and WAIT goes to the connection that carried the write it waits for.
 */
import { createClient, createCluster, createSentinel } from 'redis';
import type { PreflightClient } from './preflight.js';
import { scripts } from './scripts.js';

export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

export type RedisTopology =
  | { readonly kind: 'single'; readonly url: string }
  | {
      readonly kind: 'sentinel';
      /** The name Sentinel monitors the primary under (`sentinel monitor <name> …`). */
      readonly masterName: string;
      readonly sentinels: readonly RedisNode[];
    }
  | { readonly kind: 'cluster'; readonly nodes: readonly RedisNode[] };

export interface RedisConnectionOptions {
  readonly topology: RedisTopology;
  /** ACL user; with Sentinel also used for the Sentinels. */
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** TLS to every node (a `rediss://` URL turns it on by itself). */
  readonly tls?: boolean | undefined;
  /** PEM of the CA that signed the servers' certificates (default: the system's). */
  readonly ca?: string | undefined;
  readonly clientName: string;
  readonly connectTimeoutMs: number;
}

/**
 * The store's command surface. A Sentinel and a Cluster client take the same calls as a single
 * client for single-slot commands and the registered scripts; the store calls only those.
 */
export type RedisCommands = ReturnType<typeof singleClient>;

export interface RedisConnection {
  readonly commands: RedisCommands;
  /** For messages: the URL without its password, or the Sentinel / Cluster nodes. */
  readonly where: string;
  connect(): Promise<void>;
  /** Every primary, to check (preflight) and to ping, with where it is. */
  primaries(): Promise<{ client: PreflightClient & { ping(): Promise<unknown> }; where: string }[]>;
  /**
   * WAIT on the connection that carried the last write to `key`'s slot: the number of replicas
   * that acknowledged it (and every write before it on that connection) within `timeoutMs`.
   */
  waitReplicas(key: string, replicas: number, timeoutMs: number): Promise<number>;
  readonly isOpen: boolean;
  close(): Promise<void>;
  destroy(): void;
}

const reconnectStrategy = (retries: number): number => Math.min(50 * 2 ** retries, 2_000);

/**
 * Reconnection is node-redis' business; each failed command surfaces as StoreUnavailableError to
 * its caller. Without a listener an `error` event would crash the process.
 */
const ignoreErrors = (): void => undefined;

/** The URL without its password, for messages. */
export const redactUrl = (url: string): string => url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');

const nodesText = (nodes: readonly RedisNode[]): string =>
  nodes
    .map(n => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`))
    .join(',');

/** Socket options every connection shares: the connect timeout, TLS and its CA. */
const socketOptions = (o: RedisConnectionOptions, tls: boolean) => ({
  connectTimeout: o.connectTimeoutMs,
  reconnectStrategy,
  ...(tls ? { tls: true as const, ...(o.ca === undefined ? {} : { ca: o.ca }) } : {}),
});

const credentials = (o: RedisConnectionOptions) => ({
  ...(o.username === undefined ? {} : { username: o.username }),
  ...(o.password === undefined ? {} : { password: o.password }),
});

/**
 * No node-redis command timeout: every store call runs under the store's own deadline (one
 * timer, redis-store.ts `#do`); node-redis' default 5 s timeout builds an `AbortSignal.timeout`
 * per command whose firing, long after the answer, makes a DOMException with a stack trace
 * (~4 % of the webhook's CPU in a profile of pod admissions).
 */
const NO_COMMAND_TIMEOUT = { timeout: 0 } as const;

const singleClient = (o: RedisConnectionOptions, url: string) =>
  createClient({
    url,
    name: o.clientName,
    disableOfflineQueue: true,
    commandOptions: NO_COMMAND_TIMEOUT,
    ...credentials(o),
    // `tls` comes from the URL scheme; only the CA is added.
    socket: {
      connectTimeout: o.connectTimeoutMs,
      reconnectStrategy,
      ...(o.ca === undefined ? {} : { ca: o.ca }),
    },
    scripts,
  });

const single = (o: RedisConnectionOptions, url: string): RedisConnection => {
  const client = singleClient(o, url);
  client.on('error', ignoreErrors);
  return {
    commands: client,
    where: redactUrl(url),
    connect: async () => {
      await client.connect();
    },
    primaries: () => Promise.resolve([{ client, where: redactUrl(url) }]),
    waitReplicas: async (_key, replicas, timeoutMs) =>
      Number(await client.sendCommand(['WAIT', String(replicas), String(timeoutMs)])),
    get isOpen() {
      return client.isOpen;
    },
    close: () => client.close(),
    destroy: () => {
      client.destroy();
    },
  };
};

const sentinel = (
  o: RedisConnectionOptions,
  t: Extract<RedisTopology, { kind: 'sentinel' }>,
): RedisConnection => {
  const nodeOptions = {
    name: o.clientName,
    disableOfflineQueue: true,
    commandOptions: NO_COMMAND_TIMEOUT,
    ...credentials(o),
    socket: socketOptions(o, o.tls === true),
  };
  const client = createSentinel({
    name: t.masterName,
    sentinelRootNodes: t.sentinels.map(n => ({ host: n.host, port: n.port })),
    nodeClientOptions: nodeOptions,
    sentinelClientOptions: { ...credentials(o), socket: socketOptions(o, o.tls === true) },
    // One connection to the primary: WAIT then follows the write it waits for on the same
    // connection (WAIT counts the replicas that acknowledged this connection's last write).
    masterPoolSize: 1,
    scanInterval: 2_000,
    scripts,
  });
  client.on('error', ignoreErrors);
  const where = `sentinel master "${t.masterName}" via ${nodesText(t.sentinels)}`;
  const commands = client as unknown as RedisCommands;
  return {
    commands,
    where,
    connect: async () => {
      await client.connect();
    },
    primaries: () => Promise.resolve([{ client: commands, where }]),
    waitReplicas: async (_key, replicas, timeoutMs) =>
      Number(await client.sendCommand(false, ['WAIT', String(replicas), String(timeoutMs)])),
    get isOpen() {
      return client.isOpen;
    },
    close: () => client.close(),
    destroy: () => {
      void client.destroy().catch(() => undefined);
    },
  };
};

const cluster = (
  o: RedisConnectionOptions,
  t: Extract<RedisTopology, { kind: 'cluster' }>,
): RedisConnection => {
  const tls = o.tls === true;
  const client = createCluster({
    rootNodes: t.nodes.map(n => ({
      ...credentials(o),
      socket: { ...socketOptions(o, tls), host: n.host, port: n.port },
    })),
    commandOptions: NO_COMMAND_TIMEOUT,
    defaults: {
      name: o.clientName,
      disableOfflineQueue: true,
      ...credentials(o),
      socket: socketOptions(o, tls),
    },
    // A failed-over primary is noticed soon after its connection drops, not after 5 s.
    topologyRefreshOnReconnectionAttemptStrategy: 500,
    scripts,
  });
  client.on('error', ignoreErrors);
  client.on('node-error', ignoreErrors);
  const commands = client as unknown as RedisCommands;
  return {
    commands,
    where: `cluster ${nodesText(t.nodes)}`,
    connect: async () => {
      await client.connect();
    },
    primaries: () =>
      Promise.all(
        client.masters.map(async m => ({
          client: (await client.nodeClient(m)) as unknown as RedisCommands,
          where: `cluster node ${nodesText([m])}`,
        })),
      ),
    waitReplicas: async (key, replicas, timeoutMs) => {
      const node = await client.getNodeClientForKey(key, false);
      return Number(await node.sendCommand(['WAIT', String(replicas), String(timeoutMs)]));
    },
    get isOpen() {
      return client.isOpen;
    },
    close: () => client.close(),
    destroy: () => {
      client.destroy();
    },
  };
};

/** A connection (not connected yet) for the topology. */
export const createRedisConnection = (o: RedisConnectionOptions): RedisConnection => {
  const t = o.topology;
  if (t.kind === 'sentinel') return sentinel(o, t);
  if (t.kind === 'cluster') return cluster(o, t);
  return single(o, t.url);
};
