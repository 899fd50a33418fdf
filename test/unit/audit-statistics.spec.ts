// The keyspace audit's statistics: prefixes of key names, percentiles, and what a prefix's tally
// reports (exact counts, the TTL spread, bytes measured or extrapolated from a weighted sample).
import {
  OTHER_PREFIXES,
  PrefixTallies,
  PrefixTally,
  TTL_SAMPLE_SIZE,
  percentile,
  prefixOf,
} from '../../lib/audit/prefix-tally.js';

/** A deterministic stand-in for Math.random: a fixed cycle of values. */
function cycle(...values: number[]): () => number {
  let at = 0;
  return () => values[at++ % values.length]!;
}

describe('prefixOf', () => {
  it.each([
    ['cache:user:42', 2, 'cache:user'],
    ['cache:user:42:posts', 2, 'cache:user'],
    ['cache:user:42', 1, 'cache'],
    ['cache:user:42', 5, 'cache:user'], // never the whole key: the last segment is the id
    ['user:42', 2, 'user'],
    ['online_users', 2, 'online_users'], // no separator: its own prefix
    ['a:', 2, 'a'],
  ])('%p at depth %p is %p', (key, depth, prefix) => {
    expect(prefixOf(key, ':', depth)).toBe(prefix);
  });

  it('splits on a separator of several characters', () => {
    expect(prefixOf('app::user::42', '::', 2)).toBe('app::user');
    expect(prefixOf('app/user/42', '/', 1)).toBe('app');
  });
});

describe('percentile (nearest rank)', () => {
  const values = Array.from({ length: 10 }, (_, i) => i + 1); // 1..10
  it.each([
    [0, 1],
    [0.5, 5],
    [0.9, 9],
    [0.91, 10],
    [1, 10],
  ])('q %p of 1..10 is %p', (q, expected) => {
    expect(percentile(values, q)).toBe(expected);
  });

  it('of one value is that value, of none an error', () => {
    expect(percentile([7], 0.9)).toBe(7);
    expect(() => percentile([], 0.5)).toThrow(RangeError);
  });
});

describe('PrefixTally', () => {
  it('counts keys and keys without a TTL, and spreads the TTLs in seconds', () => {
    const tally = new PrefixTally();
    for (let i = 1; i <= 10; i++) tally.add(i * 1_000); // 1 s .. 10 s
    tally.add(undefined);
    tally.add(undefined);
    expect(tally.report('cache:user', true)).toEqual({
      prefix: 'cache:user',
      keys: 12,
      bytes: null, // nothing measured
      bytesEstimated: false,
      measuredKeys: 0,
      withoutTtl: 2,
      ttl: { minSeconds: 1, p50Seconds: 5, p90Seconds: 9, maxSeconds: 10, sampled: false },
    });
  });

  it('has no TTL spread when no key has a TTL', () => {
    const tally = new PrefixTally();
    tally.add(undefined);
    expect(tally.report('legacy', true).ttl).toBeNull();
  });

  it('keeps TTLs to the millisecond', () => {
    const tally = new PrefixTally();
    tally.add(1_234.4);
    expect(tally.report('p', true).ttl).toMatchObject({ minSeconds: 1.234, maxSeconds: 1.234 });
  });

  it('measures the first `sample` keys for sure, then with a chance of sample / n', () => {
    const tally = new PrefixTally();
    expect([1, 2, 3].map(() => tally.measureChance(3))).toEqual([1, 1, 1]);
    expect(tally.measureChance(3)).toBe(3 / 4);
    expect(tally.measureChance(3)).toBe(3 / 5);
  });

  it('reports exact bytes when every key was measured', () => {
    const tally = new PrefixTally();
    tally.add(1_000, { bytes: 100, chance: 1 });
    tally.add(undefined, { bytes: 60, chance: 1 });
    expect(tally.report('p', true)).toMatchObject({ keys: 2, bytes: 160, bytesEstimated: false, measuredKeys: 2 });
  });

  it('extrapolates bytes from a sample, each measured key standing for 1/chance keys', () => {
    const tally = new PrefixTally();
    // Two keys measured for sure at 100 bytes, one measured with chance 1/2 at 400 bytes (it stands
    // for two keys), one key not measured: the weighted mean is (100 + 100 + 800) / 4 = 250 a key.
    tally.add(1_000, { bytes: 100, chance: 1 });
    tally.add(1_000, { bytes: 100, chance: 1 });
    tally.add(1_000, { bytes: 400, chance: 0.5 });
    tally.add(1_000);
    expect(tally.report('p', true)).toMatchObject({ keys: 4, bytes: 1_000, bytesEstimated: true, measuredKeys: 3 });
  });

  it('reports no bytes when MEMORY USAGE was refused', () => {
    const tally = new PrefixTally();
    tally.add(1_000, { bytes: 100, chance: 1 });
    expect(tally.report('p', false)).toMatchObject({ bytes: null, bytesEstimated: false });
  });

  it(`keeps min and max exact and samples p50/p90 past ${TTL_SAMPLE_SIZE} TTLs`, () => {
    // Each later TTL replaces a sampled one or not, as the random source says: here it always
    // replaces slot 0, so the sample ends as 2..TTL_SAMPLE_SIZE and the last TTL.
    const tally = new PrefixTally(() => 0);
    for (let i = 1; i <= TTL_SAMPLE_SIZE + 5; i++) tally.add(i * 1_000);
    const ttl = tally.report('p', true).ttl!;
    expect(ttl).toMatchObject({ minSeconds: 1, maxSeconds: TTL_SAMPLE_SIZE + 5, sampled: true });
    expect(ttl.p50Seconds).toBe(TTL_SAMPLE_SIZE / 2 + 1);
    expect(ttl.p90Seconds).toBe(TTL_SAMPLE_SIZE * 0.9 + 1);
  });
});

