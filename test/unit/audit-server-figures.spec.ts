// What the audit reads from INFO and CONFIG GET, and how the figures of a Cluster's primaries
// become one.
import type { ServerFigures } from '../../lib/audit/audit-report.js';
import { figuresFromInfo, mergeFigures, parseInfo } from '../../lib/audit/server-figures.js';

const INFO = [
  '# Server',
  'redis_version:7.0.15',
  '',
  '# Memory',
  'used_memory:1205000',
  'used_memory_human:1.15M',
  'maxmemory:104857600',
  'maxmemory_human:100.00M',
  'maxmemory_policy:allkeys-lru',
  'mem_fragmentation_ratio:1.62',
  '',
  '# Stats',
  'expired_keys:12',
  'evicted_keys:3',
  'keyspace_hits:750',
  'keyspace_misses:250',
  '',
  '# Cluster',
  'cluster_enabled:0',
  '',
  '# Keyspace',
  'db0:keys=301,expires=280,avg_ttl=0',
].join('\r\n');

describe('parseInfo', () => {
  it('reads the field:value lines, not the headers', () => {
    const fields = parseInfo(INFO);
    expect(fields.get('used_memory_human')).toBe('1.15M');
    expect(fields.get('db0')).toBe('keys=301,expires=280,avg_ttl=0');
    expect(fields.has('# Memory')).toBe(false);
    expect(fields.size).toBe(13);
  });
});

describe('figuresFromInfo', () => {
  it('takes maxmemory and its policy from CONFIG GET when it answered', () => {
    expect(figuresFromInfo(parseInfo(INFO), { maxmemoryBytes: 0, maxmemoryPolicy: 'noeviction' })).toEqual({
      keyspaceHits: 750,
      keyspaceMisses: 250,
      hitRate: 0.75,
      evictedKeys: 3,
      expiredKeys: 12,
      usedMemoryBytes: 1_205_000,
      usedMemoryHuman: '1.15M',
      memFragmentationRatio: 1.62,
      maxmemoryBytes: 0,
      maxmemoryPolicy: 'noeviction',
      configSource: 'config',
      clusterEnabled: false,
    });
  });

  it("falls back to INFO memory's fields when CONFIG GET was refused", () => {
    expect(figuresFromInfo(parseInfo(INFO))).toMatchObject({
      maxmemoryBytes: 104_857_600,
      maxmemoryPolicy: 'allkeys-lru',
      configSource: 'info',
    });
  });

  it('leaves unknown what neither says, and has no hit rate before the first lookup', () => {
    const figures = figuresFromInfo(
      parseInfo('keyspace_hits:0\nkeyspace_misses:0\nused_memory:abc\ncluster_enabled:1'),
    );
    expect(figures).toMatchObject({
      hitRate: null,
      usedMemoryBytes: null,
      maxmemoryBytes: null,
      maxmemoryPolicy: null,
      configSource: 'unknown',
      clusterEnabled: true,
    });
    expect(figuresFromInfo(new Map()).keyspaceHits).toBeNull();
  });
});

describe('mergeFigures', () => {
  const one = figuresFromInfo(parseInfo(INFO), { maxmemoryBytes: 100, maxmemoryPolicy: 'allkeys-lru' });

  it('returns the figures of one server as they are', () => {
    expect(mergeFigures([one])).toBe(one);
  });

  it('sums counters and memory, keeps the worst fragmentation and the shared config', () => {
    const other: ServerFigures = { ...one, keyspaceHits: 50, keyspaceMisses: 950, memFragmentationRatio: 1.1 };
    expect(mergeFigures([one, other])).toEqual({
      keyspaceHits: 800,
      keyspaceMisses: 1_200,
      hitRate: 0.4,
      evictedKeys: 6,
      expiredKeys: 24,
      usedMemoryBytes: 2_410_000,
      usedMemoryHuman: '2.30M',
      memFragmentationRatio: 1.62,
      maxmemoryBytes: 200,
      maxmemoryPolicy: 'allkeys-lru',
      configSource: 'config',
      clusterEnabled: false,
    });
  });

  it('has no limit when one server has none, and unknowns where servers disagree or did not say', () => {
    const merged = mergeFigures([
      one,
      { ...one, maxmemoryBytes: 0, maxmemoryPolicy: 'noeviction', configSource: 'info', keyspaceHits: null },
    ]);
    expect(merged).toMatchObject({
      maxmemoryBytes: 0,
      maxmemoryPolicy: null,
      configSource: 'unknown',
      keyspaceHits: null,
      hitRate: null,
    });
    expect(mergeFigures([one, { ...one, maxmemoryBytes: null, memFragmentationRatio: null }])).toMatchObject({
      maxmemoryBytes: null,
      memFragmentationRatio: null,
    });
    expect(mergeFigures([one, { ...one, usedMemoryBytes: 3 }]).usedMemoryHuman).toBe('1.15M');
    expect(
      mergeFigures([
        { ...one, usedMemoryBytes: 1 },
        { ...one, usedMemoryBytes: 2 },
      ]).usedMemoryHuman,
    ).toBe('3B');
  });
});
