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
import { BadPodError, BadReviewError } from './errors.js';

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const OPERATIONS = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

export interface ParsedReview {
  readonly apiVersion: AdmissionApiVersion;
  readonly request: AdmissionRequest;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Checks the envelope; throws BadReviewError naming what is missing. */
export const parseAdmissionReview = (body: unknown): ParsedReview => {
  if (!isRecord(body))
    throw new BadReviewError('the body is not a JSON object (expected an AdmissionReview)');
  const apiVersion = body.apiVersion;
  if (
    body.kind !== 'AdmissionReview' ||
    !ADMISSION_API_VERSIONS.includes(apiVersion as AdmissionApiVersion)
  ) {
    throw new BadReviewError(
      `expected kind AdmissionReview, apiVersion admission.k8s.io/v1; got kind ${JSON.stringify(body.kind)}, ` +
        `apiVersion ${JSON.stringify(apiVersion)}`,
    );
  }
  const req = body.request;
  if (!isRecord(req)) throw new BadReviewError('the AdmissionReview has no request');
  const uid = str(req.uid);
  if (uid === undefined || uid === '') throw new BadReviewError('request.uid is missing');
  if (!OPERATIONS.has(str(req.operation) ?? '')) {
    throw new BadReviewError(
      `request.operation ${JSON.stringify(req.operation)} is not CREATE, UPDATE, DELETE or CONNECT`,
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
