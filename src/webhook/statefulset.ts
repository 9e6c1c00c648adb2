/**
 * StatefulSet identity of a pod at admission, proven before a sticky address is handed out (a
 * pod that copies another pod's ownerReference and pod-index label must not take its address):
 *
 * - the owner is the ownerReference with `controller: true`, of kind StatefulSet, apps/v1;
 * - the pod is named `<statefulset>-<ordinal>` (StatefulSet pods are always named, never
 *   generateName'd), and the `apps.kubernetes.io/pod-index` label, when present, is a valid
 *   ordinal that agrees with the name;
 * - the request comes from a creator allowed to make StatefulSet pods (`creatorAllowed`,
 *   `--statefulset-creators`): the StatefulSet controller, which runs as
 *   `system:serviceaccount:kube-system:statefulset-controller` when kube-controller-manager uses
 *   per-controller credentials (kubeadm), else as `system:kube-controller-manager`.
 */
import { POD_INDEX_LABEL } from '../pool/annotations.js';
import { quote } from '../text/quote.js';
import type { PodView } from './types.js';

export interface StatefulSetIdentity {
  readonly statefulSet: string;
  readonly ordinal: number;
}

const ORDINAL = /^(0|[1-9]\d{0,8})$/;

/** Which proof failed: `owner` means the pod does not claim to be a StatefulSet pod at all. */
export type IdentityCheck = 'owner' | 'name' | 'label';

export type IdentityResult =
  | { readonly ok: true; readonly identity: StatefulSetIdentity }
  | { readonly ok: false; readonly check: IdentityCheck; readonly reason: string };

/** The largest ordinal accepted (nine digits). */
export const MAX_ORDINAL = 999_999_999;

const fail = (check: IdentityCheck, reason: string): IdentityResult => ({
  ok: false,
  check,
  reason,
});

/** The controlling StatefulSet's name, or why the pod has none. */
const controllingStatefulSet = (pod: PodView): { name: string } | { reason: string } => {
  const controller = pod.ownerReferences.find(r => r.controller === true);
  if (controller?.kind === 'StatefulSet' && controller.apiVersion === 'apps/v1') {
    return { name: controller.name };
  }
  const sts =
    controller?.kind === 'StatefulSet'
      ? controller
      : pod.ownerReferences.find(r => r.kind === 'StatefulSet');
  if (sts?.controller === true) {
    return {
      reason: `its controller ownerReference to StatefulSet ${sts.name} has apiVersion ${JSON.stringify(sts.apiVersion)}, not apps/v1`,
    };
  }
  if (sts !== undefined) {
    return {
      reason:
        `its ownerReference to StatefulSet ${sts.name} is not the controller ` +
        '(only the ownerReference with controller: true counts)',
    };
  }
  return { reason: 'it has no ownerReference of kind StatefulSet' };
};

const describePodName = (pod: PodView): string =>
  pod.name !== undefined && pod.name !== ''
    ? quote(pod.name)
    : `(not named, generateName ${quote(pod.generateName ?? '')})`;

/** The owner, the name and the pod-index label; the creator is checked by `creatorAllowed`. */
export const statefulSetIdentity = (pod: PodView): IdentityResult => {
  const owner = controllingStatefulSet(pod);
  if (!('name' in owner)) return fail('owner', owner.reason);
  const statefulSet = owner.name;
  // An unusable label is reported as such, whatever the name says.
  const label = pod.labels[POD_INDEX_LABEL];
  if (label !== undefined && !ORDINAL.test(label)) {
    return fail(
      'label',
      `the ${POD_INDEX_LABEL} label ${quote(label)} is not a valid ordinal (a whole number ` +
        `from 0 to ${MAX_ORDINAL}, without sign, exponent or leading zeros)`,
    );
  }
  const name = pod.name ?? '';
  const prefix = `${statefulSet}-`;
  const suffix = name.startsWith(prefix) ? name.slice(prefix.length) : '';
  if (!ORDINAL.test(suffix)) {
    return fail(
      'name',
      `pod ${describePodName(pod)} is not named ${statefulSet}-<ordinal>, as every pod of ` +
        `StatefulSet ${statefulSet} is`,
    );
  }
  const ordinal = Number(suffix);
  if (label !== undefined && Number(label) !== ordinal) {
    return fail(
      'label',
      `the ${POD_INDEX_LABEL} label says ${label} but the name ${quote(name)} says ` +
        `ordinal ${ordinal}`,
    );
  }
  return { ok: true, identity: { statefulSet, ordinal } };
};

/** The creator check: only the StatefulSet controller's usernames may create StatefulSet pods. */
export const creatorAllowed = (username: string, creators: readonly string[]): boolean =>
  username !== '' && creators.includes(username);

export const stickyKeyOf = (namespace: string, id: StatefulSetIdentity): string =>
  `${namespace}/${id.statefulSet}/${id.ordinal}`;
