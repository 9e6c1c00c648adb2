/**
 * What a Redis must guarantee before podlease keeps leases in it, checked at connect: keys are
 * never evicted (an evicted key is a lost lease or an address handed out twice), and the server
 * has every command the scripts use (`BITPOS … BIT` needs 7.0). Anything else is refused with the
 * setting named and the fix.
 */
import { StoreConfigError } from './errors.js';

/** The oldest Redis whose commands the scripts use: `BITPOS key bit start end BIT` is 7.0. */
export const MIN_REDIS_VERSION = [7, 0] as const;

/** The subset of the node-redis client the checks use. */
export interface PreflightClient {
  info(section?: string): Promise<string>;
  configGet(parameter: string): Promise<Record<string, string>>;
}

/** `field:value` lines of an INFO reply. */
export const parseInfo = (text: string): Map<string, string> => {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) out.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return out;
};

const versionOk = (version: string): boolean => {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [wantMajor, wantMinor] = MIN_REDIS_VERSION;
  return major > wantMajor || (major === wantMajor && minor >= wantMinor);
};

/** The eviction policy: CONFIG GET, or INFO memory where CONFIG is renamed away (managed Redis). */
const evictionPolicy = async (client: PreflightClient, info: Map<string, string>) => {
  const fromInfo = info.get('maxmemory_policy');
  if (fromInfo !== undefined) return fromInfo;
  try {
    return (await client.configGet('maxmemory-policy'))['maxmemory-policy'];
  } catch {
    return undefined;
  }
};

/** Throws StoreConfigError naming the setting when the server may lose or cannot run leases. */
export const preflight = async (client: PreflightClient, where: string): Promise<void> => {
  const info = parseInfo(`${await client.info('server')}\n${await client.info('memory')}`);
  const version = info.get('redis_version') ?? info.get('valkey_version') ?? '';
  if (!versionOk(version)) {
    throw new StoreConfigError(
      `Redis at ${where} is version ${version === '' ? '(unknown)' : version}; podlease needs ` +
        `${MIN_REDIS_VERSION.join('.')} or later (its scripts use BITPOS … BIT); upgrade the server`,
    );
  }
  const policy = await evictionPolicy(client, info);
  if (policy === undefined) {
    throw new StoreConfigError(
      `Redis at ${where}: cannot read maxmemory-policy (neither INFO memory nor CONFIG GET ` +
        'answers it); podlease needs maxmemory-policy noeviction and must be able to check it',
    );
  }
  if (policy !== 'noeviction') {
    throw new StoreConfigError(
      `Redis at ${where} has maxmemory-policy ${policy}: an evicted key is a lost lease or an ` +
        'address handed out twice; set `maxmemory-policy noeviction` (redis.conf, or ' +
        '`CONFIG SET maxmemory-policy noeviction` and `CONFIG REWRITE`)',
    );
  }
};
