/**
 * The one place where errors become denials (cert-manager's webhook: error → AdmissionResponse
 * at the edge). Every message names the cause and what to do, prefixed `podlease:` (docs/design.md §6).
 */
import { USER_ANNOTATIONS } from '../pool/annotations.js';
import { describeHolder, isPoolError, type AnyPoolError } from '../pool/errors.js';
import { quote } from '../text/quote.js';
import { isWebhookError } from './errors.js';
import { deny } from './review.js';
import type { AdmissionResponse } from './types.js';

export interface Denial {
  readonly code: number;
  readonly message: string;
  /** The error's `code` discriminant, for logs and metrics. */
  readonly reason: string;
}

const RETRY =
  'the API server retries the pod; if this persists, check that podlease reaches its Redis';

const BOUND_HOLDER = '; choose another address, or delete that pod (or its reservation) first';
const PENDING_HOLDER =
  ' (a pending lease: that pod may still be being created); if it is a pod of this name whose ' +
  'create failed or that is gone, a new pod of the name gets the address once the API server ' +
  'no longer has it and the lease is older than --pending-takeover-after: the API server retries; ' +
  'else choose another address';

const poolDenial = (err: AnyPoolError): Denial => {
  switch (err.code) {
    case 'POOL_EXHAUSTED':
      // Addresses still cooling down come free by themselves: a retry succeeds (503).
      if (err.retryable) {
        return {
          code: 503,
          reason: err.code,
          message:
            `${err.message}; the pod's controller retries and gets one then, or delete pods or ` +
            'sticky reservations that use the pool, or add addresses to it',
        };
      }
      return {
        code: 403,
        reason: err.code,
        message:
          `pool "${err.pool}" is exhausted: ${err.leased} of ${err.size} addresses leased; delete pods ` +
          'or sticky reservations that use it, or add addresses to the pool',
      };
    case 'ADDRESS_IN_USE':
      return {
        code: 409,
        reason: err.code,
        message:
          `address ${err.ip} of pool "${err.pool}" is held by ${describeHolder(err.holder)}` +
          (err.holder.state === 'pending' ? PENDING_HOLDER : BOUND_HOLDER),
      };
    case 'RESERVATION_EXISTS':
      return {
        code: 409,
        reason: err.code,
        message:
          `${err.message}: run \`podlease unreserve --pool ${err.pool} --key ${err.key}\`, or set the ` +
          `annotation back to ${err.ip}`,
      };
    case 'NOT_IN_POOL':
      return {
        code: 400,
        reason: err.code,
        message: `${err.message}; pick an address inside the pool or leave it out`,
      };
    case 'UNKNOWN_POOL':
      return {
        code: 404,
        reason: err.code,
        message:
          `unknown pool ${quote(err.pool)}; known pools: ${err.known.length > 0 ? err.known.join(', ') : '(none)'}; ` +
          `fix the ${USER_ANNOTATIONS.pool} annotation of the pod or its namespace`,
      };
    default:
      return (
        unavailable(err) ?? {
          code: 500,
          reason: err.code,
          message: `internal error: ${err.message}`,
        }
      );
  }
};

/** 503: the store cannot hand out an address now, and says why; a retry may succeed. */
const unavailable = (err: AnyPoolError): Denial | undefined => {
  switch (err.code) {
    case 'POOL_RECOVERING':
    case 'POOL_RECONCILING':
    case 'LAYOUT_MISMATCH':
      return { code: 503, reason: err.code, message: err.message };
    case 'REPLICAS_BEHIND':
      return {
        code: 503,
        reason: err.code,
        message:
          `lease store: ${err.message}; the API server retries the pod; if this persists, check ` +
          "that Redis' replicas are up and keep up (INFO replication)",
      };
    case 'STORE_UNAVAILABLE':
      return { code: 503, reason: err.code, message: `${err.message}; ${RETRY}` };
    default:
      return undefined;
  }
};

/** The status code and message for any error thrown while admitting. */
export const toDenial = (err: unknown): Denial => {
  if (isWebhookError(err)) return { code: err.status, reason: err.code, message: err.message };
  if (isPoolError(err)) return poolDenial(err);
  const message = err instanceof Error ? err.message : String(err);
  return { code: 500, reason: 'INTERNAL', message: `internal error: ${message}` };
};

export const denyWith = (uid: string, denial: Denial): AdmissionResponse =>
  deny(uid, denial.code, denial.message);
