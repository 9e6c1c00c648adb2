// The one JSON Schema of the pools file (src/pool/pools.schema.json) and its evaluator
// (src/pool/schema.ts): the evaluator knows every keyword the schema uses, the patterns agree with
// the address parser the semantic checks use, and structural problems read as before.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseCidr, parseIp, parseRange } from '../../../src/ip/address.js';
import { POOLS_SCHEMA } from '../../../src/pool/pools-file.js';
import {
  resolveRef,
  SCHEMA_KEYWORDS,
  validateSchema,
  type Schema,
} from '../../../src/pool/schema.js';

/** Every keyword used anywhere in a schema (property names under `properties`/`$defs` are not). */
const keywords = (schema: Schema, out = new Set<string>()): Set<string> => {
  for (const [key, value] of Object.entries(schema)) {
    out.add(key);
    if (key === 'properties' || key === '$defs') {
      for (const sub of Object.values(value as Record<string, Schema>)) keywords(sub, out);
    } else if (key === 'items') {
      keywords(value as Schema, out);
    }
  }
  return out;
};

const pattern = (def: string): RegExp =>
  new RegExp(resolveRef(POOLS_SCHEMA, `#/$defs/${def}`).pattern ?? '', 'u');
const IP = pattern('ip');
const CIDR = pattern('cidr');
const RANGE = pattern('range');

describe('pools.schema.json', () => {
  it('uses only keywords the evaluator implements', () => {
    const unknown = [...keywords(POOLS_SCHEMA)].filter(k => !SCHEMA_KEYWORDS.has(k));
    expect(unknown).toEqual([]);
  });

  it('accepts every address and cidr the parser accepts in canonical or expanded form', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: 0, max: 128 }), (ip, n) => {
        expect(IP.test(ip)).toBe(true);
        const family = ip.includes(':') ? 6 : 4;
        const prefix = family === 4 ? n % 33 : n;
        expect(CIDR.test(`${ip}/${prefix}`)).toBe(parseCidr(`${ip}/${prefix}`) !== undefined);
        expect(RANGE.test(`${ip}-${ip}`)).toBe(true);
      }),
    );
  });

  it('accepts an IPv4 text only when the parser does (the IPv6 shape is looser)', () => {
    const octet = fc.oneof(
      fc.integer({ min: 0, max: 300 }).map(String),
      fc.constantFrom('01', '00', '', '-1', '1a'),
    );
    const v4 = fc.array(octet, { minLength: 3, maxLength: 5 }).map(o => o.join('.'));
    fc.assert(
      fc.property(v4, fc.constantFrom('', '/8', '/32', '/33', '/08', '/'), (text, suffix) => {
        const full = `${text}${suffix}`;
        if (suffix === '') expect(IP.test(full)).toBe(parseIp(full) !== undefined);
        else if (CIDR.test(full)) expect(parseCidr(full)).toBeDefined();
        if (RANGE.test(full)) expect(parseRange(full)).toBeDefined();
      }),
    );
  });

  it('refuses what is plainly not an address, whatever the family', () => {
    for (const bad of [
      'banana',
      '10.0.0.0',
      '10.0.0/24',
      ' 10.0.0.0/8',
      '10.0.0.0/8 ',
      'fd00::/129',
    ]) {
      expect(CIDR.test(bad), bad).toBe(false);
    }
    for (const bad of ['10.0.0.1-fd00::1', '10.0.0.1-', '-10.0.0.1', '10.0.0.1/24-10.0.0.9']) {
      expect(RANGE.test(bad), bad).toBe(false);
    }
    for (const good of ['::', '::ffff:1.2.3.4', 'fd00::1', '1:2:3:4:5:6:7:8', 'FD00::A']) {
      expect(IP.test(good), good).toBe(true);
    }
  });
});

describe('validateSchema', () => {
  const schema: Schema = {
    type: 'object',
    required: ['a'],
    additionalProperties: false,
    properties: {
      a: { $ref: '#/$defs/word' },
      list: { type: 'array', minItems: 1, items: { type: 'integer' } },
    },
    $defs: { word: { type: 'string', pattern: '^[a-z]+$', errorMessage: 'a word' } },
  };

  it('reports each problem with its path and the subschema', () => {
    expect(validateSchema(schema, { a: 'ok', list: [1, 2] })).toEqual([]);
    const found = validateSchema(schema, { a: 'No', list: [1, 'x'], extra: true });
    expect(found.map(i => [i.keyword, i.path.join('.')])).toEqual([
      ['pattern', 'a'],
      ['type', 'list.1'],
      ['additionalProperties', ''],
    ]);
    expect(found[0]?.schema.errorMessage).toBe('a word');
    expect(validateSchema(schema, {}).map(i => i.keyword)).toEqual(['required']);
    expect(validateSchema(schema, { a: 'x', list: [] }).map(i => i.keyword)).toEqual(['minItems']);
    expect(validateSchema(schema, 'nope').map(i => i.keyword)).toEqual(['type']);
  });

  it('refuses a reference it cannot resolve', () => {
    expect(() => validateSchema({ $ref: '#/$defs/missing' }, 1)).toThrow(/unresolvable \$ref/);
  });
});
