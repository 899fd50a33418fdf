import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ENTRY_KIND } from '../../lib/core/cache-entry.js';
import { startLocalRedis, type LocalRedisServer } from '../../tools/local-redis-server.mjs';
import {
  adminClient,
  CALL_BOUND_MS,
  createFaultApp,
  eventually,
  FIND,
  outcomes,
  timed,
  type FaultApp,
} from '../support/fault-helpers.js';

// Garbage under a cached key (written by another client, a truncated write, another format): the
// call is a miss that returns the source's result, counts one error, deletes the payload and
// caches the fresh value, so the call after it is a hit. Keyspace notifications show the deletion.

/** Random bytes that don't start with the payload header's magic byte (0xC1). */
function randomGarbage(): Buffer {
  const bytes = randomBytes(64);
  if (bytes[0] === 0xc1) bytes[0] = 0x00;
  return bytes;
}

const GARBAGE: Array<[string, () => Buffer | string]> = [
  ['random bytes', randomGarbage],
  ['a JSON string', () => JSON.stringify({ id: 1, load: 999 })],
  ['an empty string', () => ''],
  ['a valid header with a truncated MessagePack body', () => Buffer.from([0xc1, 0x01, 0xdc, 0x00, 0x10])],
  ['a header of an unknown format version', () => Buffer.from([0xc1, 0x7f, 0xc0])],
];

describe('fail open on garbage in Redis', () => {
  let server: LocalRedisServer;
  let fault: FaultApp;
  let raw: Redis;
  let subscriber: Redis;
  /** Keyspace events (`set`, `expire`, `del`) per key, in the order Redis published them. */
  const events = new Map<string, string[]>();
  const eventsOf = (key: string) => events.get(key) ?? [];
  let nextId = 1;

  beforeAll(async () => {
    server = await startLocalRedis({ args: ['--notify-keyspace-events', 'Kg$'] });
    fault = await createFaultApp(server.url);
    raw = adminClient(server.url);
    subscriber = adminClient(server.url);
    const channelPrefix = '__keyspace@0__:';
    subscriber.on('pmessage', (_pattern: string, channel: string, event: string) => {
      const key = channel.slice(channelPrefix.length);
      events.set(key, [...eventsOf(key), event]);
    });
    await subscriber.psubscribe(`${channelPrefix}${fault.namespace}:*`);
  });

  afterAll(async () => {
    await fault.app.close();
    subscriber.disconnect();
    raw.disconnect();
    await server.stop();
  });

  /** Waits until Redis has published `expected` for `key` (events arrive asynchronously). */
  async function expectEvents(key: string, expected: string[]): Promise<void> {
    await eventually(`${expected.join(', ')} on ${key}`, () => eventsOf(key).length >= expected.length, 2_000);
    expect(eventsOf(key)).toEqual(expected);
  }

  it.each(GARBAGE)(
    'a decorated call over %s returns the source result, deletes it and caches again',
    async (_, garbage) => {
      const { source, cache } = fault;
      const id = nextId++;
      const key = fault.itemKey(id);
      const first = await source.find(id);
      await raw.set(key, garbage());
      // The miss's lease placeholder (SET PX), the value replacing it (SET PX), then the garbage.
      const cached = ['set', 'expire', 'set', 'expire'];
      await expectEvents(key, [...cached, 'set']);
      const before = outcomes(cache, FIND);

      const call = await timed(() => source.find(id));
      expect(call.value).toEqual({ id, load: first.load + 1 });
      expect(source.loads).toBe(first.load + 1);
      expect(call.activeMs).toBeLessThan(CALL_BOUND_MS);
      expect(outcomes(cache, FIND)).toEqual({
        ...before,
        errors: before.errors + 1,
        failed: before.failed + 1,
        calls: before.calls + 1,
      });

      // The garbage was deleted (UNLINK publishes `del`), then leased and the source's value written with a TTL.
      await expectEvents(key, [...cached, 'set', 'del', ...cached]);
      const stored = await raw.getBuffer(key);
      expect(stored?.subarray(0, 2)).toEqual(Buffer.from([0xc1, ENTRY_KIND]));
      expect(await raw.pttl(key)).toBeGreaterThan(55_000);

      expect(await source.find(id)).toEqual(call.value);
      expect(source.loads).toBe(first.load + 1);
      expect(outcomes(cache, FIND).hits).toBe(before.hits + 1);
    },
  );

  it.each(GARBAGE)(
    'CacheService.get over %s returns undefined, counts an error and deletes the key',
    async (_, garbage) => {
      const { cache, namespace } = fault;
      const key = `manual-${nextId++}`;
      const redisKey = `${namespace}:${key}`;
      await raw.set(redisKey, garbage());
      const errorsBefore = cache.stats().errors;
      const serviceErrorsBefore = cache.stats().byName['CacheService']?.errors ?? 0;

      expect(await cache.get(key)).toBeUndefined();
      expect(cache.stats().errors).toBe(errorsBefore + 1);
      expect(cache.stats().byName['CacheService']?.errors).toBe(serviceErrorsBefore + 1);
      expect(await raw.exists(redisKey)).toBe(0);
      await expectEvents(redisKey, ['set', 'del']);

      // And getOrSet over garbage: the loader's value, stored in its place.
      await raw.set(redisKey, garbage());
      expect(await cache.getOrSet(key, async () => ({ fresh: true }))).toEqual({ fresh: true });
      expect(cache.stats().errors).toBe(errorsBefore + 2);
      expect(await cache.get(key)).toEqual({ fresh: true });
    },
  );

  it('warned once per cache name for all those payloads, and reported no outage', () => {
    const warnings = fault.logs.cacheLines('warn');
    expect(warnings).toEqual([
      expect.stringContaining(
        `${FIND}: undecodable cache payload at '${fault.itemKey(1)}' was deleted and treated as a miss`,
      ),
      expect.stringContaining('CacheService: undecodable cache payload'),
      expect.stringContaining('CacheService.getOrSet: undecodable cache payload'),
    ]);
    expect(fault.logs.outages()).toEqual([]);
    expect(fault.logs.recoveries()).toEqual([]);
    expect(fault.cache.stats().errors).toBe(GARBAGE.length * 3);
  });
});
