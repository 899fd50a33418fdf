// The store the engine talks to (lib/store/cache-store.ts), command by command: the Lua scripts on the
// test Redis, or their in-process port, as the project says (contract-store.ts). What the scripts
// promise (store/entry-scripts.ts, store/invalidation-scripts.ts) holds on both.
import { DecodedEntry, decodeEntry, encodeEntry, LANDED_OFFSET, newLeaseToken } from '../../lib/core/cache-entry.js';
import { createDefaultCodec } from '../../lib/serialization/cache-codec.js';
import { CARRIED_VALUE_MAX_BYTES } from '../../lib/store/entry-scripts.js';
import { eventually } from './contract-app.js';
import { createContractStore, type ContractStoreHandle } from './contract-store.js';

const codec = createDefaultCodec();
const HOUR = 3_600_000;

/** An entry of `value`, fresh for `freshMs`. */
const entryOf = (value: unknown, freshMs = 60_000) => encodeEntry(codec, value, Date.now() + freshMs, 1);

describe('the cache store', () => {
  let handle: ContractStoreHandle;
  const store = () => handle.store;
  /** What the key holds, decoded: an entry, `{ kind: 'lease' }`, `{ kind: 'tombstone' }`, or null. */
  const read = async (key: string) => {
    const bytes = await store().get(key);
    return bytes === null ? null : decodeEntry(codec, bytes);
  };
  const valueAt = async (key: string) => {
    const held = await read(key);
    return held instanceof DecodedEntry ? held.value : held?.kind;
  };
  /** The epoch a write begins in (read before its method would run). */
  const begin = () => store().readEpoch(handle.keys.epoch);

  beforeEach(async () => {
    handle = await createContractStore();
  });
  afterEach(() => handle.close());

  describe('leases', () => {
    it('are taken once on an absent key; only the holder’s token completes, with its value', async () => {
      const key = handle.key('lease:1');
      const [mine, other] = [newLeaseToken(), newLeaseToken()];
      expect(await store().acquireLease(key, mine, 10_000, '')).toEqual({ status: 'acquired' });
      const held = await store().acquireLease(key, other, 10_000, '');
      expect(held.status).toBe('held');
      expect((held as { remainingMs: number }).remainingMs).toBeGreaterThan(9_000);
      expect((held as { remainingMs: number }).remainingMs).toBeLessThanOrEqual(10_000);
      // With the holder's token as it sent it, though the waiter's bit is set in the key now.
      expect((held as { holder?: Buffer }).holder).toEqual(mine);
      expect(await valueAt(key)).toBe('lease');
      expect(await store().completeLease(key, other, entryOf('theirs'), 60_000, handle.keys.leaseChannel)).toBe(false);
      expect(await valueAt(key)).toBe('lease');
      expect(await store().completeLease(key, mine, entryOf('mine'), 60_000, handle.keys.leaseChannel)).toBe(true);
      expect(await valueAt(key)).toBe('mine');
      // The script stamps when the value landed: the key's horizon.
      expect((await store().get(key))!.readDoubleBE(LANDED_OFFSET)).toBeGreaterThan(0);
    });

    it('given back without a value leave nothing, or a tombstone where a write or eviction had landed', async () => {
      const fresh = handle.key('lease:2');
      const token = newLeaseToken();
      await store().acquireLease(fresh, token, 10_000, '');
      expect(await store().completeLease(fresh, token, undefined, 0, handle.keys.leaseChannel)).toBe(true);
      expect(await store().get(fresh)).toBeNull();

      const evicted = handle.key('lease:3');
      await store().evict([evicted], 60_000);
      const again = newLeaseToken();
      expect(await store().acquireLease(evicted, again, 10_000, '')).toEqual({ status: 'acquired' });
      expect(await store().completeLease(evicted, again, undefined, 0, handle.keys.leaseChannel)).toBe(true);
      expect(await valueAt(evicted)).toBe('tombstone');
    });

    it('are taken in place on a stale entry: its value stays readable, and only the version the caller saw', async () => {
      const key = handle.key('stale:1');
      expect(await store().write(key, entryOf('old', -1), HOUR, await begin())).toBe('written');
      const seen = (await read(key)) as DecodedEntry;
      const [refresher, late] = [newLeaseToken(), newLeaseToken()];
      expect(await store().acquireLease(key, refresher, 10_000, seen.stamp)).toEqual({ status: 'acquired' });
      expect(await valueAt(key)).toBe('old');
      expect((await store().acquireLease(key, late, 10_000, seen.stamp)).status).toBe('held');
      // A caller that saw another version (or none) reads again instead of waiting.
      expect(await store().acquireLease(key, late, 10_000, Buffer.alloc(8, 1))).toEqual({ status: 'changed' });
      expect(await store().acquireLease(key, late, 10_000, '')).toEqual({ status: 'changed' });
      expect(await store().completeLease(key, refresher, entryOf('new'), HOUR, handle.keys.leaseChannel)).toBe(true);
      expect(await valueAt(key)).toBe('new');
    });

    it('end at their deadline: another caller takes the key after lockTtl', async () => {
      const absent = handle.key('expiring:1');
      const stale = handle.key('expiring:2');
      await store().write(stale, entryOf('old', -1), HOUR, await begin());
      const seen = (await read(stale)) as DecodedEntry;
      expect((await store().acquireLease(absent, newLeaseToken(), 1_000, '')).status).toBe('acquired');
      expect((await store().acquireLease(stale, newLeaseToken(), 1_000, seen.stamp)).status).toBe('acquired');
      expect((await store().acquireLease(absent, newLeaseToken(), 1_000, '')).status).toBe('held');
      await handle.wait(1_200);
      expect((await store().acquireLease(absent, newLeaseToken(), 1_000, '')).status).toBe('acquired');
      expect((await store().acquireLease(stale, newLeaseToken(), 1_000, seen.stamp)).status).toBe('acquired');
    });
  });

  describe('writes and evictions', () => {
    it('expire with their TTL', async () => {
      const key = handle.key('ttl:1');
      await store().write(key, entryOf('brief'), 1_000, await begin());
      expect(await store().exists(key)).toBe(true);
      await handle.wait(1_200);
      expect(await store().get(key)).toBeNull();
      expect(await store().exists(key)).toBe(false);
    });

    it('keep the order they began in: a write that began before one that landed leaves a tombstone', async () => {
      const key = handle.key('order:1');
      const first = await begin();
      const second = await begin();
      expect(await store().write(key, entryOf('v2'), HOUR, second)).toBe('written');
      expect(await store().write(key, entryOf('v1'), HOUR, first)).toBe('tombstoned');
      expect(await valueAt(key)).toBe('tombstone');
      expect(await store().write(key, entryOf('v3'), HOUR, await begin())).toBe('written');
      expect(await valueAt(key)).toBe('v3');
      // A write without its start (epoch 0) cannot tell: it never overwrites what it finds.
      expect(await store().write(key, entryOf('v4'), HOUR, 0)).toBe('tombstoned');
    });

    it('an eviction revokes a lease and keeps a write that began before it out', async () => {
      const key = handle.key('evict:1');
      const token = newLeaseToken();
      await store().acquireLease(key, token, 10_000, '');
      const before = await begin();
      expect(await store().evict([key, handle.key('evict:absent')], 60_000)).toBe(1);
      expect(await store().completeLease(key, token, entryOf('loaded'), HOUR, handle.keys.leaseChannel)).toBe(false);
      expect(await valueAt(key)).toBe('tombstone');
      expect(await store().write(key, entryOf('late'), HOUR, before)).toBe('tombstoned');
      expect(await store().write(key, entryOf('after'), HOUR, await begin())).toBe('written');
      expect(await store().evict([key], 60_000)).toBe(1);
      // The eviction of the absent key left a tombstone there too: both are keys UNLINK removes.
      expect(await store().unlink([key, handle.key('evict:absent'), handle.key('evict:never')])).toBe(2);
      expect(await store().get(key)).toBeNull();
    });

    it('a write revokes a load’s lease', async () => {
      const key = handle.key('revoke:1');
      const token = newLeaseToken();
      const began = await begin();
      await store().acquireLease(key, token, 10_000, '');
      expect(await store().write(key, entryOf('written'), HOUR, began)).toBe('written');
      expect(await store().completeLease(key, token, entryOf('loaded'), HOUR, handle.keys.leaseChannel)).toBe(false);
      expect(await valueAt(key)).toBe('written');
    });

    it('never overwrite a key that holds something else than an entry', async () => {
      const key = handle.key('foreign:1');
      await handle.plainSet(key, Buffer.from('another client’s string'), HOUR);
      expect(await store().write(key, entryOf('ours'), HOUR, await begin())).toBe('foreign');
      expect(await store().acquireLease(key, newLeaseToken(), 10_000, '')).toEqual({ status: 'foreign' });
      expect(await store().evict([key], 60_000)).toBe(0);
      expect(await store().completeLease(key, newLeaseToken(), entryOf('ours'), HOUR, handle.keys.leaseChannel)).toBe(
        false,
      );
      expect((await store().get(key))!.toString()).toBe('another client’s string');
    });

    it('scanAndUnlink deletes under a prefix, sparing what it is told to', async () => {
      const { keys } = handle;
      await store().write(handle.key('r:1'), entryOf(1), HOUR, await begin());
      await store().write(handle.key('r:2'), entryOf(2), HOUR, await begin());
      await store().write(handle.key('s:1'), entryOf(3), HOUR, await begin());
      await store().readEpoch(keys.epoch);
      expect(await store().scanAndUnlink(handle.key('r:'))).toBe(2);
      expect(await store().scanAndUnlink(`${keys.namespace}:`, (key) => keys.isBookkeeping(key))).toBe(1);
      expect(await store().exists(keys.epoch)).toBe(true);
    });

    it('mark and exists: a marker renewed with the generation it holds, written anew once gone', async () => {
      const { presence } = handle.keys;
      expect(await store().exists(presence)).toBe(false);
      expect(await store().mark(presence, 1_000, 'first')).toBe('first');
      expect(await store().exists(presence)).toBe(true);
      // Renewed: another instance's generation is not written over the one it holds.
      await handle.wait(600);
      expect(await store().mark(presence, 1_000, 'second')).toBe('first');
      await handle.wait(600);
      expect(await store().exists(presence)).toBe(true); // 1.2 s after it was written: the renewal held
      await handle.wait(600);
      expect(await store().exists(presence)).toBe(false);
      expect(await store().mark(presence, 1_000, 'third')).toBe('third');
    });
  });

  describe('epochs and tags', () => {
    it('an invalidation takes an epoch above every one read before; a tag key holds it', async () => {
      const { keys } = handle;
      const read = await store().readEpoch(keys.epoch);
      const epoch = await store().invalidateTags(keys.epoch, [keys.tag('a')], 600_000);
      expect(epoch).toBeGreaterThan(read);
      expect(await store().readEpoch(keys.epoch)).toBeGreaterThanOrEqual(epoch);
      expect(await store().readTags([keys.tag('a'), keys.tag('b')])).toEqual([epoch, undefined]);
    });

    it('admits a tagged value only when no tag was invalidated after its load began', async () => {
      const { keys } = handle;
      const before = await store().readEpoch(keys.epoch);
      const epoch = await store().invalidateTags(keys.epoch, [keys.tag('a')], 600_000);
      expect(await store().admitTags(keys.epoch, [keys.tag('a')], 60_000, before)).toBe(false);
      const after = await store().readEpoch(keys.epoch);
      expect(await store().admitTags(keys.epoch, [keys.tag('a')], 60_000, after)).toBe(true);
      // A missing tag key may have been evicted: recreated at the latest invalidation's epoch.
      expect(await store().admitTags(keys.epoch, [keys.tag('lost')], 60_000, before)).toBe(false);
      expect(await store().readTags([keys.tag('lost')])).toEqual([epoch]);
      expect(await store().admitTags(keys.epoch, [keys.tag('lost')], 60_000, after)).toBe(true);
    });
  });

  describe('announcements', () => {
    it('each change publishes what waiters and other instances need, once it is made', async () => {
      const { keys } = handle;
      const channel = `${keys.leaseChannel}:contract`;
      const messages = await handle.subscribe(channel);
      const prefixes = await handle.subscribe(keys.prefixChannel);
      try {
        const key = handle.key('announced:1');
        // A release is published only when someone waits: an attempt answered 'held' marks the lease.
        const unwaited = newLeaseToken();
        await store().acquireLease(handle.key('announced:0'), unwaited, 10_000, '');
        expect(await store().completeLease(handle.key('announced:0'), unwaited, entryOf('v'), HOUR, channel)).toBe(
          true,
        );
        const token = newLeaseToken();
        await store().acquireLease(key, token, 10_000, '');
        expect((await store().acquireLease(key, newLeaseToken(), 10_000, '')).status).toBe('held');
        expect((await store().acquireLease(key, newLeaseToken(), 10_000, '')).status).toBe('held');
        // Still the holder's lease, however many wait.
        expect(await store().completeLease(key, token, entryOf('value'), HOUR, channel)).toBe(true);
        const valueStored = (await store().get(key))!;
        const empty = newLeaseToken();
        await store().acquireLease(handle.key('announced:2'), empty, 10_000, '');
        expect((await store().acquireLease(handle.key('announced:2'), newLeaseToken(), 10_000, '')).status).toBe(
          'held',
        );
        await store().completeLease(handle.key('announced:2'), empty, undefined, 0, channel);
        // A stale entry refreshed in place is marked the same way (its header keeps the waiter's bit).
        const stale = handle.key('announced:3');
        await store().write(stale, entryOf('old', -1), HOUR, await begin());
        const seen = (await read(stale)) as DecodedEntry;
        const refresher = newLeaseToken();
        await store().acquireLease(stale, refresher, 10_000, seen.stamp);
        expect(await store().completeLease(stale, refresher, entryOf('new'), HOUR, channel)).toBe(true);
        const newer = (await read(stale)) as DecodedEntry;
        const second = newLeaseToken();
        await store().acquireLease(stale, second, 10_000, newer.stamp);
        expect((await store().acquireLease(stale, newLeaseToken(), 10_000, newer.stamp)).status).toBe('held');
        expect(await store().completeLease(stale, second, entryOf('newest'), HOUR, channel)).toBe(true);
        const newestStored = (await store().get(stale))!;
        // A completion whose lease was revoked still wakes the waiters, who read what revoked it.
        await store().completeLease(key, newLeaseToken(), entryOf('late'), HOUR, channel);
        await store().write(key, entryOf('put'), HOUR, await begin(), { channel, message: 'written' });
        await store().evict([key], 60_000, { channel, message: 'evicted' });
        await store().unlink([key], { channel, message: 'unlinked' });
        await store().invalidateTags(keys.epoch, [keys.tag('t')], 600_000, [{ channel, head: 'head', tail: 't' }]);
        await store().publish(channel, 'routed', key);
        await store().publishPlain(channel, 'plain');
        const marked = await store().markPrefix(keys.epoch, keys.prefixes, 'p:', {
          retentionMs: HOUR,
          cap: 1_000,
          channel: keys.prefixChannel,
        });
        await eventually(
          'every message arrived',
          () => messages.received.length === 10 && prefixes.received.length === 2,
        );
        const tagMessage = messages.received[7];
        // A value stored for waiters rides along with its release: NUL, the holder's token, the entry as stored.
        expect(messages.bytes[0]).toEqual(Buffer.concat([Buffer.from(`${key}\0`), token, valueStored]));
        expect(messages.bytes[2]).toEqual(Buffer.concat([Buffer.from(`${stale}\0`), second, newestStored]));
        expect(messages.received.slice(1)).toEqual([
          `${handle.key('announced:2')}\0`,
          messages.received[2],
          key,
          'written',
          'evicted',
          'unlinked',
          tagMessage,
          'routed',
          'plain',
        ]);
        expect(tagMessage).toMatch(/^head \d{16} t$/);
        // The markers were missing: first the whole namespace's, at the latest epoch, then the clear's.
        expect(prefixes.received[0]).toMatch(/^\d{16} $/);
        expect(prefixes.received[1]).toBe(`${marked.epoch} p:`);
      } finally {
        await messages.stop();
        await prefixes.stop();
      }
    });

    it(`a value over ${CARRIED_VALUE_MAX_BYTES} bytes is released by its key alone: waiters read it`, async () => {
      const channel = `${handle.keys.leaseChannel}:contract`;
      const messages = await handle.subscribe(channel);
      try {
        const [small, large] = [handle.key('carried:small'), handle.key('carried:large')];
        for (const [key, value] of [
          [small, 'x'.repeat(CARRIED_VALUE_MAX_BYTES - 200)],
          [large, 'x'.repeat(CARRIED_VALUE_MAX_BYTES + 1)],
        ]) {
          const token = newLeaseToken();
          await store().acquireLease(key, token, 10_000, '');
          expect((await store().acquireLease(key, newLeaseToken(), 10_000, '')).status).toBe('held');
          expect(await store().completeLease(key, token, entryOf(value), HOUR, channel)).toBe(true);
        }
        await eventually('both releases arrived', () => messages.received.length === 2);
        const carried = messages.bytes[0];
        expect(carried.subarray(0, small.length + 1).toString()).toBe(`${small}\0`);
        expect(carried.length).toBeLessThanOrEqual(small.length + 1 + 8 + CARRIED_VALUE_MAX_BYTES);
        expect(messages.received[1]).toBe(large);
      } finally {
        await messages.stop();
      }
    });
  });

  describe('prefix markers', () => {
    const options = (cap = 1_000) => ({ retentionMs: 31 * 24 * HOUR, cap, channel: handle.keys.prefixChannel });

    it('start as a marker of the whole namespace; a clear supersedes the narrower markers under it', async () => {
      const { keys } = handle;
      const first = await store().readPrefixes(keys.epoch, keys.prefixes, options().retentionMs, keys.prefixChannel);
      expect(first.markers).toEqual([['', expect.any(Number)]]);
      expect(first.clock).toBeGreaterThan(0);
      const narrow = await store().markPrefix(keys.epoch, keys.prefixes, 'posts:7:', options());
      expect(narrow.prefix).toBe('posts:7:');
      expect(narrow.epoch).toBeGreaterThan(first.markers[0][1]);
      const other = await store().markPrefix(keys.epoch, keys.prefixes, 'users:', options());
      const wide = await store().markPrefix(keys.epoch, keys.prefixes, 'posts:', options());
      expect(wide.epoch).toBeGreaterThan(other.epoch);
      const { markers } = await store().readPrefixes(
        keys.epoch,
        keys.prefixes,
        options().retentionMs,
        keys.prefixChannel,
      );
      expect(markers).toEqual([
        ['', first.markers[0][1]],
        ['posts:', wide.epoch],
        ['users:', other.epoch],
      ]);
    });

    it('collapse into one marker of the whole namespace past the cap', async () => {
      const { keys } = handle;
      await store().markPrefix(keys.epoch, keys.prefixes, 'a:', options(2));
      const collapsed = await store().markPrefix(keys.epoch, keys.prefixes, 'b:', options(2));
      expect(collapsed.prefix).toBe('');
      const { markers } = await store().readPrefixes(
        keys.epoch,
        keys.prefixes,
        options().retentionMs,
        keys.prefixChannel,
      );
      expect(markers).toEqual([['', collapsed.epoch]]);
    });
  });
});
