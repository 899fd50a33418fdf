import { BookkeepingKeys } from '../../lib/core/bookkeeping-keys.js';
import { DecodedEntry } from '../../lib/core/cache-entry.js';
import { InProcessTier } from '../../lib/core/l1/in-process-tier.js';
import { L1_MISS, type L1Settings, type L1Slot } from '../../lib/core/l1/l1-slot.js';
import type { PrefixGenerations } from '../../lib/core/invalidation/prefix-generations.js';
import { RedisClock } from '../../lib/core/redis-clock.js';

// The coherence rules of the in-process tier, without Redis: which values it keeps, which it serves,
// and what another instance's message or a lost subscription does to them. What Redis carries is
// tested in test/integration/l1.spec.ts and l1-processes.spec.ts.

interface FakeMarkers {
  cleared: Map<string, number>;
  synced: boolean;
  readonly markers: PrefixGenerations;
}

/** The prefix markers as the tier sees them: none cleared unless a test says so. */
function prefixes(): FakeMarkers {
  const fake = {
    cleared: new Map<string, number>(),
    synced: true,
    get active() {
      return fake.cleared.size > 0 || !fake.synced;
    },
    get fresh() {
      return fake.synced;
    },
    invalidates(redisKey: string, epoch: number) {
      for (const [prefix, marker] of fake.cleared) if (redisKey.startsWith(prefix) && marker > epoch) return true;
      return false;
    },
  };
  return Object.assign(fake, { markers: fake as unknown as PrefixGenerations });
}

const FRESH_MS = 60_000;
const KEYS = new BookkeepingKeys('ns', { keyPrefix: '', db: 0 });
let rejected = 0;

/** A tier of namespace 'ns' whose clock has read Redis's (so epochs in messages can be checked). */
function newTier(markers: PrefixGenerations, settings: L1Settings = { max: 100, ttlMs: 10_000 }): InProcessTier {
  const clock = new RedisClock();
  clock.observe(1_700_000_000_000_000);
  return new InProcessTier(KEYS, markers, settings, clock, () => rejected++);
}

/** The message another instance's tag invalidation publishes (see CacheTags.invalidate). */
function tagsMessage(from: InProcessTier, tags: string[], epoch: number): string {
  const { head, tail } = from.tagsAnnouncement(tags);
  return `${head} ${epoch} ${tail}`;
}

function entry(value: unknown, { epoch = 0, tags = [] as string[], freshMs = FRESH_MS } = {}): DecodedEntry {
  return new DecodedEntry(value, Date.now() + freshMs, 0, Buffer.alloc(30), tags, epoch);
}

