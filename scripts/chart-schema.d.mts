// Types of chart-schema.mjs for the TypeScript tests.
export declare const POOLS_SCHEMA_PATH: string;
export declare const VALUES_SCHEMA_PATH: string;

/** The values schema with `properties.pools` and the `$defs` of the pools schema copied in. */
export declare function withPoolsSchema(
  values: Record<string, unknown>,
  pools: Record<string, unknown>,
): Record<string, unknown>;
