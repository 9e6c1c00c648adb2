/**
 * Item 11 of the lease-safety issue, CNI side: each error names what actually went wrong with
 * the API server's answer. runPlugin runs in-process with its default lookup, against a plain-HTTP
 * stand-in on 127.0.0.1 named by a kubeconfig in a temp dir.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiUnreachableError, httpGet, MAX_BODY } from '../../../src/cni/apiserver.js';
import { CNI_ERROR } from '../../../src/cni/errors.js';
import { loadKubeconfig } from '../../../src/cni/kubeconfig.js';
import { addNetConf, pod } from '../../fixtures/cni/loader.js';
import { baseEnv, run } from './helpers.js';

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let url = '';
let dir = '';
let kubeconfig = '';
let answer: Answer = (_req, res) => res.end();
/** Bytes the stand-in managed to write for the last answer. */
let written = 0;

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}): Answer =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

/** A 200 of `total` bytes, written a MiB at a time while the client keeps reading. */
const huge =
  (total: number): Answer =>
  (_req, res) => {
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(total) });
    const pump = (): void => {
      while (written < total && !res.destroyed) {
        written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    pump();
  };

beforeAll(async () => {
  server = createServer((req, res) => {
    answer(req, res);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), 'podlease-cni-unit-'));
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: url } }],
      users: [{ name: 'u', user: { tokenFile: 'token' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    }),
  );
  writeFileSync(join(dir, 'token'), 'secret-token\n');
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise(resolve => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  written = 0;
});

interface ErrorJson {
  code: number;
  msg: string;
  details?: string;
}

const add = async (kubeconfigPath = kubeconfig): Promise<ErrorJson> => {
  const conf = addNetConf();
  conf.ipam.kubeconfig = kubeconfigPath;
  const r = await run(baseEnv('ADD'), conf);
  expect(r.code).toBe(1);
  return r.json as ErrorJson;
};

describe('ADD: what the API server answered', () => {
  it('still reads a pod (the stand-in works)', async () => {
    answer = json(200, pod());
    const conf = addNetConf();
    conf.ipam.kubeconfig = kubeconfig;
    const r = await run(baseEnv('ADD'), conf);
    expect(r.code).toBe(0);
  });

  it('says a 50 MB answer is too large, not that the server cannot be reached', async () => {
    answer = huge(50 * 1024 * 1024);
    const err = await add();
    expect(err.code).toBe(CNI_ERROR.tryAgainLater);
    expect(err.msg).toBe(
      `the API server ${url} answered GET pod team-a/web-0 with more than ${MAX_BODY} bytes ` +
        '(4 MiB), larger than any pod',
    );
    expect(err.msg).not.toContain('cannot be reached');
    expect(err.details).toContain(
      `check that the kubeconfig's server ${url} is the Kubernetes API server`,
    );
    // The plugin stopped reading: far less than the 50 MB was sent.
    expect(written).toBeLessThan(20 * 1024 * 1024);
  });

  for (const [body, what] of [
    [null, 'null'],
    [[1, 2, 3], 'a JSON list'],
    ['pod', 'a JSON string'],
    [
      { kind: 'Service', apiVersion: 'v1', metadata: { name: 'web-0' } },
      'an object of kind "Service"',
    ],
    [{ kind: 'Pod', apiVersion: 'v1' }, 'an object of kind "Pod"'],
  ] as const) {
    it(`says ${JSON.stringify(body)} is not a Pod object, not that the webhook did not admit it`, async () => {
      answer = json(200, body);
      const err = await add();
      expect(err.code).toBe(CNI_ERROR.tryAgainLater);
      expect(err.msg).toBe(
        `the API server ${url} answered GET pod team-a/web-0 with something that is not a Pod ` +
          `object (${what})`,
      );
      expect(err.msg).not.toContain('did not admit');
    });
  }

  it('says a 302 is an unexpected redirect and names the server, not RBAC', async () => {
    answer = json(302, {}, { location: 'https://login.example.com/sso' });
    const err = await add();
    expect(err.code).toBe(CNI_ERROR.invalidConfig);
    expect(err.msg).toBe(
      `the API server ${url} answered GET pod team-a/web-0 with an unexpected redirect ` +
        '(status 302 to https://login.example.com/sso)',
    );
    expect(err.details).toContain('does not follow redirects');
    expect(`${err.msg} ${err.details ?? ''}`).not.toContain('"get" on pods');
  });

  it('still names RBAC for a 403, and caps a long Status message', async () => {
    answer = json(403, { kind: 'Status', message: `forbidden ${'x'.repeat(10_000)}` });
    const err = await add();
    expect(err.code).toBe(CNI_ERROR.apiServerRefused);
    expect(err.details).toContain('more characters)');
    expect(err.details).toContain('"get" on pods');
    expect(err.details?.length).toBeLessThan(500);
  });

  it('says an unexpected 2xx is unexpected', async () => {
    answer = json(204, {});
    const err = await add();
    expect(err.code).toBe(CNI_ERROR.tryAgainLater);
    expect(err.msg).toContain('with unexpected status 204 (expected 200)');
  });
});

