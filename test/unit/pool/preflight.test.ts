import { describe, expect, it } from 'vitest';
import { StoreConfigError } from '../../../src/pool/errors.js';
import { preflight, type PreflightClient } from '../../../src/pool/preflight.js';

const client = (
  server: string,
  memory: string,
  config: Record<string, string> | Error = {},
): PreflightClient => ({
  info: section => Promise.resolve(section === 'server' ? server : memory),
  configGet: () => (config instanceof Error ? Promise.reject(config) : Promise.resolve(config)),
});

const refusal = async (c: PreflightClient): Promise<string> => {
  const err = await preflight(c, 'redis://x').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(StoreConfigError);
  return (err as Error).message;
};

describe('Redis preflight', () => {
  it('accepts Redis 7 with noeviction', async () => {
    await expect(
      preflight(client('redis_version:7.0.15\r\n', 'maxmemory_policy:noeviction\r\n'), 'x'),
    ).resolves.toBeUndefined();
  });

  it('refuses a Redis older than 7.0, naming the version and why', async () => {
    const m = await refusal(client('redis_version:6.2.14\r\n', 'maxmemory_policy:noeviction\r\n'));
    expect(m).toContain('version 6.2.14');
    expect(m).toContain('7.0 or later');
  });

  it('refuses an evicting policy, naming the setting and the fix', async () => {
    const m = await refusal(client('redis_version:7.2.4\r\n', 'maxmemory_policy:volatile-lru\r\n'));
    expect(m).toContain('maxmemory-policy volatile-lru');
    expect(m).toContain('CONFIG SET maxmemory-policy noeviction');
  });

  it('reads the policy with CONFIG GET when INFO lacks it, and refuses when neither answers', async () => {
    await expect(
      preflight(client('redis_version:7.2.4\r\n', '', { 'maxmemory-policy': 'noeviction' }), 'x'),
    ).resolves.toBeUndefined();
    const m = await refusal(client('redis_version:7.2.4\r\n', '', new Error('unknown command')));
    expect(m).toContain('cannot read maxmemory-policy');
  });
});
