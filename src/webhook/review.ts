/**
 * The AdmissionReview envelope: parse a request (or throw BadReviewError), read the pod out of
 * it, and build responses (Pepr `karForMutate` + cert-manager `badRequestError`).
 */
import {
  ADMISSION_API_VERSIONS,
  type AdmissionApiVersion,
  type AdmissionRequest,
  type AdmissionResponse,
  type AdmissionReview,
  type OwnerReference,
  type PatchOperation,
  type PodView,
} from './types.js';
import { describeValue, quote } from '../text/quote.js';
import { BadPodError, BadReviewError } from './errors.js';

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const OPERATIONS = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

export interface ParsedReview {
  readonly apiVersion: AdmissionApiVersion;
  readonly request: AdmissionRequest;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** `kind "Pod"`, `no kind`, `kind number 3`: a field as found, for a message. */
const found = (name: string, v: unknown): string => {
  if (v === undefined) return `no ${name}`;
  return typeof v === 'string' ? `${name} ${quote(v)}` : `${name} ${describeValue(v)}`;
};

const checkUid = (uid: unknown): void => {
  if (uid === undefined) {
    throw new BadReviewError('request.uid is missing (the API server sends one with every review)');
  }
  if (typeof uid !== 'string') {
    throw new BadReviewError(`request.uid must be a string, got ${describeValue(uid)}`);
  }
  if (uid === '') throw new BadReviewError('request.uid is empty; it must identify the review');
};

/** The body as an AdmissionReview-shaped object, or BadReviewError saying what it is instead. */
const reviewObject = (body: unknown): Record<string, unknown> => {
  if (body === undefined || body === '' || (isRecord(body) && Object.keys(body).length === 0)) {
    throw new BadReviewError('the body is empty; POST an AdmissionReview (a JSON object)');
  }
  if (!isRecord(body)) {
    throw new BadReviewError(
      `the body is not a JSON object but ${describeValue(body)}; POST an AdmissionReview`,
    );
  }
  if (
    body.kind !== 'AdmissionReview' ||
    !ADMISSION_API_VERSIONS.includes(body.apiVersion as AdmissionApiVersion)
  ) {
    throw new BadReviewError(
      `expected kind AdmissionReview, apiVersion admission.k8s.io/v1; got ${found('kind', body.kind)}, ` +
        found('apiVersion', body.apiVersion),
    );
  }
  return body;
};

/** Checks the envelope; throws BadReviewError naming what is missing or wrong. */
export const parseAdmissionReview = (input: unknown): ParsedReview => {
  const body = reviewObject(input);
  const apiVersion = body.apiVersion;
  const req = body.request;
  if (!isRecord(req)) throw new BadReviewError('the AdmissionReview has no request');
  checkUid(req.uid);
  if (!OPERATIONS.has(str(req.operation) ?? '')) {
    throw new BadReviewError(
      `request.operation must be CREATE, UPDATE, DELETE or CONNECT; got ${found('operation', req.operation)}`,
    );
  }
  if (!isRecord(req.kind) || !isRecord(req.resource)) {
    throw new BadReviewError('request.kind and request.resource are required');
  }
  return {
    apiVersion: apiVersion as AdmissionApiVersion,
    request: {
      ...(req as unknown as AdmissionRequest),
      userInfo: isRecord(req.userInfo) ? req.userInfo : {},
      dryRun: req.dryRun === true,
    },
  };
};

/** True for the core/v1 Pod kind (subresources such as pods/status are not the pod). */
export const isPodRequest = (request: AdmissionRequest): boolean =>
  request.kind.group === '' &&
  request.kind.kind === 'Pod' &&
  (request.subResource === undefined || request.subResource === '');

const stringMap = (v: unknown, where: string): Record<string, string> | undefined => {
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v) || !Object.values(v).every(x => typeof x === 'string')) {
    throw new BadPodError(`${where} must map strings to strings`);
  }
  return v as Record<string, string>;
};

const ownerRefs = (v: unknown): OwnerReference[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new BadPodError('metadata.ownerReferences must be a list');
  return v.filter(
    (r): r is OwnerReference =>
      isRecord(r) &&
      typeof r.kind === 'string' &&
      typeof r.name === 'string' &&
      typeof r.apiVersion === 'string',
  );
};

/** Reads the fields podlease needs from a pod object; throws BadPodError on a malformed one. */
export const toPodView = (object: unknown, where = 'object'): PodView => {
  if (!isRecord(object)) throw new BadPodError(`request.${where} is not a pod`);
  const meta = object.metadata;
  if (!isRecord(meta)) throw new BadPodError(`request.${where}.metadata is missing`);
  const spec = isRecord(object.spec) ? object.spec : {};
  return {
    name: str(meta.name) === '' ? undefined : str(meta.name),
    generateName: str(meta.generateName) === '' ? undefined : str(meta.generateName),
    namespace: str(meta.namespace) === '' ? undefined : str(meta.namespace),
    annotations: stringMap(meta.annotations, 'metadata.annotations'),
    labels: stringMap(meta.labels, 'metadata.labels') ?? {},
    ownerReferences: ownerRefs(meta.ownerReferences),
    hostNetwork: spec.hostNetwork === true,
  };
};

export const toAdmissionReview = (
  response: AdmissionResponse,
  apiVersion: AdmissionApiVersion = 'admission.k8s.io/v1',
): AdmissionReview => ({ apiVersion, kind: 'AdmissionReview', response });

export const allow = (
  uid: string,
  patch?: readonly PatchOperation[],
  warnings?: readonly string[],
): AdmissionResponse => {
  const base =
    warnings !== undefined && warnings.length > 0
      ? { uid, allowed: true, warnings }
      : { uid, allowed: true };
  if (patch === undefined || patch.length === 0) return base;
  return {
    ...base,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
  };
};

export const MESSAGE_PREFIX = 'podlease: ';

/** A denial; the message is prefixed `podlease:` once. */
export const deny = (uid: string, code: number, message: string): AdmissionResponse => ({
  uid,
  allowed: false,
  status: {
    code,
    message: message.startsWith(MESSAGE_PREFIX) ? message : MESSAGE_PREFIX + message,
  },
});
