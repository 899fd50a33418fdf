// The keyspace audit's red-flag rules, each raised and not raised, on figures built by hand.
import { DEFAULT_THRESHOLDS } from '../../lib/audit/audit-options.js';
import type { NodeReport, PrefixReport, ServerFigures } from '../../lib/audit/audit-report.js';
import { findRedFlags } from '../../lib/audit/red-flags.js';

/** A healthy server: a limit, allkeys-lru, a 95% hit rate, little fragmentation. */
function figures(overrides: Partial<ServerFigures> = {}): ServerFigures {
  return {
    keyspaceHits: 9_500,
    keyspaceMisses: 500,
    hitRate: 0.95,
    evictedKeys: 0,
    expiredKeys: 10,
    usedMemoryBytes: 100 * 1024 * 1024,
    usedMemoryHuman: '100.00M',
    memFragmentationRatio: 1.1,
    maxmemoryBytes: 1024 * 1024 * 1024,
    maxmemoryPolicy: 'allkeys-lru',
    configSource: 'config',
    clusterEnabled: false,
    ...overrides,
  };
}

function node(address: string, overrides: Partial<ServerFigures> = {}): NodeReport {
  return { address, figures: figures(overrides) };
}

function prefix(name: string, keys: number, withoutTtl: number): PrefixReport {
  return { prefix: name, keys, bytes: keys * 100, bytesEstimated: false, measuredKeys: keys, withoutTtl, ttl: null };
}

/** The codes raised for one server with these figures and prefixes. */
function codes(overrides: Partial<ServerFigures>, prefixes: PrefixReport[] = [prefix('cache:user', 10, 0)]) {
  const nodes = [node('127.0.0.1:6379', overrides)];
  return findRedFlags({ nodes, server: nodes[0]!.figures, prefixes }, DEFAULT_THRESHOLDS).map((flag) => flag.code);
}

describe('findRedFlags', () => {
  it('raises nothing on a healthy cache', () => {
    expect(codes({})).toEqual([]);
  });

  it('flags no maxmemory, and not an unknown one', () => {
    expect(codes({ maxmemoryBytes: 0 })).toEqual(['no-maxmemory']);
    expect(codes({ maxmemoryBytes: null, maxmemoryPolicy: null, configSource: 'unknown' })).toEqual([]);
  });

  it('flags noeviction', () => {
    expect(codes({ maxmemoryPolicy: 'noeviction' })).toEqual(['noeviction']);
    expect(codes({ maxmemoryPolicy: 'allkeys-lfu' })).toEqual([]);
  });

  it('flags keys without a TTL, naming the prefixes that hold them, most first', () => {
    const prefixes = [prefix('cache:user', 10, 0), prefix('legacy', 5, 5), prefix('tmp', 30, 12)];
    const nodes = [node('127.0.0.1:6379')];
    const [flag] = findRedFlags({ nodes, server: nodes[0]!.figures, prefixes }, DEFAULT_THRESHOLDS);
    expect(flag).toEqual({
      code: 'keys-without-ttl',
      message: '17 key(s) have no TTL and live until deleted: tmp (12), legacy (5).',
      advice: expect.stringContaining('EXPIRE'),
      prefixes: ['tmp', 'legacy'],
    });
  });

  it('names at most five prefixes in the message, and all in the list', () => {
    const prefixes = Array.from({ length: 7 }, (_, i) => prefix(`p${i}`, 10, 7 - i));
    const nodes = [node('127.0.0.1:6379')];
    const [flag] = findRedFlags({ nodes, server: nodes[0]!.figures, prefixes }, DEFAULT_THRESHOLDS);
    expect(flag!.message).toBe(
      '28 key(s) have no TTL and live until deleted: p0 (7), p1 (6), p2 (5), p3 (4), p4 (3) and 2 more prefix(es).',
    );
    expect(flag!.prefixes).toHaveLength(7);
  });

  it('flags a volatile-* policy only while keys without a TTL exist', () => {
    expect(codes({ maxmemoryPolicy: 'volatile-lru' })).toEqual([]);
    expect(codes({ maxmemoryPolicy: 'volatile-ttl' }, [prefix('legacy', 3, 3)])).toEqual([
      'keys-without-ttl',
      'volatile-policy-with-keys-without-ttl',
    ]);
  });

  it('flags fragmentation above 1.5 on a server holding at least 5 MiB', () => {
    expect(codes({ memFragmentationRatio: 1.6 })).toEqual(['high-fragmentation']);
    expect(codes({ memFragmentationRatio: 1.5 })).toEqual([]);
    // A nearly empty server: the allocator's own overhead makes any ratio.
    expect(codes({ memFragmentationRatio: 9, usedMemoryBytes: 1024 * 1024 })).toEqual([]);
    expect(codes({ memFragmentationRatio: null })).toEqual([]);
  });

  it('flags a hit rate below 80% once there were enough lookups', () => {
    expect(codes({ keyspaceHits: 700, keyspaceMisses: 300, hitRate: 0.7 })).toEqual(['low-hit-rate']);
    expect(codes({ keyspaceHits: 70, keyspaceMisses: 30, hitRate: 0.7 })).toEqual([]); // 100 lookups
    expect(codes({ keyspaceHits: 0, keyspaceMisses: 0, hitRate: null })).toEqual([]);
    const nodes = [node('127.0.0.1:6379', { keyspaceHits: 231, keyspaceMisses: 769, hitRate: 0.231 })];
    const [flag] = findRedFlags({ nodes, server: nodes[0]!.figures, prefixes: [] }, DEFAULT_THRESHOLDS);
    expect(flag!.message).toBe(
      'Keyspace hit rate is 23.1% (231 hits, 769 misses since the server started), below 80%.',
    );
  });

  it('takes its thresholds from the options', () => {
    const nodes = [node('127.0.0.1:6379', { hitRate: 0.85, memFragmentationRatio: 1.3 })];
    const strict = { ...DEFAULT_THRESHOLDS, minHitRate: 0.9, maxFragmentation: 1.2 };
    expect(findRedFlags({ nodes, server: nodes[0]!.figures, prefixes: [] }, strict).map((flag) => flag.code)).toEqual([
      'high-fragmentation',
      'low-hit-rate',
    ]);
  });

  it('names the nodes of a Cluster a config flag concerns, unless it is all of them', () => {
    const nodes = [
      node('10.0.0.1:7000', { maxmemoryBytes: 0 }),
      node('10.0.0.2:7000'),
      node('10.0.0.3:7000', { maxmemoryBytes: 0 }),
    ];
    const [flag] = findRedFlags({ nodes, server: figures(), prefixes: [] }, DEFAULT_THRESHOLDS);
    expect(flag).toMatchObject({ code: 'no-maxmemory', nodes: ['10.0.0.1:7000', '10.0.0.3:7000'] });
    expect(flag!.message).toMatch(/^No maxmemory set on 10\.0\.0\.1:7000, 10\.0\.0\.3:7000: /);

    const all = nodes.map((one) => node(one.address, { maxmemoryPolicy: 'noeviction' }));
    const [everywhere] = findRedFlags({ nodes: all, server: figures(), prefixes: [] }, DEFAULT_THRESHOLDS);
    expect(everywhere!.message).toMatch(/^maxmemory-policy is noeviction: /);
  });
});
