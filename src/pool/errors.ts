/**
 * Typed errors of the lease store, each with a literal `code` discriminant and `retryable`
 * (whereabouts' `Temporary()` as data). Lua scripts return numeric statuses (STATUS); only
 * redis-store.ts reads them and throws these classes. The memory store throws them directly.
 */
import { formatDuration } from '../text/duration.js';

/** Status codes the Lua scripts return (docs/design.md §5); read by redis-store.ts only. */
export const STATUS = {
  OK: 0,
  EXHAUSTED: -1,
  IN_USE: -2,
  NOT_FOUND: -3,
  OWNER_MISMATCH: -4,
  NOT_INITIALISED: -5,
  LAYOUT_MISMATCH: -6,
  ID_EXISTS: -8,
  SHRINK_REFUSED: -7,
  RECONCILING: -9,
} as const;
export type Status = (typeof STATUS)[keyof typeof STATUS];

/** Who holds an address, as far as the store knows. */
export interface Holder {
  readonly namespace: string;
  readonly name?: string | undefined;
  readonly generateName?: string | undefined;
  readonly leaseId?: string | undefined;
  /** Set when the address is held by a sticky reservation. */
  readonly stickyKey?: string | undefined;
  /** The holding lease's state, when a lease holds it. */
  readonly state?: 'pending' | 'bound' | undefined;
  /** The sticky key the holding lease was made for. */
  readonly leaseStickyKey?: string | undefined;
}

/** `namespace/name`, or for a pod not yet named, `namespace/generateName*`. */
export const describeHolder = (h: Holder): string => {
  if (h.name !== undefined && h.name !== '') return `pod ${h.namespace}/${h.name}`;
  if (h.generateName !== undefined && h.generateName !== '') {
    return `a pod of ${h.namespace}/${h.generateName}* not yet named`;
  }
  if (h.stickyKey !== undefined) return `the sticky reservation ${h.stickyKey}`;
  return `a pod in namespace ${h.namespace}`;
};

abstract class PoolError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Released addresses the next-free pick skips because their reuse cooldown has not passed. */
export interface CoolingDown {
  /** Released less than the cooldown ago. */
  readonly count: number;
  /** When the first of them may be handed out again (ms since the epoch). */
  readonly nextFreeAt: number;
  readonly reuseCooldownMs: number;
  /** The time the allocation ran at (for "in 42s"). */
  readonly now: number;
}

/**
 * No free address (Kubernetes ipallocator `ErrFull`). With addresses still cooling down
 * (`--reuse-cooldown`) one comes free by itself at `nextFreeAt`: then the error is retryable.
 */
export class PoolExhaustedError extends PoolError {
  readonly code = 'POOL_EXHAUSTED' as const;
  readonly retryable: boolean;
  readonly pool: string;
  readonly leased: number;
  readonly size: number;
  /** Released addresses still cooling down; 0 when every address is leased. */
  readonly cooling: number;
  /** When the first cooling address is free again (ms since the epoch); set when `cooling > 0`. */
  readonly nextFreeAt: number | undefined;
  readonly reuseCooldownMs: number | undefined;
  constructor(pool: string, leased: number, size: number, cooling?: CoolingDown) {
    super(
      cooling === undefined || cooling.count === 0
        ? `pool "${pool}" is exhausted: ${leased} of ${size} addresses leased`
        : `pool "${pool}" has no free address: ${leased} of ${size} leased, ${cooling.count} ` +
            `released and cooling down (reuse-cooldown ${formatDuration(cooling.reuseCooldownMs)}), ` +
            `the first free again at ${new Date(cooling.nextFreeAt).toISOString()} ` +
            `(in ${Math.max(1, Math.ceil((cooling.nextFreeAt - cooling.now) / 1_000))}s)`,
    );
    this.pool = pool;
    this.leased = leased;
    this.size = size;
    this.cooling = cooling?.count ?? 0;
    this.nextFreeAt = this.cooling > 0 ? cooling?.nextFreeAt : undefined;
    this.reuseCooldownMs = this.cooling > 0 ? cooling?.reuseCooldownMs : undefined;
    this.retryable = this.cooling > 0;
  }
}

