/**
 * A seeded, randomised fault run of the lease protocol against a real redis-server: several
 * webhook replicas (each its own RedisLeaseStore connection and pools file) take concurrent
 * dynamic, static, sticky and ip-list admissions, API server retries (same request uid) and
 * duplicate CREATEs, while a simulated controller binds, releases and expires, replicas switch
 * pools files (relayout during allocation), and Redis is stalled with SIGSTOP / SIGCONT so
 * answers come late. After every step the store is checked against a model of the cluster:
 *
 * - no address is held by two live pods, and no two store leases share an address;
 * - every pod the API server created holds its acknowledged lease, with its address;
 * - nothing is left behind: every store lease belongs to a live pod, or to an admission the API
 *   server rejected after mutation or whose answer it never read (the controller's expiry
 *   releases those);
 * - every sticky reservation the model knows of is where the last allowed admission put it, or
 *   where an admission left unanswered (503, the store did not answer in time) asked to move it:
 *   its script may have run all the same, and a rollback gives back the lease, not the move;
 * - counters are exact: leased = distinct addresses held by leases and reservations.
 */
import { randomUUID } from 'node:crypto';
import { silentLogger } from '../../../src/log/logger.js';
import { toPoolSet, type Pool, type PoolSet } from '../../../src/pool/pools-file.js';
import { isPoolError } from '../../../src/pool/errors.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import { DEFAULTS } from '../../../src/config/config.js';
import type { PodPresence } from '../../../src/webhook/admit.js';
import { handleMutate, type WebhookDeps } from '../../../src/webhook/handlers.js';
import { NO_NAMESPACES } from '../../../src/webhook/namespaces.js';
import { applyAnnotationPatch } from '../../../src/webhook/patch.js';
import type { AdmissionReview, PatchOperation } from '../../../src/webhook/types.js';
import { rng } from '../../helpers/rng.js';

export { rng };

const POOL = 'fault';
const NS = 'fault';
const STS_CREATOR = 'system:serviceaccount:kube-system:statefulset-controller';
/** Pools files the replicas switch between; each keeps .40–.59 (ip-list, static) allocatable. */
const VARIANTS = [
  { cidr: '10.77.0.0/26', ranges: ['10.77.0.10-10.77.0.62'] },
  { cidr: '10.77.0.0/26', ranges: ['10.77.0.10-10.77.0.62'], exclude: ['10.77.0.12'] },
  { cidr: '10.77.0.0/26', ranges: ['10.77.0.4-10.77.0.62'] },
];
const IP_LISTS = ['10.77.0.40,10.77.0.41,10.77.0.42', '10.77.0.50,10.77.0.51,10.77.0.52'];
const STATIC_IPS = ['10.77.0.45', '10.77.0.46'];

const poolsOf = (variant: number): PoolSet => {
  const v = VARIANTS[variant] ?? VARIANTS[0];
  return toPoolSet({ pools: [{ name: POOL, default: true, ...v }] });
};
const poolOf = (set: PoolSet): Pool => {
  const p = set.pools.get(POOL);
  if (p === undefined) throw new Error('fault pool missing');
  return p;
};

interface LivePod {
  readonly name: string;
  readonly uid: string;
  readonly leaseId: string;
  readonly ip: string;
  bound: boolean;
  readonly stickyKey?: string | undefined;
}

interface Replica {
  readonly store: RedisLeaseStore;
  variant: number;
  deps: WebhookDeps;
}

type PodKind = 'dynamic' | 'sticky' | 'iplist' | 'static';

interface Admission {
  readonly review: AdmissionReview;
  readonly kind: PodKind;
  readonly name: string | undefined;
}

export interface FaultOptions {
  readonly seed: number;
  readonly steps: number;
  readonly redisUrl: string;
  /** SIGSTOP / SIGCONT of the redis-server process. */
  readonly stall: (stopped: boolean) => void;
  readonly replicas?: number;
  /** Operation names to leave out: admit, bind, delete, expire, relayout, stall, retry, duplicate, edit-ip-list. */
  readonly skip?: readonly string[];
}

