import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION, parseRetention } from '../../../src/pool/annotations.js';

describe('parseRetention', () => {
  it('defaults to when-scaled Retain, when-deleted Delete', () => {
    expect(parseRetention(undefined)).toEqual({ policy: DEFAULT_RETENTION, errors: [] });
    expect(parseRetention({ other: 'x' })).toEqual({
      policy: { whenScaled: 'Retain', whenDeleted: 'Delete' },
      errors: [],
    });
  });

  it('reads both annotations', () => {
    expect(
      parseRetention({ 'podlease.io/when-scaled': 'Delete', 'podlease.io/when-deleted': 'Retain' }),
    ).toEqual({ policy: { whenScaled: 'Delete', whenDeleted: 'Retain' }, errors: [] });
  });

  it('names each bad value, and reads it as Retain so nothing is released by mistake', () => {
    expect(
      parseRetention({ 'podlease.io/when-scaled': 'Keep', 'podlease.io/when-deleted': 'delete' }),
    ).toEqual({
      policy: { whenScaled: 'Retain', whenDeleted: 'Retain' },
      errors: [
        'podlease.io/when-scaled: "Keep" is not Retain or Delete',
        'podlease.io/when-deleted: "delete" is not Retain or Delete',
      ],
    });
    const long = parseRetention({ 'podlease.io/when-deleted': 'x'.repeat(1_000) });
    expect(long.errors[0]).toMatch(/^podlease.io\/when-deleted: "x{64}"…\(936 more characters\)/);
  });
});
