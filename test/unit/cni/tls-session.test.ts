/**
 * The CNI plugin's TLS session cache (src/cni/tls-session.ts) on its own: where the files go, their
 * modes, which connections share a file, and that anything odd on disk is ignored rather than used.
 * The TLS side (resumption, a wrong-CA server) is in test/integration/cni/tls-session.test.ts.
 */
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiConnection } from '../../../src/cni/kubeconfig.js';
import { sessionCache, sessionDirFor } from '../../../src/cni/tls-session.js';

const conn = (over: Partial<ApiConnection> = {}): ApiConnection => ({
  server: new URL('https://10.96.0.1:443'),
  ca: Buffer.from('CA PEM'),
  cert: undefined,
  key: undefined,
  authorization: 'Bearer t',
  insecureSkipTlsVerify: false,
  tlsServerName: undefined,
  ...over,
});

const SESSION = Buffer.from('a serialized TLS session');

let base = '';
let dir = '';

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'podlease-tls-session-'));
  dir = join(base, 'tls-sessions');
});

afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

const cacheFor = (c: ApiConnection = conn()): NonNullable<ReturnType<typeof sessionCache>> => {
  const cache = sessionCache(dir, c);
  if (cache === undefined) throw new Error('expected a cache');
  return cache;
};

describe('sessionDirFor', () => {
  it('puts the sessions beside the kubeconfig', () => {
    expect(sessionDirFor('/etc/cni/net.d/podlease/kubeconfig')).toBe(
      '/etc/cni/net.d/podlease/tls-sessions',
    );
  });
});

describe('sessionCache', () => {
  it('has nothing before the first save, then the saved session', () => {
    const cache = cacheFor();
    expect(cache.load()).toBeUndefined();
    cache.save(SESSION);
    expect(cache.load()).toEqual(SESSION);
  });

  it('creates the directory 0700 and the file 0600, and leaves no temporary file', () => {
    cacheFor().save(SESSION);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^session-[0-9a-f]{8}$/);
    expect(statSync(join(dir, files[0] ?? '')).mode & 0o777).toBe(0o600);
  });

  it('replaces the session on the next save; many savers leave one whole file', () => {
    const caches = Array.from({ length: 20 }, () => cacheFor());
    caches.forEach((c, i) => {
      c.save(Buffer.from(`session ${i}`));
    });
    expect(readdirSync(dir)).toHaveLength(1);
    expect(cacheFor().load()?.toString()).toBe('session 19');
  });

  it('keeps one file per server, name, CA bundle and client certificate', () => {
    const variants = [
      conn(),
      conn({ server: new URL('https://10.96.0.2:443') }),
      conn({ server: new URL('https://10.96.0.1:6443') }),
      conn({ tlsServerName: 'kubernetes' }),
      conn({ ca: Buffer.from('another CA PEM') }),
      conn({ ca: undefined }),
      conn({ cert: Buffer.from('CERT PEM') }),
    ];
    variants.forEach((c, i) => {
      cacheFor(c).save(Buffer.from(`session ${i}`));
    });
    expect(readdirSync(dir)).toHaveLength(variants.length);
    variants.forEach((c, i) => {
      expect(cacheFor(c).load()?.toString()).toBe(`session ${i}`);
    });
  });

  it('ignores a file written for another identity, even under the same name', () => {
    const a = conn();
    const b = conn({ ca: Buffer.from('another CA PEM') });
    cacheFor(a).save(SESSION);
    const [fileA] = readdirSync(dir);
    rmSync(dir, { recursive: true });
    cacheFor(b).save(Buffer.from('other'));
    const [fileB] = readdirSync(dir);
    // b's file (its identity inside) under a's name: a must not take b's session.
    writeFileSync(join(dir, fileA ?? ''), readFileSync(join(dir, fileB ?? '')));
    expect(cacheFor(a).load()).toBeUndefined();
    expect(cacheFor(b).load()?.toString()).toBe('other');
  });

  it('ignores a file that is not a cache file, or is cut short', () => {
    const cache = cacheFor();
    cache.save(SESSION);
    const [file] = readdirSync(dir);
    const path = join(dir, file ?? '');
    const whole = readFileSync(path);
    for (const bad of [
      Buffer.from('this is not a TLS session'),
      whole.subarray(0, 10),
      whole.subarray(0, whole.length - SESSION.length),
    ]) {
      writeFileSync(path, bad);
      expect(cache.load()).toBeUndefined();
    }
    writeFileSync(path, whole);
    expect(cache.load()).toEqual(SESSION);
  });

  it('shares the file between kubeconfigs that differ only in the token', () => {
    cacheFor(conn({ authorization: 'Bearer one' })).save(SESSION);
    expect(cacheFor(conn({ authorization: 'Bearer two' })).load()).toEqual(SESSION);
  });

  it('caches nothing when verification is skipped or the server is plain HTTP', () => {
    expect(sessionCache(dir, conn({ insecureSkipTlsVerify: true }))).toBeUndefined();
    expect(sessionCache(dir, conn({ server: new URL('http://10.96.0.1:8080') }))).toBeUndefined();
  });

  it('ignores an empty or oversized file, and does not save either', () => {
    const cache = cacheFor();
    cache.save(SESSION);
    const [file] = readdirSync(dir);
    const path = join(dir, file ?? '');
    writeFileSync(path, '');
    expect(cache.load()).toBeUndefined();
    writeFileSync(path, Buffer.alloc(64 * 1024, 1));
    expect(cache.load()).toBeUndefined();
    cache.save(Buffer.alloc(0));
    cache.save(Buffer.alloc(64 * 1024, 2));
    expect(readFileSync(path)).toEqual(Buffer.alloc(64 * 1024, 1));
  });

  it('does not follow a symlink in place of the session file', () => {
    cacheFor().save(SESSION);
    const [file] = readdirSync(dir);
    const path = join(dir, file ?? '');
    rmSync(path);
    writeFileSync(join(base, 'elsewhere'), SESSION);
    symlinkSync(join(base, 'elsewhere'), path);
    expect(cacheFor().load()).toBeUndefined();
  });

  it('neither reads nor writes a directory that others may read', () => {
    cacheFor().save(SESSION);
    chmodSync(dir, 0o755);
    expect(cacheFor().load()).toBeUndefined();
    cacheFor().save(Buffer.from('newer'));
    chmodSync(dir, 0o700);
    expect(cacheFor().load()).toEqual(SESSION);
  });

  it('neither reads nor writes through a symlinked directory', () => {
    const real = join(base, 'real');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, dir);
    const cache = cacheFor();
    cache.save(SESSION);
    expect(readdirSync(real)).toHaveLength(0);
    expect(cache.load()).toBeUndefined();
  });

  it('gives up quietly when the directory cannot be created', () => {
    writeFileSync(dir, 'a file where the directory should be');
    const cache = cacheFor();
    expect(() => {
      cache.save(SESSION);
    }).not.toThrow();
    expect(cache.load()).toBeUndefined();
  });
});
