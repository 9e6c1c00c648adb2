/**
 * What the controller keeps of a pod and of a StatefulSet: a few strings, read from the
 * metadata-only pod watch (annotations, owner, name) and from the StatefulSet watch (replicas,
 * ordinals, the template's retention annotations). 100k pods fit in a few tens of MiB.
 */
import {
  OWNED_ANNOTATIONS,
  parseRetention,
  POD_INDEX_LABEL,
  USER_ANNOTATIONS,
} from '../pool/annotations.js';
import type { RetentionPolicy } from '../pool/store.js';
import type { KubeObject, Slim } from '../k8s/informer.js';

/** One address a pod carries: `podlease.io/lease` entry i with `podlease.io/ip` entry i. */
export interface PodLease {
  readonly pool: string;
  readonly id: string;
  readonly ip: string;
}

export interface PodInfo extends Slim {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly leases: readonly PodLease[];
  /** `<namespace>/<statefulset>/<ordinal>` of a sticky (or ip-list) StatefulSet pod. */
  readonly stickyKey?: string | undefined;
  /** Set once the pod is being deleted (its containers may still run). */
  readonly deleting: boolean;
}

export interface StatefulSetInfo extends Slim {
  readonly uid: string;
  /** `<namespace>/<name>`. */
  readonly key: string;
  readonly replicas: number;
  /** `spec.ordinals.start` (0 when unset). */
  readonly start: number;
  readonly policy: RetentionPolicy;
}

const ORDINAL = /^(0|[1-9]\d{0,8})$/;

const splitList = (value: string | undefined): string[] =>
  value === undefined || value.trim() === '' ? [] : value.split(',').map(s => s.trim());

/** The leases of `podlease.io/lease` (`<pool>/<id>` entries) paired with `podlease.io/ip`. */
export const podLeases = (annotations: Readonly<Record<string, string>>): PodLease[] => {
  const leases = splitList(annotations[OWNED_ANNOTATIONS.lease]);
  const ips = splitList(annotations[OWNED_ANNOTATIONS.ip]);
  const out: PodLease[] = [];
  leases.forEach((entry, i) => {
    const slash = entry.lastIndexOf('/');
    const ip = ips[i];
    if (slash <= 0 || slash === entry.length - 1 || ip === undefined || ip === '') return;
    out.push({ pool: entry.slice(0, slash), id: entry.slice(slash + 1), ip });
  });
  // An array grown by push keeps room for 16 more entries: copied to its size, the leases of
  // 100k pods take ~12 MiB less.
  return out.slice();
};

const askedSticky = (a: Readonly<Record<string, string>>): boolean =>
  a[USER_ANNOTATIONS.sticky] === 'true' || (a[USER_ANNOTATIONS.ipList] ?? '') !== '';

/** The name of the controlling apps/v1 StatefulSet, if that is what controls the pod. */
const controllingStatefulSet = (obj: KubeObject): string | undefined => {
  const owner = obj.metadata?.ownerReferences?.find(r => r.controller === true);
  const isSts = owner?.kind === 'StatefulSet' && owner.apiVersion === 'apps/v1';
  return isSts ? owner.name : undefined;
};

/**
 * The sticky key of a StatefulSet pod that asked for one: its controller is the StatefulSet, its
 * name is `<statefulset>-<ordinal>`, and the pod-index label, when set, agrees (the webhook's
 * proof at admission; the creator was checked then).
 */
const stickyKeyOf = (obj: KubeObject, namespace: string, name: string): string | undefined => {
  if (!askedSticky(obj.metadata?.annotations ?? {})) return undefined;
  const sts = controllingStatefulSet(obj);
  if (sts === undefined) return undefined;
  const suffix = name.startsWith(`${sts}-`) ? name.slice(sts.length + 1) : '';
  if (!ORDINAL.test(suffix)) return undefined;
  const label = obj.metadata?.labels?.[POD_INDEX_LABEL];
  return label === undefined || label === suffix ? `${namespace}/${sts}/${suffix}` : undefined;
};

/** A pod as the controller keeps it; pods without a uid, name or namespace are not kept. */
export const toPodInfo = (obj: KubeObject): PodInfo | undefined => {
  const m = obj.metadata;
  if (m?.uid === undefined || m.name === undefined || m.namespace === undefined) return undefined;
  const leases = podLeases(m.annotations ?? {});
  return {
    rv: m.resourceVersion ?? '',
    uid: m.uid,
    namespace: m.namespace,
    name: m.name,
    leases,
    stickyKey: leases.length === 0 ? undefined : stickyKeyOf(obj, m.namespace, m.name),
    deleting: m.deletionTimestamp !== undefined,
  };
};

interface StatefulSetObject extends KubeObject {
  readonly spec?: {
    readonly replicas?: number;
    readonly ordinals?: { readonly start?: number };
    readonly template?: { readonly metadata?: { readonly annotations?: Record<string, string> } };
  };
}

/** The pod template's retention annotations (over the StatefulSet's own); bad values: Retain. */
const policyOf = (obj: StatefulSetObject): RetentionPolicy =>
  parseRetention({
    ...(obj.metadata?.annotations ?? {}),
    ...(obj.spec?.template?.metadata?.annotations ?? {}),
  }).policy;

export const toStatefulSetInfo = (obj: KubeObject): StatefulSetInfo | undefined => {
  const m = obj.metadata;
  if (m?.uid === undefined || m.name === undefined || m.namespace === undefined) return undefined;
  const spec = (obj as StatefulSetObject).spec;
  return {
    rv: m.resourceVersion ?? '',
    uid: m.uid,
    key: `${m.namespace}/${m.name}`,
    replicas: spec?.replicas ?? 1,
    start: spec?.ordinals?.start ?? 0,
    policy: policyOf(obj),
  };
};

/** `<namespace>/<statefulset>` and the ordinal of a sticky key. */
export const splitStickyKey = (
  key: string,
): { statefulSet: string; ordinal: number } | undefined => {
  const slash = key.lastIndexOf('/');
  const ordinal = key.slice(slash + 1);
  if (slash <= 0 || !ORDINAL.test(ordinal)) return undefined;
  return { statefulSet: key.slice(0, slash), ordinal: Number(ordinal) };
};
