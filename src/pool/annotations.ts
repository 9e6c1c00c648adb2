/**
 * Pod annotation keys, the external contract of docs/design.md §3. Shared by the webhook (writes the
 * owned keys), the controller (reads them to bind and rebuild) and the CNI plugin (reads them at
 * ADD time). Node built-ins only: the CNI plugin imports this on its start-up path.
 */
import { quote } from '../text/quote.js';
import type { RetentionAction, RetentionPolicy } from './store.js';
export const ANNOTATION_PREFIX = 'podlease.io/';

/** Set by users on a pod, a pod template or (for `pool`) a namespace. */
export const USER_ANNOTATIONS = {
  pool: 'podlease.io/pool',
  staticIp: 'podlease.io/static-ip',
  sticky: 'podlease.io/sticky',
  ipList: 'podlease.io/ip-list',
  whenScaled: 'podlease.io/when-scaled',
  whenDeleted: 'podlease.io/when-deleted',
  ignore: 'podlease.io/ignore',
} as const;

/** Written by podlease only; values arriving on CREATE are discarded and replaced. */
export const OWNED_ANNOTATIONS = {
  ip: 'podlease.io/ip',
  cidr: 'podlease.io/cidr',
  gateway: 'podlease.io/gateway',
  lease: 'podlease.io/lease',
} as const;

export type OwnedAnnotation = (typeof OWNED_ANNOTATIONS)[keyof typeof OWNED_ANNOTATIONS];

export const OWNED_ANNOTATION_KEYS: readonly string[] = Object.values(OWNED_ANNOTATIONS);

/** Label the StatefulSet controller sets on its pods (Kubernetes ≥ 1.28). */
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';

/**
 * Most entries `podlease.io/ip-list` may hold, both families together: a StatefulSet of up to
 * 4096 single-stack or 2048 dual-stack ordinals. The value is bounded before it is parsed.
 */
export const IP_LIST_MAX_ENTRIES = 4096;

/** `podlease.io/static-ip` holds one address per family. */
export const STATIC_IP_MAX_ENTRIES = 2;

/**
 * Most characters an address list may spend per entry (the longest IPv6 text is 45 characters;
 * the rest is room for spaces around the commas): a longer value is refused before it is split.
 */
export const ADDRESS_ENTRY_MAX_CHARS = 64;

export const isRetentionAction = (v: unknown): v is RetentionAction =>
  v === 'Retain' || v === 'Delete';

/** A StatefulSet that sets neither annotation: keep an ordinal scaled away, drop all on delete. */
export const DEFAULT_RETENTION: RetentionPolicy = Object.freeze({
  whenScaled: 'Retain',
  whenDeleted: 'Delete',
});

export interface RetentionParse {
  /** The policy: the defaults for what is not set, `Retain` for a value that is not valid. */
  readonly policy: RetentionPolicy;
  /** One line per bad value, e.g. `podlease.io/when-scaled: "Keep" is not Retain or Delete`. */
  readonly errors: readonly string[];
}

/**
 * `podlease.io/when-scaled` and `podlease.io/when-deleted` from a StatefulSet's annotations (or
 * its pod template's). A bad value is reported and read as `Retain`: nothing is released on a
 * value nobody meant, and fixing the annotation still releases later.
 */
export const parseRetention = (
  annotations: Readonly<Record<string, string>> | undefined,
): RetentionParse => {
  const errors: string[] = [];
  const read = (key: string, fallback: RetentionAction): RetentionAction => {
    const value = annotations?.[key];
    if (value === undefined) return fallback;
    if (isRetentionAction(value)) return value;
    errors.push(`${key}: ${quote(value)} is not Retain or Delete`);
    return 'Retain';
  };
  const policy = {
    whenScaled: read(USER_ANNOTATIONS.whenScaled, DEFAULT_RETENTION.whenScaled),
    whenDeleted: read(USER_ANNOTATIONS.whenDeleted, DEFAULT_RETENTION.whenDeleted),
  };
  return { policy, errors };
};
