import { describe, expect, it } from 'vitest';
import { MAX_REPORT_FINDINGS, parseReport, toReportJson } from '../../../src/pool/report.js';

describe('reconcile report JSON', () => {
  it('keeps at most the limit, worst kinds first, and counts every kind', () => {
    const findings = [
      ...Array.from({ length: 300 }, (_, i) => ({ kind: 'unbound', message: `u${i}` })),
      {
        kind: 'leaked',
        message: 'gone',
        ip: '10.0.0.9',
        pod: { namespace: 'a', name: 'b', uid: 'x' },
      },
      { kind: 'duplicate-address', message: 'two', ip: '10.0.0.7' },
    ];
    const report = parseReport(toReportJson(123, findings));
    expect(report).toMatchObject({ at: 123, total: 302, counts: { unbound: 300, leaked: 1 } });
    expect(report?.findings).toHaveLength(MAX_REPORT_FINDINGS);
    expect(report?.findings.slice(0, 2).map(f => f.kind)).toEqual(['duplicate-address', 'leaked']);
    // The pod's uid is not kept: the page shows namespace/name.
    expect(report?.findings[1]?.pod).toEqual({ namespace: 'a', name: 'b' });
  });

  it('reads back nothing it does not recognise', () => {
    expect(parseReport(undefined)).toBeUndefined();
    expect(parseReport('not json')).toBeUndefined();
    expect(parseReport('{"at":"x"}')).toBeUndefined();
    expect(parseReport('{"at":1,"total":1,"counts":{},"findings":[{"kind":1}]}')?.findings).toEqual(
      [],
    );
  });
});
