/**
 * Listening: the HTTPS server with its certificate reloaded in place when the files change
 * (cert-manager `FileCertificateSource`: poll, then `server.setSecureContext`; connections
 * already open keep going), and the plain-HTTP ops server. Graceful close for SIGTERM.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { RequestListener } from 'node:http';
import type { HostPort } from '../config/parse.js';
import type { Logger } from '../log/logger.js';

export interface TlsFiles {
  readonly certPath: string;
  readonly keyPath: string;
}

export interface KeyPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export const readKeyPair = (files: TlsFiles): KeyPair => ({
  cert: readFileSync(files.certPath),
  key: readFileSync(files.keyPath),
});

const digest = (pair: KeyPair): string =>
  createHash('sha256').update(pair.cert).update(pair.key).digest('hex');

export interface ServerTimeouts {
  readonly keepAliveTimeoutMs: number;
  readonly headersTimeoutMs: number;
}

/**
 * Polls the certificate and key; when either changes and the pair is valid, installs it with
 * `setSecureContext`. New TLS handshakes use it; open connections are not dropped.
 */
export class CertificateReloader {
  private readonly server: https.Server;
  private readonly files: TlsFiles;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private seen = '';
  private current: string;
  private checking = false;
  /** Consecutive failed reload attempts (logged, never fatal: the old pair keeps serving). */
  failures = 0;
  reloads = 0;

  constructor(server: https.Server, files: TlsFiles, initial: KeyPair, log: Logger) {
    this.server = server;
    this.files = files;
    this.log = log;
    this.current = digest(initial);
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      void this.check();
    }, intervalMs);
    this.timer.unref();
    void this.check();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One poll; resolves true when a new pair was installed. */
  async check(): Promise<boolean> {
    if (this.checking) return false;
    this.checking = true;
    try {
      const [c, k] = await Promise.all([stat(this.files.certPath), stat(this.files.keyPath)]);
      const signature = `${c.mtimeMs}:${c.size}:${k.mtimeMs}:${k.size}`;
      if (signature === this.seen) return false;
      const pair = {
        cert: await readFile(this.files.certPath),
        key: await readFile(this.files.keyPath),
      };
      const sum = digest(pair);
      if (sum === this.current) {
        this.seen = signature;
        return false;
      }
      createSecureContext(pair); // throws on a mismatched or half-written pair: retry next poll
      this.server.setSecureContext(pair);
      this.current = sum;
      this.seen = signature;
      this.failures = 0;
      this.reloads++;
      this.log.info({ cert: this.files.certPath }, 'serving certificate reloaded');
      return true;
    } catch (err) {
      this.failures++;
      this.log.warn(
        { err, failures: this.failures },
        'serving certificate not reloaded; keeping the previous one',
      );
      return false;
    } finally {
      this.checking = false;
    }
  }
}

export const createHttpsServer = (
  app: RequestListener,
  pair: KeyPair,
  timeouts: ServerTimeouts,
): https.Server => {
  const server = https.createServer({ ...pair, minVersion: 'TLSv1.2' }, app);
  server.keepAliveTimeout = timeouts.keepAliveTimeoutMs;
  server.headersTimeout = timeouts.headersTimeoutMs;
  return server;
};

export const createHttpServer = (app: RequestListener): http.Server => http.createServer(app);

/** Listens and resolves with the bound address (port 0 picks a free one). */
export const listen = (server: http.Server | https.Server, at: HostPort): Promise<AddressInfo> =>
  new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(err);
    };
    server.once('error', onError);
    server.listen(at.port, at.host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });

/**
 * Stops accepting, lets requests in flight finish (idle keep-alive connections are closed at
 * once), and cuts whatever is left after `graceMs`.
 */
export const closeGracefully = (
  server: http.Server | https.Server,
  graceMs: number,
): Promise<void> =>
  new Promise(resolve => {
    if (!server.listening) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      server.closeAllConnections();
    }, graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
