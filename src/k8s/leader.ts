/**
 * Leader election on a `coordination.k8s.io/v1` Lease, after client-go's `leaderelection`: every
 * `retryPeriod` a candidate reads the Lease; it takes it when it is free or its holder has not
 * renewed it for `leaseDuration` as measured on this candidate's own clock (the time it first saw
 * the current record, not the holder's `renewTime`, so clock skew between nodes does not matter),
 * and writes with the read `resourceVersion`, so two candidates cannot both win. A leader that
 * cannot renew for `renewDeadline` steps down. On stop, a leader gives the Lease up (empty
 * holder), so a successor takes over at once instead of after `leaseDuration`.
 */
import { ApiStatusError, isApiNotFound, type KubeClient } from './client.js';
import type { Logger } from '../log/logger.js';

export interface LeaderOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly name: string;
  /** This candidate, unique per process (pod name plus a random suffix). */
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly log: Logger;
  /** Leadership gained (`true`) or lost (`false`). */
  onChange(leader: boolean): void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

const REQUEST_TIMEOUT_MS = 5_000;

/** A `MicroTime`: RFC 3339 with six fractional digits. */
const microTime = (ms: number): string => new Date(ms).toISOString().replace('Z', '000Z');

export class LeaderElector {
  leader = false;
  private readonly o: LeaderOptions;
  private readonly retryPeriodMs: number;
  private readonly renewDeadlineMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The record last seen and when this process first saw it. */
  private observed = '';
  private observedAt = 0;
  private lastRenew = 0;
  private inflight: Promise<void> | undefined;

  constructor(options: LeaderOptions) {
    this.o = options;
    // client-go's defaults are 15 s / 10 s / 2 s: keep their proportions.
    this.retryPeriodMs = Math.max(200, Math.round(options.leaseDurationMs * (2 / 15)));
    this.renewDeadlineMs = Math.round(options.leaseDurationMs * (10 / 15));
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.o.namespace)}/leases`;
  }

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.inflight = this.round().finally(() => {
        this.inflight = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, this.retryPeriodMs);
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inflight;
    if (!this.leader) return;
    this.setLeader(false);
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity === this.o.identity) {
        lease.spec.holderIdentity = '';
        lease.spec.leaseDurationSeconds = 1;
        await this.write(lease);
        this.o.log.info({ lease: this.o.name }, 'leader lease given up');
      }
    } catch (err) {
      this.o.log.warn({ err }, 'could not give the leader lease up; it expires by itself');
    }
  }

  private setLeader(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    this.o.log.info(
      { identity: this.o.identity, lease: `${this.o.namespace}/${this.o.name}` },
      leader ? 'became the leader' : 'no longer the leader',
    );
    this.o.onChange(leader);
  }

  private async round(): Promise<void> {
    const now = Date.now();
    try {
      const won = await this.tryAcquireOrRenew(now);
      if (won) this.lastRenew = now;
      this.setLeader(won);
    } catch (err) {
      this.o.log.warn({ err }, 'leader election: the Lease could not be read or written');
      if (this.leader && Date.now() - this.lastRenew > this.renewDeadlineMs) this.setLeader(false);
    }
  }

  private async read(): Promise<LeaseObject | undefined> {
    try {
      return await this.o.client.request<LeaseObject>(
        `${this.path}/${encodeURIComponent(this.o.name)}`,
        { timeoutMs: REQUEST_TIMEOUT_MS },
      );
    } catch (err) {
      if (isApiNotFound(err)) return undefined;
      throw err;
    }
  }

  private write(lease: LeaseObject): Promise<LeaseObject> {
    return this.o.client.request<LeaseObject>(`${this.path}/${encodeURIComponent(this.o.name)}`, {
      method: 'PUT',
      body: lease,
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
  }

  private mine(now: number): LeaseSpec {
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.max(1, Math.round(this.o.leaseDurationMs / 1000)),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
  }

  /** Creates the Lease held by this candidate; false when another created it first. */
  private async create(now: number): Promise<boolean> {
    try {
      await this.o.client.request(this.path, {
        method: 'POST',
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: this.mine(now),
        },
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
      return true;
    } catch (err) {
      if (err instanceof ApiStatusError && err.status === 409) return false;
      throw err;
    }
  }

  /** Whether another holder's record is still live, as this candidate's clock measures it. */
  private heldByAnother(spec: LeaseSpec, now: number): boolean {
    const record = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}`;
    if (record !== this.observed) {
      this.observed = record;
      this.observedAt = now;
    }
    const holder = spec.holderIdentity ?? '';
    if (holder === '' || holder === this.o.identity) return false;
    const durationMs = (spec.leaseDurationSeconds ?? 1) * 1000;
    return now < this.observedAt + durationMs;
  }

  /** The record this candidate writes over `spec`: a renewal keeps its acquireTime. */
  private nextSpec(spec: LeaseSpec, now: number): LeaseSpec {
    const renewing = spec.holderIdentity === this.o.identity;
    const taking = !renewing && (spec.holderIdentity ?? '') !== '';
    const mine = this.mine(now);
    return {
      ...mine,
      acquireTime: renewing ? (spec.acquireTime ?? mine.acquireTime) : mine.acquireTime,
      leaseTransitions: (spec.leaseTransitions ?? 0) + (taking ? 1 : 0),
    };
  }

  /** True when this candidate holds the Lease after this round. */
  private async tryAcquireOrRenew(now: number): Promise<boolean> {
    const lease = await this.read();
    if (lease === undefined) return this.create(now);
    const spec = lease.spec ?? {};
    if (this.heldByAnother(spec, now)) return false;
    try {
      const written = await this.write({ ...lease, spec: this.nextSpec(spec, now) });
      this.observed = `${this.o.identity}|${written.spec?.renewTime ?? ''}`;
      this.observedAt = now;
      return true;
    } catch (err) {
      // Another candidate wrote first: not this round.
      if (err instanceof ApiStatusError && err.status === 409) return false;
      throw err;
    }
  }
}
