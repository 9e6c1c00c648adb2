/**
 * TLS session resumption across plugin invocations: the session (TLS 1.3 ticket) of the last full
 * handshake with the API server, kept in a file, so the next ADD resumes it instead of receiving,
 * parsing and verifying the server's certificate chain again (kube-apiserver, Go crypto/tls, issues
 * TLS 1.3 session tickets by default; Node's own servers too).
 *
 * Safe by construction rather than by checks on the file's content:
 * - a file holds, beside the session, everything the session's trust depends on: the server, the
 *   name it is checked against, the CA bundle and the client certificate (a resumed session keeps
 *   the client identity of the handshake that made it); it is used only when all of them are
 *   byte for byte those of the kubeconfig, so a changed kubeconfig never offers an old session;
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

/** A cache file starts with this, then the identity's length (u32 BE), the identity, the session. */
const MAGIC = Buffer.from('podlease-tls-session-v1\n');

/**
 * Everything a session's trust depends on, as bytes: a cache file is used only when it was
 * written for exactly these (compared in full, so no digest can collide).
 */
const identityOf = (conn: ApiConnection): Buffer => {
  const parts: Buffer[] = [];
  const part = (value: string | Buffer | undefined): void => {
    const bytes = value === undefined ? Buffer.alloc(0) : Buffer.from(value);
    const len = Buffer.alloc(5);
    len.writeUInt8(value === undefined ? 0 : 1, 0);
    len.writeUInt32BE(bytes.length, 1);
    parts.push(len, bytes);
  };
  part(conn.server.origin);
  part(conn.tlsServerName);
  part(conn.ca);
  part(conn.cert);
  return Buffer.concat(parts);
};

/**
 * The file name: an FNV-1a digest of the identity, only to keep different identities in different
 * files (node:crypto's first hash costs more than the rest of the cache; the identity inside the
 * file is what decides).
 */
const fileNameOf = (identity: Buffer): string => {
  let h = 0x811c9dc5;
  for (const byte of identity) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return `session-${h.toString(16).padStart(8, '0')}`;
};

/** The session in `file` if it was written for `identity`. */
const sessionIn = (file: Buffer, identity: Buffer): Buffer | undefined => {
  const start = MAGIC.length + 4;
  if (file.length <= start || !file.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const end = start + file.readUInt32BE(MAGIC.length);
  if (end >= file.length || !file.subarray(start, end).equals(identity)) return undefined;
  const session = file.subarray(end);
  return session.length <= MAX_SESSION_BYTES ? session : undefined;
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
  const identity = identityOf(conn);
  const file = join(dir, fileNameOf(identity));
  return {
    load(): Buffer | undefined {
      if (!isPrivateDir(dir)) return undefined;
      try {
        const flag = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW;
        return sessionIn(readFileSync(file, { flag }), identity);
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
      const length = Buffer.alloc(4);
      length.writeUInt32BE(identity.length, 0);
      const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
      try {
        writeFileSync(tmp, Buffer.concat([MAGIC, length, identity, session]), {
          mode: 0o600,
          flag: 'wx',
        });
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
