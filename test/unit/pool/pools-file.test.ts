import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.js';
import { namespaceAllowed, parsePoolsText, toPoolSet } from '../../../src/pool/pools-file.js';

const issues = (doc: unknown): readonly string[] => {
  try {
    toPoolSet(doc);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
};

describe('pools file', () => {
  it('parses the DESIGN example, YAML and JSON alike, and canonicalises', () => {
    const yaml = `
pools:
  - name: default
    cidr: 10.244.7.0/16
    ranges: [10.244.0.10-10.244.255.250]
    exclude: [10.244.0.1, 10.244.7.0/24]
    gateway: 10.244.0.1
    namespaces: ["*"]
    default: true
  - name: v6
    cidr: FD00:0:0:1::/64
    ranges: ["fd00:0:0:1::100-fd00:0:0:1::1ff"]
    default: true
`;
    const set = parsePoolsText(yaml, 'pools.yaml');
    const p = set.pools.get('default')!;
    expect(p.cidrText).toBe('10.244.0.0/16');
    expect(p.gateway).toBe('10.244.0.1');
    // .0.10-.255.250 is 65,521 addresses; the excluded /24 takes 256 (.0.1, the gateway, is outside the range).
    expect(p.layout.size).toBe(65_521 - 256);
    expect(set.defaults[4]?.name).toBe('default');
    expect(set.defaults[6]?.cidrText).toBe('fd00:0:0:1::/64');
    expect(set.defaults[6]?.layout.size).toBe(256);
    const json = parsePoolsText(
      JSON.stringify({ pools: [{ name: 'j', cidr: '10.9.0.0/24' }] }),
      'pools.json',
    );
    expect(json.pools.get('j')!.layout.size).toBe(254);
  });

  it('reports every problem at once, each naming the pool and the field', () => {
    const found = issues({
      pools: [
        {
          name: 'a',
          cidr: '10.0.0.0/24',
          gateway: '10.0.1.1',
          ranges: ['10.0.1.0-10.0.1.5'],
          default: true,
        },
        { name: 'b', cidr: '10.0.0.0/25', default: true },
        { name: 'a', cidr: '10.5.0.0/24' },
        { name: 'Bad_Name', cidr: '10.6.0.0/24' },
        { name: 'big', cidr: '10.0.0.0/7' },
        { name: 'v6', cidr: 'fd00::/64' },
        { name: 'typo', cidr: '10.7.0.0/24', gatway: '10.7.0.1' },
        { name: 'nocidr', cidr: '10.8.0.0' },
      ],
    });
    const text = found.join('\n');
    expect(text).toContain('pool "a".gateway: 10.0.1.1 is outside the pool\'s cidr 10.0.0.0/24');
    expect(text).toContain(
      'pool "a".ranges: "10.0.1.0-10.0.1.5" is outside the pool\'s cidr 10.0.0.0/24',
    );
    expect(text).toContain('pool "b".default: pool "a" is already the default IPv4 pool');
    expect(text).toContain('pool "a": the name is used by more than one pool');
    expect(text).toContain('pools[3].name: "Bad_Name" is not a DNS label');
    expect(text).toContain(
      'pool "big": 33554430 allocatable addresses is more than the limit of 16777216',
    );
    expect(text).toContain(
      'pool "v6".ranges: IPv6 pool fd00::/64 is larger than 16777216 addresses; name the allocatable ranges',
    );
    expect(text).toContain('pool "typo": unknown field "gatway"');
    expect(text).toContain('pool "nocidr".cidr: "10.8.0.0" is not a cidr');
    expect(text).toMatch(/pool "b": its addresses overlap pool "a"/);
    expect(found.length).toBeGreaterThanOrEqual(10);
  });

  it('refuses overlapping ranges inside a pool and a pool with nothing left to hand out', () => {
    const text = issues({
      pools: [
        { name: 'x', cidr: '10.1.0.0/24', ranges: ['10.1.0.10-10.1.0.20', '10.1.0.15-10.1.0.30'] },
        { name: 'y', cidr: '10.2.0.0/30', exclude: ['10.2.0.1', '10.2.0.2'] },
      ],
    }).join('\n');
    expect(text).toContain('ranges 10.1.0.10-10.1.0.20 and 10.1.0.15-10.1.0.30 overlap');
    expect(text).toContain('pool "y": has no allocatable address left');
  });

  it('allows two pools sharing a cidr with disjoint ranges', () => {
    const set = toPoolSet({
      pools: [
        {
          name: 'team-a',
          cidr: '10.3.0.0/24',
          ranges: ['10.3.0.10-10.3.0.99'],
          namespaces: ['team-a-*'],
        },
        {
          name: 'team-b',
          cidr: '10.3.0.0/24',
          ranges: ['10.3.0.100-10.3.0.199'],
          namespaces: ['team-b'],
        },
      ],
    });
    const a = set.pools.get('team-a')!;
    expect(namespaceAllowed(a, 'team-a-prod')).toBe(true);
    expect(namespaceAllowed(a, 'team-b')).toBe(false);
    expect(namespaceAllowed(set.pools.get('team-b')!, 'team-b')).toBe(true);
  });

  it('explains a document that is not a pools file', () => {
    expect(() => parsePoolsText('pools: [', 'f.yaml')).toThrow(
      /f.yaml: 1 problem:\n {2}- not valid YAML or JSON/,
    );
    expect(issues({ pool: [] })).toEqual(['the document must have a non-empty "pools:" list']);
    expect(issues({ pools: ['x'] })).toEqual([
      'pools[0]: must be a mapping with at least name and cidr',
    ]);
  });
});