describe('ADD: files the kubeconfig needs', () => {
  it('answers 5 naming the path when the kubeconfig file is missing', async () => {
    const missing = join(dir, 'nope', 'kubeconfig');
    const err = await add(missing);
    expect(err.code).toBe(CNI_ERROR.ioFailure);
    expect(err.msg).toBe(`cannot read the kubeconfig ${missing}`);
    expect(err.details).toContain('ENOENT');
  });

  it('answers 5 naming the path when the tokenFile is missing', async () => {
    const other = join(dir, 'kubeconfig-missing-token');
    writeFileSync(
      other,
      JSON.stringify({
        clusters: [{ name: 'c', cluster: { server: url } }],
        users: [{ name: 'u', user: { tokenFile: 'no-such-token' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      }),
    );
    const err = await add(other);
    expect(err.code).toBe(CNI_ERROR.ioFailure);
    expect(err.msg).toBe(
      `cannot read tokenFile ${join(dir, 'no-such-token')} named in the kubeconfig ${other}`,
    );
  });
});

/**
 * The request the plugin writes and the answers its own HTTP reader takes apart, against a raw
 * TCP stand-in that writes bytes exactly as given (chunked, cut short, slow or nothing).
 */
describe('ADD: the HTTP exchange on the wire', () => {
  let raw: NetServer;
  let rawUrl = '';
  let rawKubeconfig = '';
  /** What the stand-in does with a connection, once it has the request head. */
  let reply: (socket: Socket, head: string) => void = s => s.end();
  /** Whether a client half-closed its side before being answered. */
  let halfClosed = false;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    raw = createNetServer(socket => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      let head = '';
      let answered = false;
      socket.on('end', () => {
        if (!answered) halfClosed = true;
      });
      socket.on('data', (d: Buffer) => {
        head += d.toString('latin1');
        if (!answered && head.includes('\r\n\r\n')) {
          answered = true;
          reply(socket, head);
        }
      });
    });
    await new Promise<void>(resolve => raw.listen(0, '127.0.0.1', resolve));
    rawUrl = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
    rawKubeconfig = join(dir, 'kubeconfig-raw');
    writeFileSync(
      rawKubeconfig,
      JSON.stringify({
        clusters: [{ name: 'c', cluster: { server: `${rawUrl}/prefix/` } }],
        users: [{ name: 'u', user: { token: 'raw-token' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      }),
    );
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise(resolve => raw.close(resolve));
  });

  beforeEach(() => {
    halfClosed = false;
  });

  const chunked = (status: string, body: string): string => {
    const bytes = Buffer.from(body);
    const half = Math.floor(bytes.length / 2);
    const a = bytes.subarray(0, half);
    const b = bytes.subarray(half);
    return (
      `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${a.length.toString(16)}\r\n${a.toString('latin1')}\r\n` +
      `${b.length.toString(16)}\r\n${b.toString('latin1')}\r\n0\r\n\r\n`
    );
  };

  const addRaw = async (): Promise<{ code: number; json: ErrorJson }> => {
    const conf = addNetConf();
    conf.ipam.kubeconfig = rawKubeconfig;
    const r = await run(baseEnv('ADD'), conf);
    return { code: r.code, json: r.json as ErrorJson };
  };

  it('sends one GET with Host, Accept, the token and Connection: close, and never half-closes', async () => {
    let seen = '';
    reply = (socket, head) => {
      seen = head;
      socket.end(chunked('200 OK', JSON.stringify(pod())));
    };
    const r = await addRaw();
    expect(r.code).toBe(0);
    const lines = seen.split('\r\n');
    expect(lines[0]).toBe('GET /prefix/api/v1/namespaces/team-a/pods/web-0 HTTP/1.1');
    expect(lines).toContain(`Host: ${rawUrl.slice('http://'.length)}`);
    expect(lines).toContain('Authorization: Bearer raw-token');
    expect(lines).toContain('Connection: close');
    expect(lines.some(l => l.startsWith('Accept: application/json;as=PartialObjectMetadata'))).toBe(
      true,
    );
    expect(halfClosed).toBe(false);
  });

  it('reads a chunked pod, answering before the server closes the connection', async () => {
    reply = socket => {
      // Answer complete, connection left open: the plugin must not wait for the close.
      socket.write(chunked('200 OK', JSON.stringify(pod())));
    };
    const r = await addRaw();
    expect(r.code).toBe(0);
  });

  it('gives a chunked 403 Kubernetes Status the same RBAC error as before', async () => {
    const status = {
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      message:
        'pods "web-0" is forbidden: User "system:serviceaccount:x:y" cannot get resource "pods"',
      reason: 'Forbidden',
      code: 403,
    };
    reply = socket => socket.end(chunked('403 Forbidden', JSON.stringify(status)));
    const r = await addRaw();
    expect(r.json.code).toBe(CNI_ERROR.apiServerRefused);
    expect(r.json.msg).toBe(`the API server ${rawUrl} answered 403 to GET pod team-a/web-0`);
    expect(r.json.details).toBe(
      `${status.message} — the kubeconfig's credentials need "get" on pods (check the podlease ` +
        'ClusterRole and its binding)',
    );
  });

  it('gives a 404 Status answered with Content-Length the pod-not-found error', async () => {
    const body = JSON.stringify({ kind: 'Status', message: 'pods "web-0" not found', code: 404 });
    reply = socket =>
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const r = await addRaw();
    expect(r.json.code).toBe(CNI_ERROR.podNotFound);
    expect(r.json.details).toBe('pods "web-0" not found');
  });

  for (const [what, bytes, detail] of [
    [
      'a body cut short of its Content-Length',
      'HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{"kind":"Pod",',
      'the connection closed before the whole response body arrived',
    ],
    [
      'a chunked body without its last chunk',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"kin\r\n',
      'the connection closed before the whole response body arrived',
    ],
    [
      'an answer that is not HTTP',
      'SSH-2.0-OpenSSH_9.6\r\n\r\n',
      'malformed HTTP response: bad status line',
    ],
    ['a connection closed without an answer', '', 'the connection closed before a complete'],
  ] as const) {
    it(`answers 11 (try again later) for ${what}`, async () => {
      reply = socket => socket.end(bytes);
      const r = await addRaw();
      expect(r.json.code).toBe(CNI_ERROR.tryAgainLater);
      expect(r.json.msg).toBe(`the API server ${rawUrl} cannot be reached; try again later`);
      expect(r.json.details).toContain(
        `GET ${rawUrl}/prefix/api/v1/namespaces/team-a/pods/web-0: `,
      );
      expect(r.json.details).toContain(detail);
    });
  }

  it('gives up with "no answer within" when the server never finishes its answer', async () => {
    reply = socket => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{');
    const conn = await loadKubeconfig(rawKubeconfig);
    const e = await httpGet(conn, '/version', { accept: 'application/json', timeoutMs: 200 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ApiUnreachableError);
    expect((e as ApiUnreachableError).message).toBe(
      `GET ${rawUrl}/prefix/version: no answer within 200 ms`,
    );
    expect((e as ApiUnreachableError).tlsConfig).toBe(false);
  });
});