describe('PrefixTallies', () => {
  it('groups keys by prefix and orders by bytes, then keys, then name', () => {
    const tallies = new PrefixTallies({ separator: ':', depth: 2, maxPrefixes: 10 });
    tallies.forKey('cache:user:1').add(1_000, { bytes: 10, chance: 1 });
    tallies.forKey('cache:user:2').add(1_000, { bytes: 10, chance: 1 });
    tallies.forKey('cache:feed:1').add(1_000, { bytes: 50, chance: 1 });
    tallies.forKey('b:1').add(undefined, { bytes: 5, chance: 1 });
    tallies.forKey('a:1').add(undefined, { bytes: 5, chance: 1 });
    expect(tallies.reports(true).map((report) => [report.prefix, report.keys, report.bytes])).toEqual([
      ['cache:feed', 1, 50],
      ['cache:user', 2, 20],
      ['a', 1, 5],
      ['b', 1, 5],
    ]);
    // Bytes unknown: most keys first.
    expect(tallies.reports(false).map((report) => report.prefix)).toEqual(['cache:user', 'a', 'b', 'cache:feed']);
    expect(tallies.truncated).toBe(false);
  });

  it(`counts keys past maxPrefixes under ${OTHER_PREFIXES}`, () => {
    const tallies = new PrefixTallies({ separator: ':', depth: 1, maxPrefixes: 2 });
    for (const key of ['a:1', 'b:1', 'c:1', 'd:1', 'a:2']) tallies.forKey(key).add(undefined);
    expect(tallies.reports(true).map((report) => [report.prefix, report.keys])).toEqual([
      [OTHER_PREFIXES, 2],
      ['a', 2],
      ['b', 1],
    ]);
    expect(tallies.truncated).toBe(true);
  });

  it('leaves out a prefix whose keys all vanished before their PTTL', () => {
    const tallies = new PrefixTallies({ separator: ':', depth: 1, maxPrefixes: 10 }, cycle(0.5));
    tallies.forKey('gone:1'); // asked for, never added
    expect(tallies.reports(true)).toEqual([]);
  });
});
