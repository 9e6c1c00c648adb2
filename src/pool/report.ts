/**
 * The last reconcile's report of a pool, as the controller keeps it in the store
 * (`saveReport`, key `podlease:{<pool>}:report`) so that every replica's pool map can show it,
 * not only the leader's. Bounded: at most MAX_REPORT_FINDINGS findings, the worst kinds first,
 * with the count of each kind over all of them.
 */

/** A finding as the report keeps it (the controller's `Finding` fits it). */
export interface ReportFinding {
  readonly kind: string;
  readonly message: string;
  readonly ip?: string | undefined;
  readonly leaseId?: string | undefined;
  readonly key?: string | undefined;
  readonly pod?: { readonly namespace: string; readonly name: string } | undefined;
  readonly other?: { readonly namespace: string; readonly name: string } | undefined;
}

export interface PoolReport {
  /** When the reconcile finished (ms). */
  readonly at: number;
  /** Findings of the reconcile, kept or not. */
  readonly total: number;
  /** Findings by kind, over all of them. */
  readonly counts: Readonly<Record<string, number>>;
  readonly findings: readonly ReportFinding[];
}

export const MAX_REPORT_FINDINGS = 200;

/** Kinds in the order a person wants them: two holders of one address first, routine last. */
const SEVERITY = [
  'duplicate-address',
  'uid-conflict',
  'leaked',
  'missing',
  'finished',
  'statefulset-gone',
  'scaled-down',
  'unbound',
];

const rank = (kind: string): number => {
  const i = SEVERITY.indexOf(kind);
  return i < 0 ? SEVERITY.length : i;
};

const slim = (f: ReportFinding): ReportFinding => ({
  kind: f.kind,
  message: f.message,
  ip: f.ip,
  leaseId: f.leaseId,
  key: f.key,
  pod: f.pod === undefined ? undefined : { namespace: f.pod.namespace, name: f.pod.name },
  other: f.other === undefined ? undefined : { namespace: f.other.namespace, name: f.other.name },
});

/** The report JSON of one pool's findings, at most `limit` of them kept. */
export const toReportJson = (
  at: number,
  findings: readonly ReportFinding[],
  limit = MAX_REPORT_FINDINGS,
): string => {
  const counts: Record<string, number> = {};
  for (const f of findings) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
  const kept = [...findings]
    .sort((a, b) => rank(a.kind) - rank(b.kind))
    .slice(0, limit)
    .map(slim);
  const report: PoolReport = { at, total: findings.length, counts, findings: kept };
  return JSON.stringify(report);
};

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads a stored report back; undefined when it is not one (never guessed at). */
export const parseReport = (json: string | undefined): PoolReport | undefined => {
  if (json === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (!isRecord(v) || typeof v.at !== 'number' || typeof v.total !== 'number') return undefined;
  if (!Array.isArray(v.findings) || !isRecord(v.counts)) return undefined;
  const findings = v.findings.filter(
    (f): f is ReportFinding =>
      isRecord(f) && typeof f.kind === 'string' && typeof f.message === 'string',
  );
  const counts: Record<string, number> = {};
  for (const [k, n] of Object.entries(v.counts)) if (typeof n === 'number') counts[k] = n;
  return { at: v.at, total: v.total, counts, findings };
};