/** The requested address is held by someone else (`ErrAllocated`). */
export class AddressInUseError extends PoolError {
  readonly code = 'ADDRESS_IN_USE' as const;
  readonly retryable = false;
  readonly pool: string;
  readonly ip: string;
  readonly holder: Holder;
  constructor(pool: string, ip: string, holder: Holder) {
    super(`address ${ip} of pool "${pool}" is held by ${describeHolder(holder)}`);
    this.pool = pool;
    this.ip = ip;
    this.holder = holder;
  }
}

/** The address is not an allocatable address of the pool (`ErrNotInRange`). */
export class NotInPoolError extends PoolError {
  readonly code = 'NOT_IN_POOL' as const;
  readonly retryable = false;
  readonly pool: string;
  readonly ip: string;
  readonly reason: string;
  constructor(pool: string, ip: string, reason: string) {
    super(`address ${ip} is not allocatable in pool "${pool}": ${reason}`);
    this.pool = pool;
    this.ip = ip;
    this.reason = reason;
  }
}

export class UnknownPoolError extends PoolError {
  readonly code = 'UNKNOWN_POOL' as const;
  readonly retryable = false;
  readonly pool: string;
  readonly known: readonly string[];
  constructor(pool: string, known: readonly string[]) {
    super(`unknown pool "${pool}"; known pools: ${known.length > 0 ? known.join(', ') : '(none)'}`);
    this.pool = pool;
    this.known = known;
  }
}

export class LeaseNotFoundError extends PoolError {
  readonly code = 'LEASE_NOT_FOUND' as const;
  readonly retryable = false;
  readonly pool: string;
  readonly leaseId: string;
  constructor(pool: string, leaseId: string) {
    super(`lease ${pool}/${leaseId} does not exist (released, expired or replaced)`);
    this.pool = pool;
    this.leaseId = leaseId;
  }
}

/** A lease already bound to another pod UID (docs/design.md §4: conflict). */
export class LeaseConflictError extends PoolError {
  readonly code = 'LEASE_CONFLICT' as const;
  readonly retryable = false;
  readonly pool: string;
  readonly leaseId: string;
  readonly boundUid: string;
  readonly boundPod: string;
  constructor(pool: string, leaseId: string, boundUid: string, boundPod: string) {
    super(`lease ${pool}/${leaseId} is already bound to pod ${boundPod} (uid ${boundUid})`);
    this.pool = pool;
    this.leaseId = leaseId;
    this.boundUid = boundUid;
    this.boundPod = boundPod;
  }
}

/** The pool's epoch is missing: fresh or wiped, waiting for init or rebuild. */
export class PoolRecoveringError extends PoolError {
  readonly code = 'POOL_RECOVERING' as const;
  readonly retryable = true;
  readonly pool: string;
  constructor(pool: string) {
    super(
      `pool "${pool}" is not ready: its state in the store is missing (a first install, or a wiped ` +
        "or restarted Redis) and no address is handed out until it is rebuilt from the pods' " +
        'annotations; the controller does this (podlease serve with an API server), or run ' +
        '`podlease rebuild`, or for a store no pod has used `podlease pools init`; retry in a few seconds',
    );
    this.pool = pool;
  }
}

/**
 * The store came back as another server or another history (a Redis failover or restart: its
 * replication id changed) and may have lost leases pods still carry: nothing is handed out until
 * the controller has checked every pod's annotations against the store and restored what is
 * missing (docs/design.md §10).
 */
export class PoolReconcilingError extends PoolError {
  readonly code = 'POOL_RECONCILING' as const;
  readonly retryable = true;
  readonly pool: string;
  /** The server's replication history now. */
  readonly history: string;
  /** The history the pool was last reconciled on. */
  readonly reconciledOn: string;
  constructor(pool: string, history: string, reconciledOn: string) {
    super(
      `pool "${pool}" is reconciling: the store came back as another server or another history ` +
        `(a Redis failover or restart: replication id ${short(history)}, the pool was last ` +
        `reconciled on ${short(reconciledOn)}) and may have lost leases that pods still carry; ` +
        "no address is handed out until every pod's annotations have been checked against the " +
        'store and what is missing restored; the controller does this (podlease serve with an ' +
        'API server), or run `podlease check --fix`; retry in a few seconds',
    );
    this.pool = pool;
    this.history = history;
    this.reconciledOn = reconciledOn;
  }
}

