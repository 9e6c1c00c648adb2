/**
 * CNI error codes and the typed error the plugin throws (CNI SPEC 1.1 "Error").
 *
 * Codes 1–99 are the spec's well-known ones; 100 and up are podlease's own, part of the
 * plugin's contract (a runtime or an operator may match on them). `ioFailure` (5) is defined
 * but nothing throws it today; docs/cni.md lists the codes that are produced:
 *
 * | code | meaning                                                                     |
 * | ---- | --------------------------------------------------------------------------- |
 * | 1    | incompatible CNI version (unsupported `cniVersion`, or a verb it lacks)     |
 * | 4    | invalid or missing `CNI_*` environment variable (the message names it)      |
 * | 5    | I/O failure: stdin, the kubeconfig or a file it names could not be read     |
 * | 6    | failed to decode stdin (not JSON, not an object)                            |
 * | 7    | invalid network configuration (`ipam`, kubeconfig content, a redirect)      |
 * | 11   | try again later: API server unreachable, 5xx/429, or an answer not a pod    |
 * | 50   | STATUS: the plugin is not available (API server unreachable)                |
 * | 100  | the pod carries no `podlease.io/ip`: the webhook did not admit it            |
 * | 101  | the pod's podlease annotations are malformed                                |
 * | 102  | the pod found is not the one being set up (UID mismatch: it was replaced)   |
 * | 103  | CHECK: the pod's address no longer matches the previous result              |
 * | 104  | the pod does not exist in the API server (404)                              |
 * | 105  | the API server refused the request (401/403 or another 4xx): credentials/RBAC |
 * | 106  | the pod is marked `podlease.io/ignore: "true"` yet the IPAM plugin was asked |
 * | 999  | internal error: a bug in the plugin (libcni's `ErrInternal`)                 |
 */
export const CNI_ERROR = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  invalidEnv: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  podNotAdmitted: 100,
  badAnnotation: 101,
  podUidMismatch: 102,
  checkMismatch: 103,
  podNotFound: 104,
  apiServerRefused: 105,
  podIgnored: 106,
  internal: 999,
} as const;

export type CniErrorCode = (typeof CNI_ERROR)[keyof typeof CNI_ERROR];

/** The error JSON the plugin prints on stdout. */
export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** A failure with its CNI code; thrown anywhere in src/cni and rendered once by the plugin. */
export class CniError extends Error {
  readonly code: CniErrorCode;
  readonly msg: string;
  readonly details: string | undefined;

  constructor(code: CniErrorCode, msg: string, details?: string) {
    super(details === undefined ? msg : `${msg}: ${details}`);
    this.name = 'CniError';
    this.code = code;
    this.msg = msg;
    this.details = details;
  }

  toResult(cniVersion: string): CniErrorJson {
    const out: CniErrorJson = { cniVersion, code: this.code, msg: this.msg };
    if (this.details !== undefined && this.details !== '') out.details = this.details;
    return out;
  }
}

export const isCniError = (e: unknown): e is CniError => e instanceof CniError;

/** Short, single-line text of an unknown thrown value (for `details`). */
export const describeError = (e: unknown): string => {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code !== undefined && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
};

/**
 * The CNI installer (`podlease-cni-install`, install.ts) cannot go on: an input is missing or
 * malformed, named in the message. Retryable ones (a token not projected yet) are retried by the
 * long-running installer; the others end it.
 */
export class InstallError extends Error {
  readonly code = 'CNI_INSTALL_FAILED' as const;
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.retryable = retryable;
  }
}
