/**
 * Typed errors of the admission webhook, each with a literal `code` and the `status.code` the
 * denial carries (docs/design.md §6). Store errors keep their own classes (pool/errors.ts); both are
 * turned into an AdmissionResponse in one place, `toDenial` in respond.ts.
 */

abstract class WebhookError extends Error {
  abstract readonly code: string;
  /** `status.code` of the denial. */
  abstract readonly status: number;
  readonly retryable = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The body is not an AdmissionReview at all: HTTP 400 with a JSON error, not a denial. */
export class BadReviewError extends WebhookError {
  readonly code = 'BAD_REVIEW' as const;
  readonly status = 400;
}

/** A podlease annotation whose value cannot be used (400). */
export class BadAnnotationError extends WebhookError {
  readonly code = 'BAD_ANNOTATION' as const;
  readonly status = 400;
  readonly annotation: string;
  constructor(annotation: string, message: string) {
    super(message);
    this.annotation = annotation;
  }
}

/** A static or listed address that is not an allocatable address of the pool (400). */
export class AddressOutsidePoolError extends WebhookError {
  readonly code = 'ADDRESS_OUTSIDE_POOL' as const;
  readonly status = 400;
}

/** The pod object in the review is malformed (400). */
export class BadPodError extends WebhookError {
  readonly code = 'BAD_POD' as const;
  readonly status = 400;
}

/** The namespace may not draw from the pool (403). */
export class NamespaceNotAllowedError extends WebhookError {
  readonly code = 'NAMESPACE_NOT_ALLOWED' as const;
  readonly status = 403;
  readonly pool: string;
  readonly namespace: string;
  constructor(pool: string, namespace: string, allowed: readonly string[]) {
    super(
      `namespace "${namespace}" may not use pool "${pool}" (it allows: ${allowed.join(', ')}); ` +
        `choose another pool with the podlease.io/pool annotation, or add "${namespace}" to the ` +
        `pool's namespaces`,
    );
    this.pool = pool;
    this.namespace = namespace;
  }
}

/** An UPDATE that touches an annotation only podlease may write (403). */
export class OwnedAnnotationChangeError extends WebhookError {
  readonly code = 'OWNED_ANNOTATION_CHANGE' as const;
  readonly status = 403;
  readonly keys: readonly string[];
  constructor(keys: readonly string[], username: string) {
    super(
      `${keys.join(', ')} ${keys.length === 1 ? 'is' : 'are'} set by podlease and cannot be changed ` +
        `or removed on a running pod (by ${username === '' ? 'an unknown user' : username}); ` +
        'delete and recreate the pod to get a new address or pool',
    );
    this.keys = keys;
  }
}

/**
 * A sticky pod (`podlease.io/sticky` or `ip-list`) created by a user who may not create
 * StatefulSet pods (403): anyone could copy a StatefulSet pod's ownerReference and take its
 * address.
 */
export class StatefulSetCreatorError extends WebhookError {
  readonly code = 'STATEFULSET_CREATOR_NOT_ALLOWED' as const;
  readonly status = 403;
  readonly annotation: string;
  readonly username: string;
  constructor(annotation: string, pod: string, username: string, allowed: readonly string[]) {
    super(
      `${annotation}: pod ${pod} was created by ${username === '' ? 'an unknown user' : JSON.stringify(username)}, ` +
        `which may not create StatefulSet pods (allowed: ${allowed.length > 0 ? allowed.join(', ') : '(none)'}); ` +
        'sticky addresses are for pods made by the StatefulSet controller; if the controller runs ' +
        'as another user, set --statefulset-creators',
    );
    this.annotation = annotation;
    this.username = username;
  }
}

/**
 * The pod's namespace is not in the cache and the API server did not answer for it (503): the
 * API server retries the pod, rather than podlease guessing the namespace has no pool.
 */
export class NamespaceUnavailableError extends WebhookError {
  readonly code = 'NAMESPACE_UNAVAILABLE' as const;
  readonly status = 503;
  readonly namespace: string;
  constructor(namespace: string, cause: unknown) {
    super(
      `cannot read namespace "${namespace}" (for its podlease.io/pool annotation): it is not in ` +
        `the namespace cache yet and the API server lookup failed: ` +
        `${cause instanceof Error ? cause.message : String(cause)}; the API server retries the ` +
        'pod; if this persists, check that podlease reaches the API server and may get namespaces',
      { cause },
    );
    this.namespace = namespace;
  }
}

export type AnyWebhookError =
  | BadReviewError
  | BadAnnotationError
  | AddressOutsidePoolError
  | BadPodError
  | NamespaceNotAllowedError
  | OwnedAnnotationChangeError
  | StatefulSetCreatorError
  | NamespaceUnavailableError;

export const isWebhookError = (err: unknown): err is AnyWebhookError => err instanceof WebhookError;

/** The API server could not say whether a pod exists (needed before replacing its lease). */
export class PodLookupError extends WebhookError {
  readonly code = 'POD_LOOKUP_FAILED' as const;
  readonly status = 503;
}
