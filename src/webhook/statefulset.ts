/**
 * StatefulSet identity of a pod at admission: the StatefulSet's name from the controlling
 * ownerReference, the ordinal from the `apps.kubernetes.io/pod-index` label or else from the
 * pod's name (`<statefulset>-<ordinal>`; StatefulSet pods are named, never generateName'd).
 */
import { POD_INDEX_LABEL } from '../pool/annotations.js';
import { quote } from '../text/quote.js';
import type { PodView } from './types.js';

export interface StatefulSetIdentity {
  readonly statefulSet: string;
  readonly ordinal: number;
}

const ORDINAL = /^(0|[1-9]\d{0,8})$/;

/** The largest ordinal accepted (nine digits). */
export const MAX_ORDINAL = 999_999_999;

/** The owning StatefulSet's name, or undefined when the pod has none. */
export const statefulSetOwner = (pod: PodView): string | undefined => {
  const owners = pod.ownerReferences.filter(
    r => r.kind === 'StatefulSet' && r.apiVersion.startsWith('apps/'),
  );
  return (owners.find(r => r.controller === true) ?? owners[0])?.name;
};

export type IdentityResult =
  | { readonly ok: true; readonly identity: StatefulSetIdentity }
  | {
      readonly ok: false;
      /** `not-statefulset`: no StatefulSet owns the pod; `bad-ordinal`: one does, but its ordinal is unusable. */
      readonly problem: 'not-statefulset' | 'bad-ordinal';
      readonly reason: string;
    };

export const statefulSetIdentity = (pod: PodView): IdentityResult => {
  const statefulSet = statefulSetOwner(pod);
  if (statefulSet === undefined) {
    return {
      ok: false,
      problem: 'not-statefulset',
      reason: 'it has no ownerReference of kind StatefulSet',
    };
  }
  const label = pod.labels[POD_INDEX_LABEL];
  if (label !== undefined) {
    // The label is the controller's word for the ordinal: an unusable one is not overridden by
    // the name, it is reported.
    if (ORDINAL.test(label)) return { ok: true, identity: { statefulSet, ordinal: Number(label) } };
    return {
      ok: false,
      problem: 'bad-ordinal',
      reason:
        `its ${POD_INDEX_LABEL} label ${quote(label)} is not a valid ordinal (a whole number ` +
        `from 0 to ${MAX_ORDINAL}, without sign, exponent or leading zeros)`,
    };
  }
  const name = pod.name ?? '';
  const prefix = `${statefulSet}-`;
  const suffix = name.startsWith(prefix) ? name.slice(prefix.length) : '';
  if (ORDINAL.test(suffix)) return { ok: true, identity: { statefulSet, ordinal: Number(suffix) } };
  return {
    ok: false,
    problem: 'bad-ordinal',
    reason:
      `its ordinal is unknown: no ${POD_INDEX_LABEL} label and the name ` +
      `${quote(pod.name ?? '')} is not ${quote(`${statefulSet}-<ordinal>`)}`,
  };
};

export const stickyKeyOf = (namespace: string, id: StatefulSetIdentity): string =>
  `${namespace}/${id.statefulSet}/${id.ordinal}`;
