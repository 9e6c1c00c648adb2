/**
 * TLS session resumption across plugin invocations: the session (TLS 1.3 ticket) of the last full
 * handshake with the API server, kept in a file, so the next ADD resumes it instead of receiving,
 * parsing and verifying the server's certificate chain again (kube-apiserver, Go crypto/tls, issues
 * TLS 1.3 session tickets by default; Node's own servers too).
 *
 * Safe by construction rather than by checks on the file's content:
 * - the file is keyed by everything a session's trust depends on: the server, the name it is
 *   checked against, the CA bundle and the client certificate (a resumed session keeps the client
 *   identity of the handshake that made it). A kubeconfig that changes any of them never offers
 *   an old session;
 * - a session only resumes with the server that issued its ticket; any other server (one whose
 *   certificate is not from the kubeconfig's CA included) answers with a full handshake, which is
 *   verified as always. A corrupted, stale or foreign file costs a full handshake, nothing more;
 * - the directory is created 0700 and used only while it is a real directory owned by this user
 *   with no group or other access; files are written 0600 under a unique name and renamed into
 *   place, so concurrent invocations never read a half-written file (the last writer wins);
 * - a session holds the resumption secret, as sensitive as the token beside it: nothing is cached
 *   when the kubeconfig skips verification (`insecure-skip-tls-verify`).
 * Every failure to read or write is ignored: the cache only ever saves time.
 */
import {
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  constants as fsConstants,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { ApiConnection } from './kubeconfig.js';

/** Directory of the cached sessions of a kubeconfig: beside it, `tls-sessions/`. */
export const sessionDirFor = (kubeconfigPath: string): string =>
  join(dirname(kubeconfigPath), 'tls-sessions');

/** A serialized session is 1–2 KiB; anything larger is not one. */
const MAX_SESSION_BYTES = 16 * 1024;

export interface SessionCache {
  /** The cached session, if there is a usable one. */
  load(): Buffer | undefined;
  /** Replaces the cached session. */
  save(session: Buffer): void;
}

/** The file name for `conn`: a digest of what the session's trust depends on. */
const keyOf = (conn: ApiConnection): string => {
  const { createHash } = process.getBuiltinModule('node:crypto');
  const h = createHash('sha256');
  const part = (label: string, value: string | Buffer | undefined): void => {
    const bytes = value === undefined ? Buffer.alloc(0) : Buffer.from(value);
    h.update(`${label}:${value === undefined ? '-' : String(bytes.length)}:`);
    h.update(bytes);
  };
  part('server', conn.server.origin);
  part('servername', conn.tlsServerName);
  part('ca', conn.ca);
  part('cert', conn.cert);
  return `session-${h.digest('hex').slice(0, 32)}`;
};

/** True when `dir` is a directory of ours that nobody else may read or write. */
const isPrivateDir = (dir: string): boolean => {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
};

/** The cache for `conn` in `dir`; undefined when nothing may be cached for it. */
export const sessionCache = (dir: string, conn: ApiConnection): SessionCache | undefined => {
  if (conn.insecureSkipTlsVerify || conn.server.protocol !== 'https:') return undefined;
  const file = join(dir, keyOf(conn));
  return {
    load(): Buffer | undefined {
      if (!isPrivateDir(dir)) return undefined;
      try {
        const session = readFileSync(file, { flag: fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW });
        return session.length > 0 && session.length <= MAX_SESSION_BYTES ? session : undefined;
      } catch {
        return undefined;
      }
    },
    save(session: Buffer): void {
      if (session.length === 0 || session.length > MAX_SESSION_BYTES) return;
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
      } catch {
        return;
      }
      if (!isPrivateDir(dir)) return;
      const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
      try {
        writeFileSync(tmp, session, { mode: 0o600, flag: 'wx' });
        renameSync(tmp, file);
      } catch {
        try {
          rmSync(tmp, { force: true });
        } catch {
          // nothing more to do: a stray temporary file is harmless
        }
      }
    },
  };
};
