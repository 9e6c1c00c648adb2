/** CNI spec versions: what podlease speaks, and which verbs each version allows. */
import { CNI_ERROR, CniError } from './errors.js';
import { quote } from '../text/quote.js';

/** Versions whose results podlease can produce (CNI SPEC 0.3.0 … 1.1.0). */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

export const isSupportedVersion = (v: string): v is CniVersion =>
  (SUPPORTED_VERSIONS as readonly string[]).includes(v);

const parts = (v: string): number[] => v.split('.').map(p => Number.parseInt(p, 10) || 0);

/** Semantic-version comparison of two `x.y.z` strings: negative, 0 or positive. */
export const compareVersions = (a: string, b: string): number => {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
};

/** Throws code 1 unless `version` is one podlease can answer in. */
export const requireSupported = (version: string): CniVersion => {
  if (isSupportedVersion(version)) return version;
  throw new CniError(
    CNI_ERROR.incompatibleVersion,
    `incompatible CNI version ${quote(version)}`,
    `podlease supports ${SUPPORTED_VERSIONS.join(', ')}; set "cniVersion" in the network configuration to one of them`,
  );
};

/** Throws code 1 when `verb` did not exist yet in `version` (CHECK ≥ 0.4.0, STATUS/GC ≥ 1.1.0). */
export const requireVerbAllowed = (verb: string, version: string, since: string): void => {
  if (compareVersions(version, since) >= 0) return;
  throw new CniError(
    CNI_ERROR.incompatibleVersion,
    `config version ${version} does not allow ${verb}`,
    `${verb} needs cniVersion ${since} or later`,
  );
};
