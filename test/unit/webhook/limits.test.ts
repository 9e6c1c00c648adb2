import { DEFAULTS } from '../../../src/config/config.js';
/**
 * Item 10 of the lease-safety issue: address annotations are bounded before they are parsed, are
 * parsed in linear time, and a denial quotes at most a short stretch of what it refuses. No
 * wall-clock assertions: the work done is counted with spies on the built-ins the parser could
 * spend it in.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ADDRESS_ENTRY_MAX_CHARS,
  IP_LIST_MAX_ENTRIES,
  STATIC_IP_MAX_ENTRIES,
} from '../../../src/pool/annotations.js';
import { toPoolSet } from '../../../src/pool/pools-file.js';
import { quote } from '../../../src/text/quote.js';
import { decide, type Plan } from '../../../src/webhook/decide.js';
import { BadAnnotationError } from '../../../src/webhook/errors.js';
import { handleMutate } from '../../../src/webhook/handlers.js';
import { toPodView } from '../../../src/webhook/review.js';
import { reviewWith, type AdmissionFixture } from '../../fixtures/admission/load.js';
import { harness, V4_ONLY_POOLS } from './helpers.js';

const pools = toPoolSet(V4_ONLY_POOLS);

/** `n` distinct allocatable addresses of the default pool 10.244.0.0/16, from 10.244.1.0. */
const v4List = (n: number): string =>
  Array.from({ length: n }, (_, i) => `10.244.${((i + 256) >> 8) & 255}.${(i + 256) & 255}`).join(
    ',',
  );

const decideWith = (fixture: AdmissionFixture, annotations: Record<string, string>): Plan => {
  const r = reviewWith(fixture, { annotations });
  return decide({
    namespace: 'default',
    pod: toPodView(r.request.object),
    namespaceAnnotations: undefined,
    pools,
    userInfo: { username: 'system:kube-controller-manager' },
    statefulSetCreators: DEFAULTS.statefulSetCreators,
  });
};

const denial = (run: () => unknown): BadAnnotationError => {
  try {
    run();
  } catch (e) {
    if (e instanceof BadAnnotationError) return e;
    throw e;
  }
  throw new Error('expected a BadAnnotationError');
};

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * Runs `run` with String.prototype.split watched: returns the length of every string split, and
 * throws (failing the test at once, instead of after minutes of quadratic work) when a string
 * longer than `refuseOver` is split.
 */
const splitsDuring = (refuseOver: number, run: () => void): number[] => {
  const original: typeof String.prototype.split = Reflect.get(String.prototype, 'split');
  const lengths: number[] = [];
  vi.spyOn(String.prototype, 'split').mockImplementation(function (
    this: string,
    ...args: Parameters<typeof original>
  ) {
    lengths.push(this.length);
    if (this.length > refuseOver) throw new Error(`split a ${this.length}-character value`);
    return original.apply(this, args);
  });
  try {
    run();
  } finally {
    vi.restoreAllMocks();
  }
  return lengths;
};

