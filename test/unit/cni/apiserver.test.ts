/**
 * Item 11 of the lease-safety issue, CNI side: each error names what actually went wrong with
 * the API server's answer. runPlugin runs in-process with its default lookup, against a plain-HTTP
 * stand-in on 127.0.0.1 named by a kubeconfig in a temp dir.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_BODY } from '../../../src/cni/apiserver.js';
import { CNI_ERROR } from '../../../src/cni/errors.js';
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
