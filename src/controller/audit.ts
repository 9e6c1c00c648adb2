/**
 * The audit: every lease and reservation of a pool compared with the pods (and StatefulSets) the
 * API server has. Pure: the controller's reconcile and `podlease check` both call it and then
 * decide what to do with the findings (`repair.ts`). A finding only says what was seen; a repair
 * that frees an address first confirms it with a fresh read of the API server.
 */
import type { LeaseRecord, Reservation, RetentionPolicy } from '../pool/store.js';
import { splitStickyKey, type PodInfo, type StatefulSetInfo } from './pod-info.js';

/** What the audit can find (the metric `podlease_reconcile_findings` has one series each). */
export const FINDING_KINDS = [
  /** A bound lease whose pod (by UID) is gone: its address should go back. */
  'leaked',
  /** A lease of a pod that has finished (Succeeded or Failed). */
  'finished',
  /** A pod carries a lease id the store does not have. */
  'missing',
  /** A lease bound to one pod UID while another pod carries its id. */
  'uid-conflict',
  /** Two live pods carry one address of a pool. */
  'duplicate-address',
  /** A reservation of a StatefulSet that is gone, whose policy is `when-deleted: Delete`. */
  'statefulset-gone',
  /** A reservation of an ordinal a StatefulSet scaled below, under `when-scaled: Delete`. */
  'scaled-down',
  /** A pending lease whose pod exists: bind it. */
  'unbound',
] as const;

export type FindingKind = (typeof FINDING_KINDS)[number];

export interface Finding {
  readonly kind: FindingKind;
  readonly pool: string;
  readonly message: string;
  readonly leaseId?: string | undefined;
  readonly ip?: string | undefined;
  /** The pod the finding is about (the one carrying the id, or the lease's recorded pod). */
  readonly pod?: {
    readonly namespace: string;
    readonly name: string;
    readonly uid?: string | undefined;
  };
  /** The other pod of a conflict. */
  readonly other?: {
    readonly namespace: string;
    readonly name: string;
    readonly uid?: string | undefined;
  };
  readonly key?: string | undefined;
}

/** Whether a finding is a problem a person should know of (exit 1 of `podlease check`). */
export const isProblem = (f: Finding): boolean => f.kind !== 'unbound';

export interface AuditInput {
  readonly pool: string;
  readonly leases: readonly LeaseRecord[];
  readonly reservations: readonly Reservation[];
  /** Live pods (not finished), by UID. */
  readonly pods: ReadonlyMap<string, PodInfo>;
  /** UIDs of finished pods (phase Succeeded or Failed) with their info. */
  readonly finished: ReadonlyMap<string, PodInfo>;
  /** StatefulSets by `<namespace>/<name>`. */
  readonly statefulSets: ReadonlyMap<string, StatefulSetInfo>;
  /** Retention policies of StatefulSets podlease has seen, by `<namespace>/<name>`. */
  readonly policies: ReadonlyMap<string, RetentionPolicy>;
}

const podOf = (p: PodInfo): { namespace: string; name: string; uid: string } => ({
  namespace: p.namespace,
  name: p.name,
  uid: p.uid,
});

const recordPod = (l: LeaseRecord): Finding['pod'] => ({
  namespace: l.namespace,
  name: l.name ?? `${l.generateName ?? ''}*`,
  uid: l.uid,
});

/** Lease id → the live pods carrying it in this pool. */
const carriers = (input: AuditInput): Map<string, PodInfo[]> => {
  const byId = new Map<string, PodInfo[]>();
  for (const pod of input.pods.values()) {
    for (const l of pod.leases) {
      if (l.pool !== input.pool) continue;
      const list = byId.get(l.id);
      if (list === undefined) byId.set(l.id, [pod]);
      else list.push(pod);
    }
  }
  return byId;
};

const boundFindings = (
  pool: string,
  lease: LeaseRecord,
  pods: readonly PodInfo[],
  live: ReadonlyMap<string, PodInfo>,
): Finding[] => {
  const base = { pool, leaseId: lease.id, ip: lease.ip };
  const who = `pod ${lease.namespace}/${lease.name ?? ''} (uid ${lease.uid ?? ''})`;
  const out: Finding[] = pods
    .filter(p => p.uid !== lease.uid)
    .map(other => ({
      ...base,
      kind: 'uid-conflict' as const,
      pod: recordPod(lease),
      other: podOf(other),
      message: `lease ${pool}/${lease.id} (${lease.ip}) is bound to ${who} but pod ${other.namespace}/${other.name} (uid ${other.uid}) carries it too`,
    }));
  const held = pods.some(p => p.uid === lease.uid);
  if (!held && lease.uid !== undefined && !live.has(lease.uid)) {
    out.push({
      ...base,
      kind: 'leaked',
      pod: recordPod(lease),
      key: lease.stickyKey,
      message: `lease ${pool}/${lease.id} (${lease.ip}) is bound to ${who}, which is gone`,
    });
  }
  return out;
};

