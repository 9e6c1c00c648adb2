/**
 * StatefulSet identity of a pod at admission: the StatefulSet's name from the controlling
 * ownerReference, the ordinal from the `apps.kubernetes.io/pod-index` label or else from the
 * pod's name (`<statefulset>-<ordinal>`; StatefulSet pods are named, never generateName'd).
 */
import { POD_INDEX_LABEL } from '../pool/annotations.js';
import type { PodView } from './types.js';

export interface StatefulSetIdentity {
  readonly statefulSet: string;
  readonly ordinal: number;
}

const ORDINAL = /^(0|[1-9]\d{0,8})$/;

/** The owning StatefulSet's name, or undefined when the pod has none. */
export const statefulSetOwner = (pod: PodView): string | undefined => {
  const owners = pod.ownerReferences.filter(
    r => r.kind === 'StatefulSet' && r.apiVersion.startsWith('apps/'),
  );
  return (owners.find(r => r.controller === true) ?? owners[0])?.name;
};

export type IdentityResult =
  | { readonly ok: true; readonly identity: StatefulSetIdentity }
  | { readonly ok: false; readonly reason: string };

export const statefulSetIdentity = (pod: PodView): IdentityResult => {
  const statefulSet = statefulSetOwner(pod);
  if (statefulSet === undefined) {
    return { ok: false, reason: 'it has no ownerReference of kind StatefulSet' };
  }
  const label = pod.labels[POD_INDEX_LABEL];
  if (label !== undefined && ORDINAL.test(label)) {
    return { ok: true, identity: { statefulSet, ordinal: Number(label) } };
  }
  const name = pod.name ?? '';
  const prefix = `${statefulSet}-`;
  const suffix = name.startsWith(prefix) ? name.slice(prefix.length) : '';
  if (ORDINAL.test(suffix)) return { ok: true, identity: { statefulSet, ordinal: Number(suffix) } };
  return {
    ok: false,
    reason:
      `its ordinal is unknown: no ${POD_INDEX_LABEL} label and the name ` +
      `${JSON.stringify(pod.name ?? '')} is not "${statefulSet}-<ordinal>"`,
  };
};

export const stickyKeyOf = (namespace: string, id: StatefulSetIdentity): string =>
  `${namespace}/${id.statefulSet}/${id.ordinal}`;