describe('podlease.io/ip-list is bounded before it is parsed', () => {
  for (const n of [20_000, 100_000]) {
    it(`denies a ${n}-entry list with the limit named, without splitting it`, () => {
      const value = v4List(n);
      let err: BadAnnotationError | undefined;
      const splits = splitsDuring(IP_LIST_MAX_ENTRIES * ADDRESS_ENTRY_MAX_CHARS, () => {
        err = denial(() => decideWith('create-pod-statefulset', { 'podlease.io/ip-list': value }));
      });
      expect(err?.annotation).toBe('podlease.io/ip-list');
      expect(err?.status).toBe(400);
      expect(err?.message).toContain(`at most ${IP_LIST_MAX_ENTRIES}`);
      expect(err?.message.length).toBeLessThan(300);
      expect(splits.filter(len => len >= value.length)).toEqual([]);
    });
  }

  it('answers 400 with the podlease: prefix and the limit (not a 503 "within 0 ms")', async () => {
    const h = await harness();
    for (const n of [20_000, 100_000]) {
      const r = reviewWith('create-pod-statefulset', {
        annotations: { 'podlease.io/ip-list': v4List(n) },
      });
      const { review, outcome } = await handleMutate(r, {}, h.deps);
      expect(outcome).toBe('denied');
      expect(review.response?.status?.code).toBe(400);
      expect(review.response?.status?.message).toMatch(
        /^podlease: podlease\.io\/ip-list (is \d+ characters long|has \d+ entries); it takes at most 4096 /,
      );
    }
  });

  it('counts the entries of a short value before splitting it: 4097 entries are denied', () => {
    const value = v4List(IP_LIST_MAX_ENTRIES + 1);
    expect(value.length).toBeLessThan(IP_LIST_MAX_ENTRIES * ADDRESS_ENTRY_MAX_CHARS);
    let err: BadAnnotationError | undefined;
    const splits = splitsDuring(value.length - 1, () => {
      err = denial(() => decideWith('create-pod-statefulset', { 'podlease.io/ip-list': value }));
    });
    expect(err?.message).toBe(
      `podlease.io/ip-list has ${IP_LIST_MAX_ENTRIES + 1} entries; it takes at most ` +
        `${IP_LIST_MAX_ENTRIES} (one address per StatefulSet ordinal and family)`,
    );
    expect(splits.filter(len => len >= value.length)).toEqual([]);
  });

  it('parses a list at the limit in linear work (no per-entry scan of the entries so far)', () => {
    const value = v4List(IP_LIST_MAX_ENTRIES);
    // Every element the array search built-ins look at, summed over the call: a duplicate check
    // by list.includes (the old parser) looks at n²/2 ≈ 8.4 million for n = 4096. Parsing one
    // address with ip-address looks at 8 (two `some` over its four groups).
    let scanned = 0;
    const searches = (
      ['includes', 'indexOf', 'lastIndexOf', 'find', 'findIndex', 'some'] as const
    ).map(name => vi.spyOn(Array.prototype, name));
    const plan = (() => {
      try {
        return decideWith('create-pod-statefulset', { 'podlease.io/ip-list': value });
      } finally {
        for (const spy of searches) {
          for (const self of spy.mock.contexts as unknown as unknown[][]) scanned += self.length;
        }
        vi.restoreAllMocks();
      }
    })();
    expect(plan.kind === 'lease' ? plan.claims[0]?.ip : plan.kind).toBe('10.244.1.0');
    expect(scanned).toBeLessThan(16 * IP_LIST_MAX_ENTRIES);
  });
});

describe('podlease.io/static-ip is bounded and quoted short', () => {
  it(`takes at most ${STATIC_IP_MAX_ENTRIES} entries, one per family`, () => {
    const err = denial(() =>
      decideWith('create-pod-static-ip', {
        'podlease.io/static-ip': '10.244.3.3,10.244.3.4,10.244.3.5',
      }),
    );
    expect(err.message).toBe(
      'podlease.io/static-ip has 3 entries; it takes at most 2 (one address per family, IPv4,IPv6)',
    );
  });

  it('answers a 1 MB static-ip with a denial shorter than 300 characters', async () => {
    const h = await harness();
    for (const value of ['x'.repeat(1_000_000), `10.244.3.3,${'y'.repeat(100)}`]) {
      const r = reviewWith('create-pod-static-ip', {
        annotations: { 'podlease.io/static-ip': value },
      });
      const { review } = await handleMutate(r, {}, h.deps);
      expect(review.response?.allowed).toBe(false);
      expect(review.response?.status?.code).toBe(400);
      const message = review.response?.status?.message ?? '';
      expect(message).toMatch(/^podlease: podlease\.io\/static-ip[: ]/);
      expect(message.length).toBeLessThan(300);
    }
  });

  it('quotes a long entry that is not an address by its first 64 characters', () => {
    const err = denial(() =>
      decideWith('create-pod-static-ip', { 'podlease.io/static-ip': 'z'.repeat(100) }),
    );
    expect(err.message).toBe(
      `podlease.io/static-ip: "${'z'.repeat(64)}"…(36 more characters) is not an IP address`,
    );
  });

  it('quotes other annotations short too (pool, sticky)', async () => {
    const h = await harness();
    const long = 'p'.repeat(1_000_000);
    const cases: Record<string, string>[] = [
      { 'podlease.io/pool': long },
      { 'podlease.io/pool': `${long},${long},x` },
      { 'podlease.io/sticky': long },
    ];
    for (const annotations of cases) {
      const r = reviewWith('create-pod-statefulset', { annotations });
      const { review } = await handleMutate(r, {}, h.deps);
      expect(review.response?.allowed).toBe(false);
      expect(review.response?.status?.message.length).toBeLessThan(300);
    }
  });
});

describe('quote', () => {
  it('quotes short text whole and cuts long text, counting the rest', () => {
    expect(quote('abc')).toBe('"abc"');
    expect(quote('a'.repeat(64))).toBe(`"${'a'.repeat(64)}"`);
    expect(quote('a'.repeat(1_000_000))).toBe(`"${'a'.repeat(64)}"…(999936 more characters)`);
    expect(quote('ab', 1)).toBe('"a"…(1 more characters)');
  });

  it('does not cut a surrogate pair in half', () => {
    expect(quote(`${'a'.repeat(63)}😀tail`)).toBe(`"${'a'.repeat(63)}"…(6 more characters)`);
  });
});