export interface FaultResult {
  readonly allowed: number;
  readonly denied: number;
  readonly stalls: number;
  readonly relayouts: number;
  readonly retries: number;
  readonly duplicates: number;
}

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

/** The webhook replicas' store timeout: Redis stalled for longer gives 503 denials. */
const STORE_TIMEOUT_MS = 250;
/**
 * The command timeout of the model's own connection (the controller, relayouts and the checks).
 * On a busy machine a call can take longer than the replicas' 250 ms, and a controller call that
 * timed out would leave the model not knowing what it did.
 */
const CONTROL_TIMEOUT_MS = 10_000;
/** How long a release after a failed or late admission keeps retrying (the webhook's budget). */
const CLEANUP_BUDGET_MS = 15_000;
/**
 * How long a check waits for the store to agree with the model: late script runs after a stall
 * and the webhook's background releases, which retry for up to CLEANUP_BUDGET_MS. Twice that
 * leaves room for a machine busy with other tests.
 */
const SETTLE_MS = 2 * CLEANUP_BUDGET_MS;

/** The 503 of a store call that did not answer in time: its script may still have run. */
const unanswered = (answer: AdmissionReview): boolean =>
  answer.response?.allowed !== true &&
  answer.response?.status?.code === 503 &&
  answer.response.status.message.startsWith('podlease: lease store unavailable');

