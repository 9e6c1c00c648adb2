/**
 * The `admission.k8s.io/v1` wire types the webhook reads and writes, with upstream field names
 * (k8s.io/api/admission/v1). Only the fields podlease looks at are typed; the rest pass through.
 */

export const ADMISSION_API_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;
export type AdmissionApiVersion = (typeof ADMISSION_API_VERSIONS)[number];

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface GroupVersionResource {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
}

export interface UserInfo {
  readonly username?: string | undefined;
  readonly uid?: string | undefined;
  readonly groups?: readonly string[] | undefined;
}

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionRequest {
  /** Identifies this admission call; echoed in the response. */
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly resource: GroupVersionResource;
  readonly subResource?: string | undefined;
  /** Name of the object; empty on CREATE for pods from `generateName`. */
  readonly name?: string | undefined;
  readonly namespace?: string | undefined;
  readonly operation: Operation;
  readonly userInfo: UserInfo;
  readonly object?: unknown;
  readonly oldObject?: unknown;
  /** Side effects must not be persisted (`sideEffects: NoneOnDryRun`). */
  readonly dryRun?: boolean | undefined;
}

export interface Status {
  readonly code: number;
  readonly message: string;
  readonly reason?: string | undefined;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: Status | undefined;
  /** base64 of a JSONPatch document. */
  readonly patch?: string | undefined;
  readonly patchType?: 'JSONPatch' | undefined;
  readonly warnings?: readonly string[] | undefined;
  readonly auditAnnotations?: Readonly<Record<string, string>> | undefined;
}

export interface AdmissionReview {
  readonly apiVersion: AdmissionApiVersion;
  readonly kind: 'AdmissionReview';
  readonly request?: AdmissionRequest | undefined;
  readonly response?: AdmissionResponse | undefined;
}

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid?: string | undefined;
  readonly controller?: boolean | undefined;
}

/** The parts of a Pod the webhook reads, checked by `toPodView`. */
export interface PodView {
  readonly name?: string | undefined;
  readonly generateName?: string | undefined;
  readonly namespace?: string | undefined;
  /** Present on the object as sent; `undefined` means the key is absent (patch must create it). */
  readonly annotations: Readonly<Record<string, string>> | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly ownerReferences: readonly OwnerReference[];
  readonly hostNetwork: boolean;
}

/** One RFC 6902 operation, as podlease writes them. */
export type PatchOperation =
  | { readonly op: 'add'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string };
