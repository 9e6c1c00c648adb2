import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalIp,
  formatIp,
  formatRange,
  mergeRanges,
  parseCidr,
  parseIp,
  parseRange,
  subtractRanges,
  type IpRange,
} from '../../../src/ip/address.js';
import { toPoolSet } from '../../../src/pool/pools-file.js';
import {
  indexToIp,
  ipToIndex,
  parseSegments,
  serializeSegments,
} from '../../../src/pool/layout.js';

const v4 = fc.bigInt({ min: 0n, max: 2n ** 32n - 1n });
const v6 = fc.bigInt({ min: 0n, max: 2n ** 128n - 1n });

describe('address parsing and formatting', () => {
  it('round-trips every IPv4 and IPv6 value through its canonical text', () => {
    fc.assert(fc.property(v4, value => parseIp(formatIp({ family: 4, value }))?.value === value));
    fc.assert(fc.property(v6, value => parseIp(formatIp({ family: 6, value }))?.value === value));
  });

  it('canonicalises and rejects malformed addresses', () => {
    expect(canonicalIp('FD00:0:0::1')).toBe('fd00::1');
    expect(canonicalIp(' 10.0.0.1 ')).toBe('10.0.0.1');
    for (const bad of [
      '10.0.0',
      '10.0.0.256',
      '10.0.0.01',
      'fd00::/64',
      'x',
      '',
      '1.2.3.4/32',
      'fe80::1%eth0',
    ]) {
      expect(canonicalIp(bad), bad).toBeUndefined();
    }
  });

  it('normalises a cidr to its network address', () => {
    expect(parseCidr('10.244.7.9/16')).toMatchObject({
      family: 4,
      network: 0x0af40000n,
      prefix: 16,
      size: 65536n,
    });
    expect(parseCidr('fd00::1/64')?.network).toBe(0xfd00n << 112n);
    for (const bad of [
      '10.0.0.0/33',
      '10.0.0.0',
      '10.0.0.0/',
      'fd00::/129',
      '10.0.0.0/8/8',
      '10.0.0.0/+8',
    ]) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });

  it('parses ranges, cidrs and single addresses as ranges', () => {
    expect(formatRange(parseRange('10.0.0.10-10.0.0.20')!)).toBe('10.0.0.10-10.0.0.20');
    expect(parseRange('10.0.7.0/24')).toMatchObject({ first: 0x0a000700n, last: 0x0a0007ffn });
    expect(parseRange('fd00::5')).toMatchObject({ family: 6, first: (0xfd00n << 112n) | 5n });
    expect(parseRange('10.0.0.20-10.0.0.10')).toBeUndefined();
    expect(parseRange('10.0.0.1-fd00::1')).toBeUndefined();
  });

  it('subtracting holes leaves exactly the addresses outside them', () => {
    const small = fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 30 }));
    fc.assert(
      fc.property(
        fc.array(small, { maxLength: 6 }),
        fc.array(small, { maxLength: 6 }),
        (spans, holes) => {
          const toRange = ([a, n]: [number, number]): IpRange => ({
            family: 4,
            first: BigInt(a),
            last: BigInt(a + n),
          });
          const merged = mergeRanges(spans.map(toRange));
          const out = subtractRanges(merged, holes.map(toRange));
          const inside = (rs: IpRange[], x: number) =>
            rs.some(r => BigInt(x) >= r.first && BigInt(x) <= r.last);
          for (let x = 0; x <= 240; x++) {
            expect(inside(out, x)).toBe(inside(merged, x) && !inside(holes.map(toRange), x));
          }
        },
      ),
    );
  });
});

describe('pool layout (index space)', () => {
  const cidrArb = fc.tuple(v4, fc.integer({ min: 20, max: 32 }));

  it('index ↔ address round-trips and never yields network, broadcast, gateway or excluded', () => {
    fc.assert(
      fc.property(cidrArb, fc.nat(), fc.nat(), ([base, prefix], gwPick, exPick) => {
        const cidr = parseCidr(`${formatIp({ family: 4, value: base })}/${prefix}`)!;
        const hosts = Number(cidr.size);
        const gw = cidr.network + BigInt(gwPick % hosts);
        const ex = cidr.network + BigInt(exPick % hosts);
        let pools;
        try {
          pools = toPoolSet({
            pools: [
              {
                name: 'p',
                cidr: `${formatIp({ family: 4, value: cidr.network })}/${prefix}`,
                gateway: formatIp({ family: 4, value: gw }),
                exclude: [formatIp({ family: 4, value: ex })],
              },
            ],
          });
        } catch {
          return; // a /31 or /32 whose only addresses are the gateway and the excluded one
        }
        const pool = pools.pools.get('p')!;
        const { layout } = pool;
        const last = cidr.network + cidr.size - 1n;
        for (let i = 0; i < Math.min(layout.size, 300); i++) {
          const ip = indexToIp(layout, i)!;
          expect(ipToIndex(layout, ip)).toBe(i);
          const value = parseIp(ip)!.value;
          expect(value).not.toBe(gw);
          expect(value).not.toBe(ex);
          if (prefix < 31) {
            expect(value).not.toBe(cidr.network);
            expect(value).not.toBe(last);
          }
        }
        expect(indexToIp(layout, layout.size)).toBeUndefined();
        expect(indexToIp(layout, -1)).toBeUndefined();
        expect(parseSegments(serializeSegments(layout))?.hash).toBe(layout.hash);
      }),
    );
  });

  it('a /31 and a /32 use all of their addresses; IPv6 leaves out the first', () => {
    const set = toPoolSet({
      pools: [
        { name: 'a', cidr: '10.1.0.0/31' },
        { name: 'b', cidr: '10.1.0.5/32' },
        { name: 'c', cidr: 'fd00::/126' },
      ],
    });
    expect(set.pools.get('a')!.layout.size).toBe(2);
    expect(set.pools.get('b')!.layout.size).toBe(1);
    expect(indexToIp(set.pools.get('b')!.layout, 0)).toBe('10.1.0.5');
    expect(indexToIp(set.pools.get('c')!.layout, 0)).toBe('fd00::1');
    expect(set.pools.get('c')!.layout.size).toBe(3);
  });
});
