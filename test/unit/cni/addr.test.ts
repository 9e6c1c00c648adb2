import fc from 'fast-check';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  canonicalAddrOrInput,
  formatAddr,
  addrFamily,
  parseAddr,
  parsePrefix,
  prefixContains,
} from '../../../src/cni/addr.js';

/** The WHATWG URL parser's canonical IPv6 text (RFC 5952 compression). */
const urlCanonical = (ip: string): string => new URL(`http://[${ip}]/`).hostname.slice(1, -1);

describe('addr (the CNI plugin’s import-free address helpers)', () => {
  it.each([
    '10.250.7.10',
    '0.0.0.0',
    '255.255.255.255',
    '::',
    '::1',
    '1::',
    'fd00:250:7::a',
    'FD00:0250:0007:0000:0000:0000:0000:000A',
    '1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7::',
    '::ffff:10.1.2.3',
    '64:ff9b::192.0.2.33',
    '10.250.7.256',
    '010.1.1.1',
    '1.2.3',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    ':1',
    '1:',
    '12345::',
    '1.2.3.4::',
    '',
    'x',
  ])('agrees with net.isIP on %j', text => {
    expect(addrFamily(text)).toBe(isIP(text));
  });

  it('rejects zoned addresses, which net.isIP accepts (a pod address has no zone)', () => {
    expect(isIP('fe80::1%eth0')).toBe(6);
    expect(addrFamily('fe80::1%eth0')).toBe(0);
  });

  it('formats like the URL parser and parses its own output back', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), value => {
        const text = formatAddr({ family: 6, value });
        expect(text).toBe(urlCanonical(text));
        expect(parseAddr(text)).toEqual({ family: 6, value });
      }),
    );
    fc.assert(
      fc.property(fc.ipV6(), text => {
        expect(canonicalAddrOrInput(text)).toBe(urlCanonical(text));
      }),
    );
    fc.assert(
      fc.property(fc.ipV4(), text => {
        expect(formatAddr(parseAddr(text)!)).toBe(text);
      }),
    );
  });

  it('zero runs: compresses the first longest run of two or more', () => {
    expect(canonicalAddrOrInput('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect(canonicalAddrOrInput('1:0:0:2:0:0:3:4')).toBe('1::2:0:0:3:4');
    expect(canonicalAddrOrInput('1:0:2:3:4:5:6:7')).toBe('1:0:2:3:4:5:6:7');
    expect(canonicalAddrOrInput('not-an-ip')).toBe('not-an-ip');
  });

  it('parses prefixes and tests membership', () => {
    const p = parsePrefix('10.250.7.99/24');
    expect(p).toEqual({ family: 4, network: 0x0afa0700n, bits: 24 });
    expect(prefixContains(p!, parseAddr('10.250.7.255')!)).toBe(true);
    expect(prefixContains(p!, parseAddr('10.250.8.0')!)).toBe(false);
    expect(prefixContains(p!, parseAddr('::a')!)).toBe(false);
    const v6 = parsePrefix('fd00:250:7::/64')!;
    expect(prefixContains(v6, parseAddr('fd00:250:7::ffff')!)).toBe(true);
    expect(prefixContains(v6, parseAddr('fd00:250:8::1')!)).toBe(false);
    expect(prefixContains(parsePrefix('0.0.0.0/0')!, parseAddr('1.2.3.4')!)).toBe(true);
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/x', '::/129', '10.0.0.0/8/8', 'a/8']) {
      expect(parsePrefix(bad)).toBeUndefined();
    }
  });
});