const short = (replid: string): string => (replid === '' ? '(none)' : replid.slice(0, 12));

/**
 * A write that hands out an address reached fewer replicas than `--redis-min-replicas` within
 * its time (Redis WAIT). The write did happen on the primary: the caller gives it back.
 */
export class ReplicasBehindError extends PoolError {
  readonly code = 'REPLICAS_BEHIND' as const;
  readonly retryable = true;
  readonly wanted: number;
  readonly acknowledged: number;
  constructor(wanted: number, acknowledged: number, timeoutMs: number) {
    super(
      `the write reached ${acknowledged} of the ${wanted} replica(s) --redis-min-replicas asks ` +
        `for within ${timeoutMs} ms, so a failover now could lose it; it is given back`,
    );
    this.wanted = wanted;
    this.acknowledged = acknowledged;
  }
}

/** Replicas disagree about the pool's addresses (different pools files). */
export class LayoutMismatchError extends PoolError {
  readonly code = 'LAYOUT_MISMATCH' as const;
  readonly retryable = true;
  readonly pool: string;
  constructor(pool: string) {
    super(
      `pool "${pool}" in the store was laid out from a different pools file than this replica's; ` +
        'wait for the rollout to finish, or run `podlease pools` to compare',
    );
    this.pool = pool;
  }
}

/** Shrinking a pool would strand live leases (docs/design.md §2). */
export class PoolShrinkError extends PoolError {
  readonly code = 'POOL_SHRINK_REFUSED' as const;
  readonly retryable = false;
  readonly pool: string;
  readonly stranded: readonly string[];
  constructor(pool: string, stranded: readonly string[], total: number = stranded.length) {
    super(
      `pool "${pool}": the new configuration leaves out ${total} address(es) still leased ` +
        `or reserved (${stranded.slice(0, 5).join(', ')}${total > 5 ? ', …' : ''}); ` +
        'release them first or keep them in the pool',
    );
    this.pool = pool;
    this.stranded = stranded;
  }
}

/** The store did not answer (Redis down, timed out, connection closed). */
export class StoreUnavailableError extends PoolError {
  readonly code = 'STORE_UNAVAILABLE' as const;
  readonly retryable = true;
  constructor(message: string, options?: ErrorOptions) {
    super(`lease store unavailable: ${message}`, options);
  }
}

/** A lease id exists already for another request (ids come from the admission request uid). */
export class LeaseIdExistsError extends PoolError {
  readonly code = 'LEASE_ID_EXISTS' as const;
  readonly retryable = false;
  readonly pool: string;
  readonly leaseId: string;
  constructor(pool: string, leaseId: string) {
    super(
      `lease ${pool}/${leaseId} exists already for another request or another address; ` +
        'nothing was changed',
    );
    this.pool = pool;
    this.leaseId = leaseId;
  }
}

/** The store is set up in a way that can lose leases (eviction policy, server version). */
export class StoreConfigError extends PoolError {
  readonly code = 'STORE_CONFIG' as const;
  readonly retryable = false;
}

/** A sticky key is already reserved to another address. */
export class ReservationExistsError extends PoolError {
  readonly code = 'RESERVATION_EXISTS' as const;
  readonly retryable = false;
  readonly pool: string;
  readonly key: string;
  readonly ip: string;
  constructor(pool: string, key: string, ip: string) {
    super(
      `sticky key ${key} of pool "${pool}" is already reserved to ${ip}; ` +
        'unreserve it first to move it to another address',
    );
    this.pool = pool;
    this.key = key;
    this.ip = ip;
  }
}

export type AnyPoolError =
  | ReservationExistsError
  | PoolExhaustedError
  | AddressInUseError
  | NotInPoolError
  | UnknownPoolError
  | LeaseNotFoundError
  | LeaseConflictError
  | PoolRecoveringError
  | PoolReconcilingError
  | ReplicasBehindError
  | LayoutMismatchError
  | PoolShrinkError
  | LeaseIdExistsError
  | StoreConfigError
  | StoreUnavailableError;

export const isPoolError = (err: unknown): err is AnyPoolError => err instanceof PoolError;
