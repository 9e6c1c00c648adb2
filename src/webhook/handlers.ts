/**
 * `/mutate` and `/validate` without HTTP: an AdmissionReview body in, an AdmissionReview out.
 * Errors become denials here, at the edge (respond.ts); a body that is not an AdmissionReview
 * throws BadReviewError for the HTTP layer to answer 400.
 */
import type { WebhookConfig } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import type { PoolSet } from '../pool/pools-file.js';
import { randomUUID } from 'node:crypto';
import { leaseIdForRequest } from '../pool/lease-id.js';
import { StoreUnavailableError } from '../pool/errors.js';
import type { Allocation, LeaseStore } from '../pool/store.js';
import { allocatePlan, ownedAnnotations, releaseClaims, type PodPresence } from './admit.js';
import { decide, type Plan } from './decide.js';
import { Deadline } from './deadline.js';
import { BadPodError, NamespaceUnavailableError } from './errors.js';
import type { Endpoint, Outcome, WebhookMetrics } from './metrics.js';
import type { NamespaceLookup } from './namespaces.js';
import { toAnnotationPatch } from './patch.js';
import { denyWith, toDenial } from './respond.js';
import {
  allow,
  isPodRequest,
  parseAdmissionReview,
  toAdmissionReview,
  toPodView,
} from './review.js';
import type { AdmissionRequest, AdmissionResponse, AdmissionReview } from './types.js';
import { checkUpdate } from './validate.js';

export interface WebhookDeps {
  readonly store: LeaseStore;
  readonly pools: PoolSet;
  readonly namespaces: NamespaceLookup;
  readonly config: WebhookConfig;
  readonly log: Logger;
  readonly metrics?: WebhookMetrics | undefined;
  /** The lease id of an admission request; derived from its uid by default. */
  readonly leaseIdFor?: ((requestUid: string) => string) | undefined;
  readonly now?: (() => number) | undefined;
  /** Asks the API server whether a pod exists (a pending lease for its name may be replaced). */
  readonly pods?: PodPresence | undefined;
  /** How long a release after a failed or late admission keeps retrying. */
  readonly cleanupBudgetMs?: number | undefined;
}

export interface HandleOptions {
  /** The API server's `?timeout=` in ms. */
  readonly apiTimeoutMs?: number | undefined;
  /** When the request arrived (ms since epoch); defaults to now. */
  readonly receivedAt?: number | undefined;
}

export interface Handled {
  readonly review: AdmissionReview;
  readonly outcome: Outcome;
  /** Pools involved, comma-joined ('' when none). */
  readonly pool: string;
}

interface Result {
  readonly response: AdmissionResponse;
  readonly outcome: Outcome;
  readonly pool: string;
  readonly fields?: Record<string, unknown>;
}

const podNamespace = (request: AdmissionRequest, podNs: string | undefined): string => {
  const ns =
    request.namespace !== undefined && request.namespace !== '' ? request.namespace : podNs;
  if (ns === undefined || ns === '') throw new BadPodError('the pod has no namespace');
  return ns;
};

const namespaceAnnotations = async (
  namespaces: NamespaceLookup,
  namespace: string,
): Promise<Readonly<Record<string, string>> | undefined> => {
  try {
    return await namespaces.annotations(namespace);
  } catch (err) {
    throw new NamespaceUnavailableError(namespace, err);
  }
};

const leaseFields = (allocations: readonly Allocation[]): Record<string, unknown> => ({
  ip: allocations.map(a => a.lease.ip).join(','),
  lease: allocations.map(a => `${a.lease.pool}/${a.lease.id}`).join(','),
  reused: allocations.some(a => a.reused),
});

