// The chart's values.schema.json embeds the one pools schema (src/pool/pools.schema.json):
// `npm run chart:schema` copies it, this test fails when the two have drifted apart.
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import {
  POOLS_SCHEMA_PATH,
  VALUES_SCHEMA_PATH,
  withPoolsSchema,
} from '../../../scripts/chart-schema.mjs';

const read = (path: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

describe('charts/podlease/values.schema.json', () => {
  it('carries the pools schema unchanged (run npm run chart:schema after changing it)', () => {
    const values = read(VALUES_SCHEMA_PATH);
    expect(values).toEqual(withPoolsSchema(values, read(POOLS_SCHEMA_PATH)));
  });

  it('keeps the value names scripts rely on', () => {
    const props = (read(VALUES_SCHEMA_PATH).properties ?? {}) as Record<
      string,
      { properties?: Record<string, { enum?: string[] }> }
    >;
    expect(Object.keys(props)).toEqual(
      expect.arrayContaining(['pools', 'tls', 'redis', 'webhook', 'replicaCount', 'image']),
    );
    expect(props.tls?.properties?.mode?.enum).toEqual([
      'generated',
      'certManager',
      'existingSecret',
    ]);
    expect(props.redis?.properties?.mode?.enum).toEqual([
      'embedded',
      'external',
      'sentinel',
      'cluster',
    ]);
    expect(Object.keys(props.redis?.properties ?? {})).toEqual(
      expect.arrayContaining(['url', 'sentinels', 'sentinelMaster', 'clusterNodes']),
    );
    expect(Object.keys(props.tls?.properties ?? {})).toContain('existingSecret');
    expect(props.webhook?.properties?.failurePolicy?.enum).toEqual(['Fail', 'Ignore']);
    expect(Object.keys(props.image?.properties ?? {})).toEqual(
      expect.arrayContaining(['repository', 'tag']),
    );
  });
});
