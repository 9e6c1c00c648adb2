/**
 * Two `podlease serve` processes on one Redis, over HTTPS: 2,000 concurrent admissions with
 * every allowed pod at a distinct address of its pool, dry runs and denials leasing nothing, a
 * sticky `web-0` getting the same address twice, a /28 with a gateway denying its 14th pod with
 * the counts, certificate reload without dropping connections, and a graceful SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cidrContains, parseCidr, parseIp } from '../../../src/ip/address.js';
import { parsePoolsText, type Pool, type PoolSet } from '../../../src/pool/pools-file.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import { applyAnnotationPatch } from '../../../src/webhook/patch.js';
import type { PatchOperation } from '../../../src/webhook/types.js';
import { reviewWith, type ReviewJson } from '../../fixtures/admission/load.js';
import {
  ensureBuilt,
  generateCerts,
  httpsAgent,
  postJson,
  startServe,
  type HttpsReply,
  type ServeProcess,
} from './serve-process.js';

const skip = inject('redisSkip');

interface ReviewReply {
  response: {
    uid: string;
    allowed: boolean;
    patch?: string;
    status?: { code: number; message: string };
  };
}

const annotationsOf = (reply: HttpsReply): Record<string, string> => {
  const r = (reply.body as ReviewReply).response;
  if (r.patch === undefined) return {};
  const ops = JSON.parse(Buffer.from(r.patch, 'base64').toString()) as PatchOperation[];
  return applyAnnotationPatch(ops[0]?.path === '/metadata/annotations' ? undefined : {}, ops) ?? {};
};

describe.skipIf(skip !== '')(
  `podlease serve × 2 on Redis${skip === '' ? '' : ` (skipped: ${skip})`}`,
  () => {
    const tag = randomBytes(4).toString('hex');
    const names = { big: `wh-${tag}-big`, small: `wh-${tag}-small` };
    const dir = mkdtempSync(join(tmpdir(), 'podlease-webhook-'));
    let pools: PoolSet;
    let servers: ServeProcess[] = [];
    let agent: Agent;
    let store: RedisLeaseStore;
    let uid = 0;

    const pool = (name: string): Pool => {
      const p = pools.pools.get(name);
      if (p === undefined) throw new Error(`no pool ${name}`);
      return p;
    };

    const review = (
      edit: Parameters<typeof reviewWith>[1],
      fixture: Parameters<typeof reviewWith>[0] = 'create-pod-deployment',
    ): ReviewJson => reviewWith(fixture, { uid: `uid-${tag}-${uid++}`, ...edit });

    const admit = (r: ReviewJson, n: number): Promise<HttpsReply> => {
      const server = servers[n % servers.length]!;
      return postJson(agent, server.port, '/mutate?timeout=10s', r);
    };

    beforeAll(async () => {
      ensureBuilt();
      generateCerts(dir);
      const poolsText =
        `pools:\n` +
        `  - name: ${names.big}\n    cidr: 10.60.0.0/16\n    gateway: 10.60.0.1\n    default: true\n` +
        `  - name: ${names.small}\n    cidr: 10.61.0.0/28\n    gateway: 10.61.0.1\n`;
      writeFileSync(join(dir, 'pools.yaml'), poolsText);
      pools = parsePoolsText(poolsText, 'pools.yaml');
      const url = inject('redisUrl');
      const args = [
        '--pools',
        join(dir, 'pools.yaml'),
        '--tls-reload-interval',
        '200ms',
        '--log-level',
        'warn',
      ];
      servers = await Promise.all(
        [0, 1].map(() => startServe({ certDir: dir, args, env: { REDIS_URL: url } })),
      );
      agent = httpsAgent(join(dir, 'ca.crt'), 64);
      store = await RedisLeaseStore.connect({ url });
    });

    afterAll(async () => {
      agent.destroy();
      await Promise.all(servers.map(s => s.stop()));
      await Promise.all(Object.values(names).map(n => store.dropPool(n)));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('takes 2,000 concurrent admissions: distinct addresses inside the pool; dry runs and denials lease nothing', async () => {
      const big = pool(names.big);
      const kinds = Array.from({ length: 2_000 }, (_, i) =>
        i % 20 === 7 ? 'dry' : i % 20 === 13 ? 'unknown' : i % 20 === 17 ? 'outside' : 'pod',
      );
      const replies = await Promise.all(
        kinds.map((kind, i) => {
          if (kind === 'dry') return admit(review({ dryRun: true, annotations: null }), i);
          if (kind === 'unknown')
            return admit(review({ annotations: { 'podlease.io/pool': 'nope' } }), i);
          if (kind === 'outside')
            return admit(review({ annotations: { 'podlease.io/static-ip': '10.61.0.5' } }), i);
          return admit(review({ annotations: null }), i);
        }),
      );
      const cidr = parseCidr('10.60.0.0/16')!;
      const ips = new Set<string>();
      const leaseIds = new Set<string>();
      replies.forEach((reply, i) => {
        expect(reply.status).toBe(200);
        const r = (reply.body as ReviewReply).response;
        const kind = kinds[i];
        if (kind === 'dry') {
          expect(r).toEqual({ uid: r.uid, allowed: true });
        } else if (kind === 'unknown') {
          expect(r.status?.code).toBe(404);
          expect(r.status?.message).toContain(`known pools: ${names.big}, ${names.small}`);
        } else if (kind === 'outside') {
          expect(r.status?.code).toBe(400);
          expect(r.status?.message).toContain(`belongs to pool "${names.small}"`);
        } else {
          expect(r.allowed).toBe(true);
          const ann = annotationsOf(reply);
          const ip = ann['podlease.io/ip'] ?? '';
          const parsed = parseIp(ip)!;
          expect(cidrContains(cidr, parsed.family, parsed.value)).toBe(true);
          expect(ip).not.toBe('10.60.0.1');
          ips.add(ip);
          leaseIds.add(ann['podlease.io/lease'] ?? '');
        }
      });
      const allowed = kinds.filter(k => k === 'pod').length;
      expect(allowed).toBe(1_700);
      expect(ips.size).toBe(allowed);
      expect(leaseIds.size).toBe(allowed);
      const leases = await store.leases(big);
      expect(leases).toHaveLength(allowed);
      expect(new Set(leases.map(l => l.ip))).toEqual(ips);
      expect(new Set(leases.map(l => `${names.big}/${l.id}`))).toEqual(leaseIds);
      expect(leases.every(l => l.state === 'pending' && l.generateName === 'web-7d9f8b6c5d-')).toBe(
        true,
      );
    });

    it('gives a sticky web-0 the same address on both replicas', async () => {
      const firstReview = review({}, 'create-pod-statefulset');
      const first = annotationsOf(await admit(firstReview, 0));
      expect(first['podlease.io/ip']).toMatch(/^10\.60\./);
      // The API server retries the call on the other replica: the same lease.
      const retried = annotationsOf(await admit(firstReview, 1));
      expect(retried['podlease.io/lease']).toBe(first['podlease.io/lease']);
      // A new web-0 while the first one's lease is pending and young: its create may still be in
      // flight, so the address is not taken over.
      const early = (await admit(review({}, 'create-pod-statefulset'), 1)).body as ReviewReply;
      expect(early.response.status?.code).toBe(409);
      // The first pod is gone (its lease released by the controller): the reservation stays.
      const [pool0, id] = (first['podlease.io/lease'] ?? '').split('/');
      await store.release(pool(pool0 ?? ''), id ?? '');
      const second = annotationsOf(await admit(review({}, 'create-pod-statefulset'), 1));
      expect(second['podlease.io/ip']).toBe(first['podlease.io/ip']);
      expect(second['podlease.io/lease']).not.toBe(first['podlease.io/lease']);
      const web1 = annotationsOf(
        await admit(review({ podName: 'web-1' }, 'create-pod-statefulset'), 1),
      );
      expect(web1['podlease.io/ip']).not.toBe(first['podlease.io/ip']);
    });

    it('denies the 14th pod of a /28 with a gateway as exhausted, with the counts', async () => {
      const small = { 'podlease.io/pool': names.small };
      const replies = await Promise.all(
        Array.from({ length: 13 }, (_, i) => admit(review({ annotations: small }), i)),
      );
      const ips = replies.map(r => annotationsOf(r)['podlease.io/ip']);
      expect(new Set(ips).size).toBe(13);
      expect(ips).not.toContain('10.61.0.1');
      const dry = await admit(review({ annotations: small, dryRun: true }), 0);
      expect((dry.body as ReviewReply).response.status?.code).toBe(403);
      const last = (await admit(review({ annotations: small }), 1)).body as ReviewReply;
      expect(last.response.allowed).toBe(false);
      expect(last.response.status?.code).toBe(403);
      expect(last.response.status?.message).toBe(
        `podlease: pool "${names.small}" is exhausted: 13 of 13 addresses leased; delete pods or sticky ` +
          'reservations that use it, or add addresses to the pool',
      );
      expect((await store.stats(pool(names.small))).leased).toBe(13);
    });

    it('answers 400 to a body that is not an AdmissionReview, and exposes metrics', async () => {
      const bad = await postJson(agent, servers[0]!.port, '/mutate', { kind: 'Pod' });
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ error: 'BadRequest' });
      const text = await (
        await fetch(`http://127.0.0.1:${servers[0]!.metricsPort}/metrics`)
      ).text();
      expect(text).toContain(`podlease_pool_size{pool="${names.small}"} 13`);
      expect(text).toMatch(
        new RegExp(
          `podlease_admissions_total\\{endpoint="mutate",outcome="allowed",pool="${names.big}",code="200"\\} \\d+`,
        ),
      );
    });

    it('reloads a changed certificate without dropping open connections', async () => {
      const oldCa = join(dir, 'ca-old.crt');
      writeFileSync(oldCa, (await import('node:fs')).readFileSync(join(dir, 'ca.crt')));
      const kept = httpsAgent(oldCa, 1);
      const port = servers[0]!.port;
      const probe = (): ReviewJson => review({ annotations: { 'podlease.io/ignore': 'true' } });
      expect((await postJson(kept, port, '/mutate', probe())).status).toBe(200);
      generateCerts(dir); // a new CA and serving certificate
      await new Promise(r => setTimeout(r, 1_000));
      // The open keep-alive connection still answers; a new connection trusting the old CA fails.
      expect((await postJson(kept, port, '/mutate', probe())).status).toBe(200);
      const fresh = httpsAgent(oldCa, 1);
      await expect(postJson(fresh, port, '/mutate', probe())).rejects.toThrow(/certificate/);
      const renewed = httpsAgent(join(dir, 'ca.crt'), 1);
      expect((await postJson(renewed, port, '/mutate', probe())).status).toBe(200);
      for (const a of [kept, fresh, renewed]) a.destroy();
    });

    it('stops gracefully on SIGTERM', async () => {
      const s = servers.pop()!;
      expect(await s.stop()).toBe(0);
    });
  },
);
