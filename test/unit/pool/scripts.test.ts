import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SCRIPT_FILES, SCRIPT_KEYS, splitFilename } from '../../../src/pool/scripts.js';

const dir = new URL('../../../src/pool/lua/', import.meta.url);
const files = readdirSync(dir).filter(f => f.endsWith('.lua'));

describe('Lua scripts', () => {
  it('every lua file is registered, and the key count in its name matches scripts.ts', () => {
    expect(files.sort()).toEqual(Object.values(SCRIPT_FILES).sort());
    for (const [name, file] of Object.entries(SCRIPT_FILES)) {
      const split = splitFilename(file);
      expect(split.name).toBe(name);
      expect(split.keys).toBe(SCRIPT_KEYS[name as keyof typeof SCRIPT_KEYS].length);
    }
  });

  it.each(files)('%s has the header (Input KEYS/ARGV, Output) and uses rcall', file => {
    const src = readFileSync(new URL(file, dir), 'utf8');
    expect(src.startsWith('--[[')).toBe(true);
    const header = src.slice(0, src.indexOf(']]'));
    expect(header).toContain('Input:');
    expect(header).toContain('Output:');
    const { name, keys } = splitFilename(file);
    // The header names each key, in the order scripts.ts passes them.
    const named = [...header.matchAll(/KEYS\[(\d+)\]\s+(\w+)/g)].map(m => [Number(m[1]), m[2]]);
    const expected = SCRIPT_KEYS[name as keyof typeof SCRIPT_KEYS].map((k, i) => [i + 1, k]);
    expect(named).toEqual(expected);
    expect(named).toHaveLength(keys);
    expect(src).toContain('local rcall = redis.call');
    // Keys reach Lua through KEYS only: no key built from ARGV inside a script.
    expect(src).not.toMatch(/"podlease:/);
  });

  it('splitFilename refuses names without a key count', () => {
    expect(() => splitFilename('allocate.lua')).toThrow(/<name>-<numKeys>\.lua/);
  });
});
