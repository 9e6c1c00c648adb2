/**
 * The UPDATE guard of `/validate` (docs/design.md §3): the owned annotations and `podlease.io/pool`
 * are podlease's; a change or removal is denied unless podlease's own service account makes it.
 */
import { OWNED_ANNOTATION_KEYS, USER_ANNOTATIONS } from '../pool/annotations.js';
import { OwnedAnnotationChangeError } from './errors.js';
import type { PodView } from './types.js';

export const GUARDED_KEYS: readonly string[] = [...OWNED_ANNOTATION_KEYS, USER_ANNOTATIONS.pool];

/** The guarded keys whose value differs between the old and the new pod. */
export const changedGuardedKeys = (oldPod: PodView, newPod: PodView): string[] => {
  const before = oldPod.annotations ?? {};
  const after = newPod.annotations ?? {};
  return GUARDED_KEYS.filter(k => before[k] !== after[k]);
};

/** Throws OwnedAnnotationChangeError when a pod UPDATE touches guarded keys. */
export const checkUpdate = (
  oldPod: PodView,
  newPod: PodView,
  username: string,
  serviceAccount: string,
): void => {
  if (username === serviceAccount) return;
  const changed = changedGuardedKeys(oldPod, newPod);
  if (changed.length > 0) throw new OwnedAnnotationChangeError(changed, username);
};