const mutatePod = async (
  request: AdmissionRequest,
  options: HandleOptions,
  deps: WebhookDeps,
): Promise<Result> => {
  const now = deps.now ?? Date.now;
  const pod = toPodView(request.object);
  const namespace = podNamespace(request, pod.namespace);
  const plan: Plan = decide({
    namespace,
    pod,
    namespaceAnnotations: await namespaceAnnotations(deps.namespaces, namespace),
    pools: deps.pools,
    userInfo: request.userInfo,
    statefulSetCreators: deps.config.statefulSetCreators,
  });
  const dryRun = request.dryRun === true;
  if (plan.kind === 'skip') {
    const patch = dryRun ? [] : toAnnotationPatch(pod.annotations, {}, plan.discard);
    return {
      response: allow(request.uid, patch),
      outcome: 'skipped',
      pool: '',
      fields: { reason: plan.reason },
    };
  }
  const pool = plan.claims.map(c => c.pool.name).join(',');
  const deadline = Deadline.forRequest(
    options.receivedAt ?? now(),
    deps.config.storeTimeoutMs,
    options.apiTimeoutMs,
    now,
  );
  const ctx = {
    store: deps.store,
    leaseTtlMs: deps.config.leaseTtlMs,
    leaseId: (deps.leaseIdFor ?? leaseIdForRequest)(request.uid),
    requestUid: request.uid,
    attempt: randomUUID(),
    deadline,
    dryRun,
    log: deps.log,
    now,
    pods: deps.pods,
    pendingTakeoverMs: deps.config.pendingTakeoverMs,
    cleanupBudgetMs: deps.cleanupBudgetMs,
    reuseCooldownMs: deps.config.reuseCooldownMs,
  };
  const allocations = await allocatePlan(plan, ctx);
  if (!dryRun && deadline.tooLateToAnswer()) {
    // The API server has stopped waiting: it will not create this pod with this answer.
    void releaseClaims(plan.claims, ctx, 'the answer would come after the API server gave up');
    throw new StoreUnavailableError(
      'the lease store answered after the API server stopped waiting; nothing was leased',
    );
  }
  if (dryRun) {
    return {
      response: allow(request.uid),
      outcome: 'dry_run',
      pool,
      fields: leaseFields(allocations),
    };
  }
  const patch = toAnnotationPatch(
    pod.annotations,
    ownedAnnotations(plan, allocations),
    plan.discard,
  );
  return {
    response: allow(request.uid, patch),
    outcome: 'allowed',
    pool,
    fields: leaseFields(allocations),
  };
};

const validatePod = (request: AdmissionRequest, deps: WebhookDeps): Result => {
  const pod = toPodView(request.object);
  const oldPod = toPodView(request.oldObject, 'oldObject');
  checkUpdate(oldPod, pod, request.userInfo.username ?? '', deps.config.serviceAccount);
  return { response: allow(request.uid), outcome: 'allowed', pool: '' };
};

const errorPool = (err: unknown): string => {
  const pool = (err as { pool?: unknown } | null)?.pool;
  return typeof pool === 'string' ? pool : '';
};

const answer = async (
  endpoint: Endpoint,
  request: AdmissionRequest,
  options: HandleOptions,
  deps: WebhookDeps,
): Promise<Result> => {
  try {
    if (endpoint === 'mutate') return await mutatePod(request, options, deps);
    return validatePod(request, deps);
  } catch (err) {
    const denial = toDenial(err);
    if (denial.code >= 500) deps.metrics?.storeError('admission', denial.reason);
    return {
      response: denyWith(request.uid, denial),
      outcome: 'denied',
      pool: errorPool(err),
      fields: { code: denial.code, reason: denial.reason, message: denial.message },
    };
  }
};

const podLabel = (object: unknown): string | undefined => {
  const meta = (object as { metadata?: { name?: unknown; generateName?: unknown } } | undefined)
    ?.metadata;
  if (typeof meta?.name === 'string' && meta.name !== '') return meta.name;
  return typeof meta?.generateName === 'string' ? `${meta.generateName}*` : undefined;
};

const logResult = (
  endpoint: Endpoint,
  request: AdmissionRequest,
  result: Result & { readonly seconds: number },
  log: Logger,
): void => {
  const seconds = result.seconds;
  log.info(
    {
      uid: request.uid,
      endpoint,
      namespace: request.namespace,
      pod: podLabel(request.object),
      dryRun: request.dryRun === true,
      outcome: result.outcome,
      pool: result.pool === '' ? undefined : result.pool,
      ms: Math.round(seconds * 1e4) / 10,
      ...result.fields,
    },
    `${endpoint} ${result.outcome}`,
  );
};

const run = async (
  endpoint: Endpoint,
  body: unknown,
  options: HandleOptions,
  deps: WebhookDeps,
): Promise<Handled> => {
  const started = process.hrtime.bigint();
  const { apiVersion, request } = parseAdmissionReview(body);
  const applies =
    isPodRequest(request) && request.operation === (endpoint === 'mutate' ? 'CREATE' : 'UPDATE');
  const result: Result = applies
    ? await answer(endpoint, request, options, deps)
    : { response: allow(request.uid), outcome: 'skipped', pool: '' };
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const code = result.response.status?.code ?? 200;
  deps.metrics?.observeAdmission({
    endpoint,
    outcome: result.outcome,
    pool: result.pool,
    code,
    seconds,
  });
  if (applies) logResult(endpoint, request, { ...result, seconds }, deps.log);
  return {
    review: toAdmissionReview(result.response, apiVersion),
    outcome: result.outcome,
    pool: result.pool,
  };
};

/** `POST /mutate`: pod CREATE. Throws BadReviewError when the body is not an AdmissionReview. */
export const handleMutate = (
  body: unknown,
  options: HandleOptions,
  deps: WebhookDeps,
): Promise<Handled> => run('mutate', body, options, deps);

/** `POST /validate`: pod UPDATE guard. Throws BadReviewError when the body is not an AdmissionReview. */
export const handleValidate = (
  body: unknown,
  options: HandleOptions,
  deps: WebhookDeps,
): Promise<Handled> => run('validate', body, options, deps);