const oneLease = (
  input: AuditInput,
  lease: LeaseRecord,
  pods: readonly PodInfo[],
  finishedIds: ReadonlySet<string>,
): Finding[] => {
  const base = { pool: input.pool, leaseId: lease.id, ip: lease.ip };
  if (finishedIds.has(lease.id) && pods.length === 0) {
    return [
      {
        ...base,
        kind: 'finished',
        pod: recordPod(lease),
        message: `lease ${input.pool}/${lease.id} (${lease.ip}) belongs to a finished pod`,
      },
    ];
  }
  if (lease.state === 'bound') return boundFindings(input.pool, lease, pods, input.pods);
  const first = pods[0];
  if (first === undefined) return [];
  return [
    {
      ...base,
      kind: 'unbound',
      pod: podOf(first),
      message: `pending lease ${input.pool}/${lease.id} (${lease.ip}) is carried by pod ${first.namespace}/${first.name}`,
    },
  ];
};

const leaseFindings = (
  input: AuditInput,
  byId: ReadonlyMap<string, PodInfo[]>,
  out: Finding[],
): void => {
  const finishedIds = new Set<string>();
  for (const pod of input.finished.values()) {
    for (const l of pod.leases) if (l.pool === input.pool) finishedIds.add(l.id);
  }
  for (const lease of input.leases) {
    out.push(...oneLease(input, lease, byId.get(lease.id) ?? [], finishedIds));
  }
};

const podFindings = (input: AuditInput, out: Finding[]): void => {
  const known = new Set(input.leases.map(l => l.id));
  const byIp = new Map<string, PodInfo>();
  for (const pod of input.pods.values()) {
    for (const l of pod.leases) {
      if (l.pool !== input.pool) continue;
      if (!known.has(l.id)) {
        out.push({
          kind: 'missing',
          pool: input.pool,
          leaseId: l.id,
          ip: l.ip,
          pod: podOf(pod),
          key: pod.stickyKey,
          message: `pod ${pod.namespace}/${pod.name} carries lease ${input.pool}/${l.id} (${l.ip}), which the store does not have`,
        });
      }
      const seen = byIp.get(l.ip);
      if (seen !== undefined && seen.uid !== pod.uid) {
        out.push({
          kind: 'duplicate-address',
          pool: input.pool,
          ip: l.ip,
          leaseId: l.id,
          pod: podOf(seen),
          other: podOf(pod),
          message: `pods ${seen.namespace}/${seen.name} and ${pod.namespace}/${pod.name} both carry ${l.ip} of pool ${input.pool}`,
        });
      } else {
        byIp.set(l.ip, pod);
      }
    }
  }
};

const reservationFindings = (input: AuditInput, out: Finding[]): void => {
  const heldKeys = new Set<string>();
  for (const pod of input.pods.values())
    if (pod.stickyKey !== undefined) heldKeys.add(pod.stickyKey);
  for (const r of input.reservations) {
    const split = splitStickyKey(r.key);
    if (split === undefined || heldKeys.has(r.key)) continue;
    const sts = input.statefulSets.get(split.statefulSet);
    const base = { pool: input.pool, key: r.key, ip: r.ip, leaseId: r.leaseId };
    if (sts === undefined) {
      const policy = input.policies.get(split.statefulSet);
      // A reservation of a StatefulSet never seen (made ahead with `podlease reserve`) is kept.
      if (policy?.whenDeleted === 'Delete') {
        out.push({
          ...base,
          kind: 'statefulset-gone',
          message: `reservation ${r.key} (${r.ip}) of pool ${input.pool}: StatefulSet ${split.statefulSet} is gone and its when-deleted is Delete`,
        });
      }
      continue;
    }
    const inRange = split.ordinal >= sts.start && split.ordinal < sts.start + sts.replicas;
    if (!inRange && sts.policy.whenScaled === 'Delete') {
      out.push({
        ...base,
        kind: 'scaled-down',
        message: `reservation ${r.key} (${r.ip}) of pool ${input.pool}: StatefulSet ${split.statefulSet} has ordinals ${sts.start}..${sts.start + sts.replicas - 1} and its when-scaled is Delete`,
      });
    }
  }
};

export const audit = (input: AuditInput): Finding[] => {
  const out: Finding[] = [];
  leaseFindings(input, carriers(input), out);
  podFindings(input, out);
  reservationFindings(input, out);
  return out;
};
