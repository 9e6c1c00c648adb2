#!/usr/bin/env node
// @ts-check
// Keeps the chart's values.schema.json in step with the one JSON Schema of the pools file,
// src/pool/pools.schema.json (docs/design.md §2): `properties.pools` and every `$defs` entry of
// the pools schema are copied into the values schema, so `helm install` refuses the same
// malformed pools that `podlease serve` refuses. Everything else in values.schema.json is the
// chart's own and is left as it is. A unit test (test/unit/chart/schema.test.ts) fails when the
// two disagree; run `npm run chart:schema` after changing the pools schema.
//
// Usage: node scripts/chart-schema.mjs [--check]   (--check: exit 1 instead of writing)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const POOLS_SCHEMA_PATH = `${root}src/pool/pools.schema.json`;
export const VALUES_SCHEMA_PATH = `${root}charts/podlease/values.schema.json`;

/**
 * The values schema with the pools parts taken from the pools schema.
 * @param {Record<string, any>} values
 * @param {Record<string, any>} pools
 */
export const withPoolsSchema = (values, pools) => ({
  ...values,
  properties: { ...values.properties, pools: pools.properties.pools },
  $defs: { ...values.$defs, ...pools.$defs },
});

const read = path => JSON.parse(readFileSync(path, 'utf8'));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const values = read(VALUES_SCHEMA_PATH);
  const next = withPoolsSchema(values, read(POOLS_SCHEMA_PATH));
  // Written as Prettier writes it, so `prettier --check` (npm run lint) stays quiet.
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(VALUES_SCHEMA_PATH)) ?? {};
  const text = await prettier.format(JSON.stringify(next), {
    ...options,
    filepath: VALUES_SCHEMA_PATH,
  });
  if (process.argv.includes('--check')) {
    if (JSON.stringify(next) !== JSON.stringify(values)) {
      process.stderr.write(`${VALUES_SCHEMA_PATH} is out of date: run npm run chart:schema\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(VALUES_SCHEMA_PATH, text);
    process.stderr.write(`chart-schema: wrote ${VALUES_SCHEMA_PATH}\n`);
  }
}