describe('InProcessTier', () => {
  let markers: FakeMarkers;
  let tier: InProcessTier;
  let slot: L1Slot;

  beforeEach(async () => {
    markers = prefixes();
    tier = newTier(markers.markers, { max: 100, ttlMs: 10_000 });
    slot = tier.sharedSlot()!;
    await tier.subscribed();
    tier.presenceSettled(true);
  });

  it('keeps nothing until every writer announces its changes, and empties when that is in doubt', () => {
    const fresh = newTier(markers.markers, { max: 100, ttlMs: 10_000 });
    const memory = fresh.sharedSlot()!;
    void fresh.subscribed();
    memory.offer('ns:a', fresh.seq, entry('A'));
    expect(memory.get('ns:a')).toBe(L1_MISS);
    fresh.presenceSettled(true);
    memory.offer('ns:a', fresh.seq, entry('A'));
    expect(memory.get('ns:a')).toBe('A');
    fresh.presenceSettled(false);
    expect(fresh.serving).toBe(false);
    fresh.presenceSettled(true);
    expect(memory.get('ns:a')).toBe(L1_MISS);
  });

  it('keeps and serves a value read since the last invalidation of its key', () => {
    slot.offer('ns:a', tier.seq, entry('A'));
    expect(slot.get('ns:a')).toBe('A');
    expect(slot.get('ns:b')).toBe(L1_MISS);
  });

  it('does not keep a value whose read began before its key was invalidated', () => {
    const readSeq = tier.seq;
    tier.dropKeys(['ns:a']); // a write landed while the read was on its way
    slot.offer('ns:a', readSeq, entry('old'));
    expect(slot.get('ns:a')).toBe(L1_MISS);
    // Another key's invalidation does not keep this one out.
    const next = tier.seq;
    tier.dropKeys(['ns:b']);
    slot.offer('ns:a', next, entry('new'));
    expect(slot.get('ns:a')).toBe('new');
  });

  it('keeps out reads older than a key it had to forget, past 10,000 remembered invalidations', () => {
    const readSeq = tier.seq;
    tier.dropKeys(['ns:a']);
    for (let i = 0; i < 10_000; i++) tier.dropKeys([`ns:other:${i}`]);
    slot.offer('ns:a', readSeq, entry('old'));
    expect(slot.get('ns:a')).toBe(L1_MISS);
  });

  it("drops the keys another instance's message names, and ignores its own messages", () => {
    const other = newTier(markers.markers, { max: 100, ttlMs: 10_000 });
    slot.offer('ns:a', tier.seq, entry('A'));
    slot.offer('ns:b', tier.seq, entry('B'));
    tier.received(tier.keysMessage(['ns:a', 'ns:b']));
    expect(slot.get('ns:a')).toBe('A');
    tier.received(other.keysMessage(['ns:a', 'ns:b']));
    expect(slot.get('ns:a')).toBe(L1_MISS);
    expect(slot.get('ns:b')).toBe(L1_MISS);
  });

  it('does not serve an entry of a tag invalidated after its load, even one kept after the message', () => {
    const other = newTier(markers.markers, { max: 100, ttlMs: 10_000 });
    slot.offer('ns:a', tier.seq, entry('A', { epoch: 10, tags: ['t1', 't2'] }));
    slot.offer('ns:b', tier.seq, entry('B', { epoch: 10, tags: ['t3'] }));
    tier.received(tagsMessage(other, ['t2'], 11));
    expect(slot.get('ns:a')).toBe(L1_MISS);
    expect(slot.get('ns:b')).toBe('B');
    // Read (checked against Redis) before the invalidation, kept after its message: still refused.
    slot.offer('ns:c', tier.seq, entry('C', { epoch: 10, tags: ['t2'] }));
    expect(slot.get('ns:c')).toBe(L1_MISS);
    // Loaded after it: served.
    slot.offer('ns:d', tier.seq, entry('D', { epoch: 12, tags: ['t2'] }));
    expect(slot.get('ns:d')).toBe('D');
  });

  it('does not serve an entry under a prefix cleared after its load', () => {
    slot.offer('ns:posts:1', tier.seq, entry('P', { epoch: 5 }));
    slot.offer('ns:users:1', tier.seq, entry('U', { epoch: 5 }));
    markers.cleared.set('ns:posts:', 6);
    expect(slot.get('ns:posts:1')).toBe(L1_MISS);
    expect(slot.get('ns:users:1')).toBe('U');
  });

  it('serves nothing while the prefix markers cannot be trusted', () => {
    slot.offer('ns:a', tier.seq, entry('A'));
    markers.synced = false;
    expect(slot.get('ns:a')).toBe(L1_MISS);
  });

  it('drops every key under a reclaimed prefix', () => {
    const other = newTier(markers.markers, { max: 100, ttlMs: 10_000 });
    slot.offer('ns:posts:1', tier.seq, entry('P'));
    slot.offer('ns:users:1', tier.seq, entry('U'));
    tier.received(other.reclaimMessage('ns:posts:'));
    expect(slot.get('ns:posts:1')).toBe(L1_MISS);
    expect(slot.get('ns:users:1')).toBe('U');
  });

  it('empties L1 when the subscription drops, serves nothing until it is back, and keeps no read from before', async () => {
    slot.offer('ns:a', tier.seq, entry('A'));
    const readSeq = tier.seq;
    tier.lost();
    expect(slot.get('ns:a')).toBe(L1_MISS);
    slot.offer('ns:b', tier.seq, entry('B'));
    expect(slot.get('ns:b')).toBe(L1_MISS);
    await tier.subscribed();
    expect(slot.get('ns:a')).toBe(L1_MISS);
    slot.offer('ns:a', readSeq, entry('A, read before the loss'));
    expect(slot.get('ns:a')).toBe(L1_MISS);
    slot.offer('ns:a', tier.seq, entry('A again'));
    expect(slot.get('ns:a')).toBe('A again');
  });

  it('keeps a value no longer than it is fresh, nor than the slot ttl', async () => {
    slot.offer('ns:short', tier.seq, entry('S', { freshMs: 30 }));
    const brief = tier.sharedSlot(30)!;
    brief.offer('ns:brief', tier.seq, entry('B'));
    expect(slot.get('ns:short')).toBe('S');
    expect(brief.get('ns:brief')).toBe('B');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(slot.get('ns:short')).toBe(L1_MISS);
    expect(brief.get('ns:brief')).toBe(L1_MISS);
    // An entry already past its freshness is not kept at all.
    slot.offer('ns:expired', tier.seq, entry('E', { freshMs: -1 }));
    expect(slot.get('ns:expired')).toBe(L1_MISS);
  });

  it('a memory of its own holds its own max, and drops keys other instances name', () => {
    const own = tier.ownSlot({ max: 2, ttlMs: 10_000 });
    for (const key of ['ns:1', 'ns:2', 'ns:3']) own.offer(key, tier.seq, entry(key));
    expect(own.get('ns:1')).toBe(L1_MISS);
    expect(own.get('ns:3')).toBe('ns:3');
    tier.dropKeys(['ns:3']);
    expect(own.get('ns:3')).toBe(L1_MISS);
    expect(tier.wanted).toBe(true);
    expect(new InProcessTier(KEYS, markers.markers, undefined, new RedisClock(), () => rejected++).wanted).toBe(false);
  });

  it('forgets every kept value rather than a tag epoch, past 10,000 remembered tags', () => {
    slot.offer('ns:a', tier.seq, entry('A', { epoch: 1, tags: ['t0'] }));
    slot.offer('ns:b', tier.seq, entry('B'));
    for (let i = 0; i <= 10_000; i++) tier.tagsInvalidated([`tag${i}`], 2);
    expect(slot.get('ns:a')).toBe(L1_MISS);
    expect(slot.get('ns:b')).toBe(L1_MISS);
  });
});
