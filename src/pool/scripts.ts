/**
 * The Lua scripts, one `.lua` file each (BullMQ style). The file name `<name>-<numKeys>.lua` is
 * the single source of truth for NUMBER_OF_KEYS. Script names carry a contract version so
 * replicas at different versions never share a script across a contract change.
 */
import { readFileSync } from 'node:fs';
import { defineScript, type CommandParser } from 'redis';
import { STATE_KEY_TYPES, type KeyType, type PoolKeys } from './keys.js';

export const SCRIPT_CONTRACT_VERSION = 'v5';

const source = (file: string): string =>
  readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');

/** `allocate-8.lua` → { name: 'allocate', keys: 8 } */
export const splitFilename = (file: string): { name: string; keys: number } => {
  const m = /^([a-zA-Z]+)-(\d+)\.lua$/.exec(file);
  if (m === null) throw new Error(`Lua file name ${file} is not <name>-<numKeys>.lua`);
  return { name: m[1] ?? '', keys: Number(m[2]) };
};

export type ScriptArg = string | number;

const define = (file: string, keyTypes: readonly KeyType[]) => {
  const { keys } = splitFilename(file);
  if (keys !== keyTypes.length) {
    throw new Error(`${file} declares ${keys} keys but scripts.ts passes ${keyTypes.length}`);
  }
  return defineScript({
    SCRIPT: source(file),
    NUMBER_OF_KEYS: keys,
    parseCommand(parser: CommandParser, poolKeys: PoolKeys, args: readonly ScriptArg[]) {
      for (const t of keyTypes) parser.pushKey(poolKeys[t]);
      parser.push(...args.map(String));
    },
    transformReply: (reply: unknown): unknown => reply,
  });
};

/** Scripts that touch a pool's whole address state take its keys in STATE_KEY_TYPES order. */
const ALL = STATE_KEY_TYPES;

/** Keys each script takes, in KEYS[] order (must match the script header). */
export const SCRIPT_KEYS = {
  allocate: ALL,
  init: ALL,
  relayout: ALL,
  release: ['meta', 'released', 'leases', 'byip', 'pending', 'resbyip'],
  bind: ['leases', 'pending'],
  unreserve: ['meta', 'released', 'byip', 'sticky', 'resbyip'],
  history: ['meta'],
} as const satisfies Record<string, readonly KeyType[]>;

export const SCRIPT_FILES = {
  allocate: 'allocate-8.lua',
  init: 'init-8.lua',
  relayout: 'relayout-8.lua',
  release: 'release-6.lua',
  bind: 'bind-2.lua',
  unreserve: 'unreserve-5.lua',
  history: 'history-1.lua',
} as const satisfies Record<keyof typeof SCRIPT_KEYS, string>;

export type ScriptName = keyof typeof SCRIPT_FILES;

/** The registry passed to createClient({ scripts }): `allocate:v1` and so on. */
export const scripts = Object.fromEntries(
  (Object.keys(SCRIPT_FILES) as ScriptName[]).map(n => [
    `${n}:${SCRIPT_CONTRACT_VERSION}`,
    define(SCRIPT_FILES[n], SCRIPT_KEYS[n]),
  ]),
);

export const scriptName = (n: ScriptName): string => `${n}:${SCRIPT_CONTRACT_VERSION}`;
