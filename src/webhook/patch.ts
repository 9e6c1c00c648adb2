/**
 * JSONPatch (RFC 6902) for the owned annotations: creates `metadata.annotations` when the pod has
 * none, escapes `~` and `/` in keys (RFC 6901: `~0`, `~1`), removes owned keys that arrived on
 * CREATE and that podlease does not set itself.
 */
import type { PatchOperation } from './types.js';

/** RFC 6901 reference token: `~` → `~0`, `/` → `~1`. */
export const escapePointer = (token: string): string =>
  token.replace(/~/g, '~0').replace(/\//g, '~1');

const annotationPath = (key: string): string => `/metadata/annotations/${escapePointer(key)}`;

/**
 * Operations that set `set` and remove `remove` on a pod whose annotations are `current`
 * (`undefined` when the pod has no `metadata.annotations`).
 */
export const toAnnotationPatch = (
  current: Readonly<Record<string, string>> | undefined,
  set: Readonly<Record<string, string>>,
  remove: readonly string[] = [],
): PatchOperation[] => {
  const toRemove = current === undefined ? [] : remove.filter(k => k in current && !(k in set));
  if (current === undefined) {
    return Object.keys(set).length === 0
      ? []
      : [{ op: 'add', path: '/metadata/annotations', value: { ...set } }];
  }
  const ops: PatchOperation[] = toRemove.map(k => ({ op: 'remove', path: annotationPath(k) }));
  for (const [key, value] of Object.entries(set)) {
    if (current[key] !== value) ops.push({ op: 'add', path: annotationPath(key), value });
  }
  return ops;
};

/** Applies a patch made by `toAnnotationPatch` to annotations (tests, dry runs, logs). */
export const applyAnnotationPatch = (
  current: Readonly<Record<string, string>> | undefined,
  ops: readonly PatchOperation[],
): Record<string, string> | undefined => {
  let out = current === undefined ? undefined : new Map(Object.entries(current));
  const prefix = '/metadata/annotations/';
  for (const op of ops) {
    if (op.path === '/metadata/annotations' && op.op === 'add') {
      out = new Map(Object.entries(op.value as Record<string, string>));
      continue;
    }
    if (!op.path.startsWith(prefix) || out === undefined) {
      throw new Error(`unexpected patch path ${op.path}`);
    }
    const key = op.path.slice(prefix.length).replace(/~1/g, '/').replace(/~0/g, '~');
    if (op.op === 'remove') out.delete(key);
    else out.set(key, op.value as string);
  }
  return out === undefined ? undefined : Object.fromEntries(out);
};