/** One fault run; throws an Error naming the seed, the step and the broken invariant. */
export const runFaultSeed = async (opts: FaultOptions): Promise<FaultResult> => {
  const random = rng(opts.seed);
  const pick = <T>(xs: readonly T[]): T => {
    const x = xs[Math.floor(random() * xs.length)];
    if (x === undefined) throw new Error('pick from an empty list');
    return x;
  };
  const live = new Map<string, LivePod>();
  /** Lease ids of admissions allowed whose pod the API server then rejected. */
  const orphans = new Set<string>();
  /** Model of the sticky reservations: key -> address. */
  const reserved = new Map<string, string>();
  /**
   * Addresses a key's reservation may have moved to since the last allowed admission for it: an
   * ip-list admission answered 503 because the store did not answer in time may have run its
   * script all the same (late, after a stall, or before a timer that fired first on a busy event
   * loop). Its lease is released again by id and attempt token; the move stays, as it does for an
   * allowed admission whose pod the API server rejects.
   */
  const mayHaveMoved = new Map<string, Set<string>>();
  let ipListVersion = 0;
  const counts = { allowed: 0, denied: 0, stalls: 0, relayouts: 0, retries: 0, duplicates: 0 };
  let step = 0;
  const fail = (what: string): never => {
    throw new Error(`fault seed ${opts.seed}, step ${step}: ${what}`);
  };

  const pods: PodPresence = {
    exists: (_ns, name) => Promise.resolve([...live.values()].some(p => p.name === name)),
  };
  const depsFor = (store: RedisLeaseStore, variant: number): WebhookDeps => ({
    store,
    pools: poolsOf(variant),
    namespaces: NO_NAMESPACES,
    config: {
      leaseTtlMs: DEFAULTS.leaseTtlMs,
      storeTimeoutMs: STORE_TIMEOUT_MS,
      bodyLimitBytes: 1 << 20,
      serviceAccount: DEFAULTS.serviceAccount,
      statefulSetCreators: DEFAULTS.statefulSetCreators,
      // Long enough that two admissions of one name in one batch never take each other over.
      pendingTakeoverMs: 500,
    },
    log: silentLogger(),
    pods,
    cleanupBudgetMs: CLEANUP_BUDGET_MS,
  });
  const replicas: Replica[] = [];
  for (let r = 0; r < (opts.replicas ?? 3); r++) {
    const store = await RedisLeaseStore.connect({
      url: opts.redisUrl,
      commandTimeoutMs: STORE_TIMEOUT_MS,
    });
    replicas.push({ store, variant: 0, deps: depsFor(store, 0) });
  }
  const admin = replicas[0];
  if (admin === undefined) throw new Error('no replica');
  const control = await RedisLeaseStore.connect({
    url: opts.redisUrl,
    commandTimeoutMs: CONTROL_TIMEOUT_MS,
  });
  await control.dropPool(POOL);
  await control.ensurePool(poolOf(poolsOf(0)), { initialize: true });

  const review = (a: {
    uid?: string;
    name?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    sts?: string;
    username?: string;
  }): AdmissionReview =>
    ({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: a.uid ?? randomUUID(),
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        operation: 'CREATE',
        namespace: NS,
        userInfo: {
          username: a.username ?? 'system:serviceaccount:kube-system:replicaset-controller',
        },
        dryRun: false,
        object: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            ...(a.name === undefined ? { generateName: 'dep-' } : { name: a.name }),
            namespace: NS,
            annotations: a.annotations ?? {},
            labels: a.labels ?? {},
            ownerReferences:
              a.sts === undefined
                ? []
                : [
                    {
                      apiVersion: 'apps/v1',
                      kind: 'StatefulSet',
                      name: a.sts,
                      uid: `uid-${a.sts}`,
                      controller: true,
                    },
                  ],
          },
          spec: { containers: [{ name: 'c', image: 'x' }] },
        },
      },
    }) as unknown as AdmissionReview;

  const freeName = (prefix: string, n: number): string | undefined => {
    for (let i = 0; i < n; i++) {
      const name = `${prefix}-${(i + Math.floor(random() * n)) % n}`;
      if (!live.has(name)) return name;
    }
    return undefined;
  };

  /** A CREATE of pod `name` of this kind (dynamic pods have no name: generateName). */
  const admissionFor = (kind: PodKind, name: string | undefined): Admission => {
    if (kind === 'dynamic' || name === undefined)
      return { kind, name: undefined, review: review({}) };
    if (kind === 'static') {
      const ip = STATIC_IPS[Number(name.slice('static-'.length))] ?? '';
      return { kind, name, review: review({ name, annotations: { 'podlease.io/static-ip': ip } }) };
    }
    const sts = kind === 'sticky' ? 'web' : 'kafka';
    const annotations: Record<string, string> =
      kind === 'sticky'
        ? { 'podlease.io/sticky': 'true' }
        : { 'podlease.io/ip-list': IP_LISTS[ipListVersion] ?? '' };
    const labels = { 'apps.kubernetes.io/pod-index': name.slice(sts.length + 1) };
    return {
      kind,
      name,
      review: review({ name, sts, annotations, labels, username: STS_CREATOR }),
    };
  };

  const newAdmission = (): Admission => {
    const kind = pick<PodKind>(['dynamic', 'dynamic', 'dynamic', 'sticky', 'iplist', 'static']);
    if (kind === 'sticky') return admissionFor(kind, freeName('web', 3) ?? 'web-0');
    if (kind === 'iplist') return admissionFor(kind, freeName('kafka', 3) ?? 'kafka-0');
    if (kind === 'static')
      return admissionFor(kind, `static-${Math.floor(random() * STATIC_IPS.length)}`);
    return admissionFor(kind, undefined);
  };

  const annotationsOf = (answer: AdmissionReview): Record<string, string> => {
    const patch = answer.response?.patch;
    if (patch === undefined) return {};
    const ops = JSON.parse(Buffer.from(patch, 'base64').toString()) as PatchOperation[];
    return applyAnnotationPatch({}, ops) ?? {};
  };

  /** `ns/sts/N` for a StatefulSet pod's admission, else undefined. */
  const stickyKeyOf = (a: Admission): string | undefined =>
    (a.kind === 'sticky' || a.kind === 'iplist') && a.name !== undefined
      ? `${NS}/${a.name.replace(/-(\d+)$/, '/$1')}`
      : undefined;

  /** The lease id and address of an allowed answer. */
  const leaseOf = (answer: AdmissionReview): { leaseId: string; ip: string } => {
    const ann = annotationsOf(answer);
    const lease = ann['podlease.io/lease'] ?? fail('allowed without a lease annotation');
    const ip = ann['podlease.io/ip'] ?? fail('allowed without an address');
    return { leaseId: lease.slice(lease.indexOf('/') + 1), ip };
  };

  /**
   * The store's side of an allowed admission: it reserved (or, for an edited ip-list, moved) the
   * ordinal's address, whatever the API server then does with the pod or the answer.
   */
  const reservedBy = (a: Admission, ip: string): void => {
    const stickyKey = stickyKeyOf(a);
    if (stickyKey === undefined) return;
    const before = reserved.get(stickyKey);
    if (before !== undefined && before !== ip && a.kind === 'sticky') {
      fail(`sticky ${stickyKey} was ${before}, admitted with ${ip}`);
    }
    reserved.set(stickyKey, ip);
    mayHaveMoved.delete(stickyKey);
  };

  /** The store's side of an admission answered 503 (no answer in time): it may have run. */
  const perhapsReservedBy = (a: Admission): void => {
    const stickyKey = stickyKeyOf(a);
    if (stickyKey === undefined || a.kind !== 'iplist' || a.name === undefined) return;
    // Without an ip-list a reservation never moves, and it never moves away from a pod that
    // exists (its lease is bound, or pending and not taken over while the pod exists). A
    // reservation the model does not know of is not checked.
    if (live.has(a.name)) return;
    const ordinal = Number(a.name.slice('kafka-'.length));
    const object = a.review.request?.object as {
      metadata: { annotations: Record<string, string> };
    };
    const asked = object.metadata.annotations['podlease.io/ip-list']?.split(',')[ordinal];
    if (asked === undefined) return;
    const maybe = mayHaveMoved.get(stickyKey) ?? new Set<string>();
    mayHaveMoved.set(stickyKey, maybe.add(asked));
  };

  /** The API server's side: an allowed pod is created (or, now and then, rejected after mutation). */
  const created = (a: Admission, answer: AdmissionReview): void => {
    const { leaseId, ip } = leaseOf(answer);
    const name = a.name ?? `dep-${randomUUID().slice(0, 8)}`;
    const stickyKey = stickyKeyOf(a);
    reservedBy(a, ip);
    // A retried call (same uid) whose first answer was lost: the lease is now acknowledged.
    orphans.delete(leaseId);
    if (a.name !== undefined && live.has(a.name)) {
      // AlreadyExists: the API server rejects this CREATE; its lease must not have voided the
      // running pod's.
      orphans.add(leaseId);
      return;
    }
    if (random() < 0.1) {
      orphans.add(leaseId); // a later webhook or a quota rejected the pod
      return;
    }
    live.set(name, { name, uid: randomUUID(), leaseId, ip, bound: false, stickyKey });
  };

  /** One webhook call, counted; a 500 (an internal error) fails the run. */
  const call = async (
    replica: Replica,
    a: Admission,
    apiTimeoutMs?: number,
  ): Promise<AdmissionReview> => {
    const { review: answer } = await handleMutate(a.review, { apiTimeoutMs }, replica.deps);
    if (answer.response?.allowed === true) {
      counts.allowed++;
    } else {
      counts.denied++;
      const code = answer.response?.status?.code ?? 0;
      if (code === 500) fail(`internal error: ${answer.response?.status?.message ?? ''}`);
    }
    return answer;
  };

  /** A webhook call whose answer the API server goes by. */
  const admit = async (
    replica: Replica,
    a: Admission,
    apiTimeoutMs?: number,
  ): Promise<AdmissionReview> => {
    const answer = await call(replica, a, apiTimeoutMs);
    if (answer.response?.allowed === true) created(a, answer);
    else if (unanswered(answer)) perhapsReservedBy(a);
    return answer;
  };

  const pool = (): Pool => poolOf(admin.deps.pools);

  /** Waits (up to SETTLE_MS when `settle`) for the store to agree with the model. */
  const checkInvariants = async (settle: boolean): Promise<void> => {
    const started = Date.now();
    const deadline = started + (settle ? SETTLE_MS : 0);
    for (;;) {
      const problem = await findProblem();
      if (problem === undefined) return;
      if (Date.now() >= deadline) {
        fail(
          settle
            ? `${problem} (still so after ${Date.now() - started} ms waiting for late store ` +
                `answers and the webhook's background releases, whose budget is ` +
                `${CLEANUP_BUDGET_MS} ms)`
            : problem,
        );
      }
      await sleep(100);
    }
  };

  /**
   * The reservation of `key` is `ip` as far as the model can tell. An address an unanswered
   * admission asked for, once seen, is where the reservation is from then on: that script has run.
   */
  const reservationAgrees = (key: string, modelIp: string, storeIp: string): boolean => {
    if (storeIp === modelIp) return true;
    if (mayHaveMoved.get(key)?.has(storeIp) !== true) return false;
    reserved.set(key, storeIp);
    mayHaveMoved.delete(key);
    return true;
  };

  const findProblem = async (): Promise<string | undefined> => {
    const p = pool();
    const [leases, reservations, stats] = await Promise.all([
      control.leases(p),
      control.reservations(p),
      control.stats(p),
    ]);
    const liveIps = [...live.values()].map(x => x.ip);
    if (new Set(liveIps).size !== liveIps.length)
      return `two live pods share an address: ${liveIps.join(',')}`;
    const storeIps = leases.map(l => l.ip);
    if (new Set(storeIps).size !== storeIps.length) return 'two store leases share an address';
    const byId = new Map(leases.map(l => [l.id, l]));
    for (const pod of live.values()) {
      const l = byId.get(pod.leaseId);
      if (l === undefined)
        return `pod ${pod.name} lost its acknowledged lease ${pod.leaseId} (${pod.ip})`;
      if (l.ip !== pod.ip) return `pod ${pod.name} has ${pod.ip} but its lease says ${l.ip}`;
    }
    const expected = new Set([...[...live.values()].map(x => x.leaseId), ...orphans]);
    const leaked = leases.filter(l => !expected.has(l.id));
    if (leaked.length > 0) {
      return `${leaked.length} lease(s) left behind by admissions not allowed: ${leaked.map(l => `${l.id}=${l.ip}`).join(', ')}`;
    }
    for (const [key, ip] of reserved) {
      const r = reservations.find(x => x.key === key);
      if (r === undefined) return `reservation ${key} (${ip}) is gone`;
      if (!reservationAgrees(key, ip, r.ip)) {
        const maybe = [...(mayHaveMoved.get(key) ?? [])];
        const or = maybe.length > 0 ? ` (or, unanswered, ${maybe.join(' or ')})` : '';
        return `reservation ${key} is ${r.ip}, the model says ${ip}${or}`;
      }
    }
    const held = new Set([...storeIps, ...reservations.map(r => r.ip)]);
    if (stats.leased !== held.size)
      return `stats.leased ${stats.leased}, distinct held ${held.size}`;
    if (stats.free !== stats.size - held.size) return `stats.free ${stats.free} is not size - held`;
    return undefined;
  };

  const controllerBind = async (): Promise<void> => {
    const unbound = [...live.values()].filter(x => !x.bound);
    if (unbound.length === 0) return;
    const pod = pick(unbound);
    await control.bind(pool(), pod.leaseId, { namespace: NS, name: pod.name, uid: pod.uid });
    pod.bound = true;
  };

  const controllerDelete = async (): Promise<void> => {
    if (live.size === 0) return;
    const pod = pick([...live.values()]);
    const r = await control.release(pool(), pod.leaseId, pod.bound ? { uid: pod.uid } : {});
    if (!r.released)
      fail(`release of live pod ${pod.name} (${pod.leaseId}) freed nothing: ${r.reason ?? ''}`);
    live.delete(pod.name);
  };

  const controllerExpire = async (): Promise<void> => {
    for (const id of [...orphans]) {
      await control.release(pool(), id, { onlyIfPending: true });
      orphans.delete(id);
    }
  };

  const relayout = async (): Promise<void> => {
    counts.relayouts++;
    const r = pick(replicas);
    const variant = pick([0, 1, 2].filter(v => v !== r.variant));
    // Other replicas keep admitting while this one lays the pool out again (on the model's
    // connection: a relayout that timed out would leave the model not knowing the layout).
    const others = replicas.filter(x => x !== r);
    const during = Promise.all(
      others.flatMap(o => [admit(o, newAdmission()), admit(o, newAdmission())]),
    );
    try {
      await control.ensurePool(poolOf(poolsOf(variant)), { initialize: false });
      for (const x of replicas) {
        x.variant = variant;
        x.deps = depsFor(x.store, variant);
      }
    } catch (err) {
      if (!isPoolError(err) || err.code !== 'POOL_SHRINK_REFUSED') throw err;
    }
    await during;
  };

  const stall = async (): Promise<void> => {
    counts.stalls++;
    const batch = Array.from({ length: 4 + Math.floor(random() * 8) }, () => ({
      replica: pick(replicas),
      a: newAdmission(),
    }));
    opts.stall(true);
    const answers = Promise.all(batch.map(b => admit(b.replica, b.a)));
    await sleep(300 + Math.floor(random() * 1200));
    opts.stall(false);
    await answers;
  };

  const retryTwice = async (): Promise<void> => {
    counts.retries++;
    const r = pick(replicas);
    const a = newAdmission();
    // The first answer is lost on its way back (a reset connection), so the API server calls
    // again with the same request (same uid), perhaps on another replica, and goes by that second
    // answer alone. Until then a lease the first call made is one no pod may ever carry.
    const first = await call(r, a);
    if (first.response?.allowed === true) {
      const { leaseId, ip } = leaseOf(first);
      reservedBy(a, ip);
      orphans.add(leaseId);
    } else if (unanswered(first)) {
      perhapsReservedBy(a);
    }
    const again = await admit(pick(replicas), a);
    const l1 = annotationsOf(first)['podlease.io/lease'];
    const l2 = annotationsOf(again)['podlease.io/lease'];
    if (first.response?.allowed === true && again.response?.allowed === true && l1 !== l2) {
      fail(`a retried admission (same uid) got a second lease: ${l1 ?? ''} then ${l2 ?? ''}`);
    }
  };

  const duplicateCreate = async (): Promise<void> => {
    const named = [...live.values()].filter(
      x => x.stickyKey !== undefined || x.name.startsWith('static-'),
    );
    if (named.length === 0) return;
    counts.duplicates++;
    const pod = pick(named);
    const kind: PodKind = pod.name.startsWith('web')
      ? 'sticky'
      : pod.name.startsWith('kafka')
        ? 'iplist'
        : 'static';
    const answer = await admit(pick(replicas), admissionFor(kind, pod.name));
    if (answer.response?.allowed === true) {
      fail(`a duplicate CREATE of running pod ${pod.name} was allowed (its address taken over)`);
    }
  };

  const editIpList = (): Promise<void> => {
    ipListVersion = (ipListVersion + 1) % IP_LISTS.length;
    return Promise.resolve();
  };
  const admitBatch = () =>
    Promise.all(Array.from({ length: 3 }, () => admit(pick(replicas), newAdmission())));
  const all: [string, number, () => Promise<unknown>][] = [
    ['admit', 30, admitBatch],
    ['bind', 8, controllerBind],
    ['delete', 16, controllerDelete],
    ['expire', 4, controllerExpire],
    ['relayout', 3, relayout],
    ['stall', 2, stall],
    ['retry', 4, retryTwice],
    ['duplicate', 4, duplicateCreate],
    ['edit-ip-list', 1, editIpList],
  ];
  // Leave operations out (e.g. to find what else fails once one failure is known).
  const ops = all
    .filter(([name]) => !(opts.skip ?? []).includes(name))
    .map(([, w, f]) => [w, f] as const);
  const total = ops.reduce((n, [w]) => n + w, 0);
  try {
    for (step = 0; step < opts.steps; step++) {
      let x = random() * total;
      const op = ops.find(([w]) => (x -= w) < 0) ?? ops[0];
      await op?.[1]();
      await checkInvariants(true);
    }
  } finally {
    opts.stall(false);
    for (const r of replicas) await r.store.close();
    await control.close();
  }
  return counts;
};
