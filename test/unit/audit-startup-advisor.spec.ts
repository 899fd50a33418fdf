// The startup advisor's rules on what it read (INFO memory, a sample of the namespace), each check
// raised, not raised, and switched off. test/integration/audit.spec.ts runs it on a real Redis.
import { resolveAdvisorChecks, startupWarnings, type MemorySettings } from '../../lib/audit/startup-advisor.js';

const ALL = resolveAdvisorChecks(undefined);
const server = (policy: string | null, maxmemoryBytes: number | null = 1 << 30, address = '127.0.0.1:6379') =>
  ({ address, maxmemoryBytes, policy }) satisfies MemorySettings;
const clean = { inspected: 40, withoutTtl: [] };

describe('startupWarnings', () => {
  it('says nothing about a Redis with a limit, allkeys-lru and keys with TTLs', () => {
    expect(startupWarnings('shop', ALL, [server('allkeys-lru')], clean)).toEqual([]);
  });

  it('warns about no maxmemory, naming the switch that silences it', () => {
    expect(startupWarnings('shop', ALL, [server('allkeys-lru', 0)], clean)).toEqual([
      "Redis has no maxmemory set: the cache (namespace 'shop') grows until the machine runs out of memory. " +
        'Set maxmemory to about 75% of the RAM, with maxmemory-policy allkeys-lru ' +
        '(startupAdvisor: { maxmemory: false } silences this).',
    ]);
  });

  it('warns about noeviction', () => {
    expect(startupWarnings('shop', ALL, [server('noeviction')], clean)).toEqual([
      "Redis's maxmemory-policy is noeviction: once it is full, every cache write fails instead of evicting old " +
        'entries. Use allkeys-lru or allkeys-lfu for a cache (startupAdvisor: { evictionPolicy: false } silences this).',
    ]);
  });

  it('names sampled keys with their control characters escaped: a key cannot forge a log line', () => {
    const sample = { inspected: 1, withoutTtl: ['shop:a\nERROR forged\x1b[2J'] };
    const [warning] = startupWarnings('shop', ALL, [server('allkeys-lru')], sample);
    expect(warning).toContain('(shop:a\\x0aERROR forged\\x1b[2J)');
    // eslint-disable-next-line no-control-regex -- no control character may reach the log
    expect(warning).not.toMatch(/[\n\x1b]/);
  });

  it('warns about keys without a TTL, with examples, and about volatile-* while they exist', () => {
    const sample = { inspected: 10, withoutTtl: ['shop:a', 'shop:b', 'shop:c', 'shop:d'] };
    const [volatile, keys] = startupWarnings('shop', ALL, [server('volatile-lru')], sample);
    expect(volatile).toBe(
      "Redis's maxmemory-policy is volatile-lru, which evicts only keys with a TTL, and 4 of 10 keys sampled under " +
        "'shop:' have none (e.g. shop:a, shop:b, shop:c): they can never be evicted. Give them a TTL, or use " +
        'allkeys-lru (startupAdvisor: { evictionPolicy: false } silences this).',
    );
    expect(keys).toBe(
      "4 of 10 keys sampled under 'shop:' have no TTL (e.g. shop:a, shop:b, shop:c): they stay until deleted. The " +
        'module writes every entry with a TTL, so something else wrote these (the raw client, another app): give them ' +
        "one (EXPIRE) or keep them out of the cache's namespace (startupAdvisor: { keysWithoutTtl: false } silences this).",
    );
    expect(startupWarnings('shop', ALL, [server('volatile-lru')], clean)).toEqual([]);
    expect(startupWarnings('shop', ALL, [server('allkeys-lru')], { inspected: 2, withoutTtl: ['shop:x'] })).toEqual([
      expect.stringMatching(/^1 of 2 keys sampled under 'shop:' have no TTL \(shop:x\): /),
    ]);
  });

  it('says nothing of a check switched off, nor of what Redis did not say', () => {
    const sample = { inspected: 1, withoutTtl: ['shop:a'] };
    const settings = [server('volatile-ttl', 0)];
    expect(
      startupWarnings('shop', { maxmemory: false, evictionPolicy: false, keysWithoutTtl: false }, settings, sample),
    ).toEqual([]);
    expect(startupWarnings('shop', { ...ALL, maxmemory: false, keysWithoutTtl: false }, settings, sample)).toEqual([
      expect.stringMatching(/^Redis's maxmemory-policy is volatile-ttl, /),
    ]);
    expect(startupWarnings('shop', ALL, [server(null, null)], undefined)).toEqual([]);
    expect(startupWarnings('shop', ALL, [], undefined)).toEqual([]);
  });

  it('names the primaries of a Cluster a warning concerns, unless it is all of them', () => {
    const settings = [server('allkeys-lru', 0, '10.0.0.1:7000'), server('allkeys-lru', 100, '10.0.0.2:7000')];
    expect(startupWarnings('shop', ALL, settings, clean)).toEqual([
      expect.stringMatching(/^Redis has no maxmemory set on 10\.0\.0\.1:7000: /),
    ]);
    const everywhere = settings.map((one) => ({ ...one, maxmemoryBytes: 0 }));
    expect(startupWarnings('shop', ALL, everywhere, clean)).toEqual([
      expect.stringMatching(/^Redis has no maxmemory set: /),
    ]);
  });
});
