import type { CacheEventPublisher } from '../../events/cache-event-publisher.js';
import type { Announcement, CacheStore, NamespaceSubscription } from '../../store/cache-store.js';
import { CommandTimeoutError } from '../../store/redis-cache.store.js';
import type { BookkeepingKeys } from '../bookkeeping-keys.js';
import type { Removal } from '../cache-engine.types.js';
import { FAILED, type FailOpenStore } from '../fail-open-store.js';
import type { CacheTags } from './cache-tags.js';
import type { InProcessTier } from '../l1/in-process-tier.js';
import type { L1Presence } from '../l1/l1-presence.js';
import type { PendingInvalidations } from './pending-invalidations.js';
import type { PrefixGenerations } from './prefix-generations.js';

/** What the invalidations of one running cache go through. */
export interface InvalidationTargets {
  keys: BookkeepingKeys;
  store: CacheStore;
  /** Where a failed invalidation is counted and answered (fail-open-store.ts). */
  failOpen: FailOpenStore;
  leases: NamespaceSubscription;
  pending: PendingInvalidations;
  tags: CacheTags;
  prefixes: PrefixGenerations;
  tier: InProcessTier;
  presence: L1Presence;
}

/**
 * How long an evicted key keeps its tombstone (store/entry-scripts.ts): a write that began before
 * the eviction and lands within this is not kept. One that lands later (a method that ran for over a
 * minute after the eviction) may store its value.
 */
export const EVICTION_TOMBSTONE_MS = 60_000;

/**
 * Deleting keys, clearing and reclaiming prefixes and invalidating tags for one running cache, and
 * what an outage held back of them. Each change is announced to every instance's in-process tier
 * (in-process-tier.ts) while some instance keeps one (l1-presence.ts); a failure is counted under
 * the caller's name and replayed once Redis answers again (pending-invalidations.ts). The engine
 * keeps its own loads in flight from landing after a change before it gets here.
 */
export class CacheInvalidation {
  constructor(
    private readonly targets: InvalidationTargets,
    private readonly events: CacheEventPublisher,
  ) {}

  /**
   * Remembers keys whose eviction or write failed (with `failure`), to delete them when Redis answers
   * again. A write that timed out may still land, after later writes even (the client retries or
   * resends it): its keys are deleted only once the client is done with it.
   */
  later(redisKeys: readonly string[], failure?: unknown): void {
    const { pending } = this.targets;
    if (failure instanceof CommandTimeoutError) pending.after(failure.settled, () => pending.addKeys(redisKeys));
    else pending.addKeys(redisKeys);
  }

  /** Replays what an outage held back; on recovery and on a retry timer. Never rejects. */
  async replay(): Promise<void> {
    const { pending, prefixes } = this.targets;
    await pending
      .flush({
        deleteKeys: (keys) => this.announced(keys, (announce) => this.evict(keys, announce)),
        invalidateTags: (tags) => this.invalidated(tags),
        clearPrefix: (prefix) => prefixes.clear(prefix),
      })
      .catch(() => undefined);
  }

  /** Deletes the given Redis keys: how many existed, and whether the cache failed (counted). */
  async delete(redisKeys: readonly string[], name: string): Promise<Removal> {
    if (redisKeys.length === 0) return { removed: 0, failed: false };
    const removal = await this.remove(name, () =>
      this.announced(redisKeys, (announce) => this.evict(redisKeys, announce)),
    );
    if (removal.failed) this.later(redisKeys);
    this.events.invalidated(name, 'keys', removal.removed, removal.failed);
    return removal;
  }

  /** Evicts entries: tombstones that keep writes which began before from landing. */
  private evict(redisKeys: readonly string[], announce: Announcement | undefined): Promise<number> {
    return this.targets.store.evict(redisKeys, EVICTION_TOMBSTONE_MS, announce);
  }

  /**
   * Runs `change` (a write or deletion of `redisKeys`) with the announcement of the keys to every
   * instance's in-process tier, which drops them (none when no instance keeps one); this one drops
   * them before and after. Rejects when either fails: the caller then replays the deletion,
   * announced again, once Redis answers.
   */
  async announced<T>(
    redisKeys: readonly string[],
    change: (announce: Announcement | undefined) => Promise<T>,
  ): Promise<T> {
    const { tier } = this.targets;
    tier.dropKeys(redisKeys);
    try {
      return await change(
        this.announcing ? { channel: tier.channel, message: tier.keysMessage(redisKeys) } : undefined,
      );
    } finally {
      // A read of this process that began while the change was on its way may have read the old value.
      tier.dropKeys(redisKeys);
    }
  }

  /**
   * Invalidates every entry under normalised `tags` in O(1) (see cache-tags.ts). A failure is
   * counted and the invalidation replayed once Redis answers again.
   */
  async invalidateTags(tags: readonly string[], name: string): Promise<{ failed: boolean }> {
    const { failOpen, pending } = this.targets;
    const done = await failOpen.attempt(
      name,
      'invalidate',
      undefined,
      () => this.invalidated(tags),
      () => pending.addTags(tags),
    );
    const failed = done === FAILED;
    this.events.invalidated(name, 'tags', tags.length, failed);
    return { failed };
  }

  /** Invalidates `tags`, telling every instance's in-process tier (this one's once Redis took it). */
  private async invalidated(tags: readonly string[]): Promise<void> {
    const { tier } = this.targets;
    const epoch = await this.targets.tags.invalidate(tags, this.announcing ? tier.tagsAnnouncement(tags) : undefined);
    tier.tagsInvalidated(tags, epoch);
  }

  /**
   * Invalidates every entry under `${namespace}:${prefix}` in O(1): a new generation for the prefix
   * (prefix-generations.ts); the entries expire by their TTL. A failure is counted and the clear
   * replayed once Redis answers again.
   */
  async clear(prefix: string, name: string): Promise<{ failed: boolean }> {
    const { failOpen, pending, prefixes } = this.targets;
    const done = await failOpen.attempt(
      name,
      'invalidate',
      undefined,
      () => prefixes.clear(prefix),
      () => pending.addPrefix(prefix),
    );
    const failed = done === FAILED;
    this.events.invalidated(name, 'prefix', 1, failed);
    return { failed };
  }

  /** Deletes every key under `literalPrefix` (the namespace's included) with SCAN + pipelined UNLINK. */
  async reclaim(literalPrefix: string, name: string): Promise<Removal> {
    const { tier, keys } = this.targets;
    const removal = await this.remove(name, async (store) => {
      tier.reclaimed(literalPrefix);
      try {
        // The module's own keys stay: the markers and tags hold invalidations entries may still need.
        const removed = await store.scanAndUnlink(literalPrefix, (key) => keys.isBookkeeping(key));
        if (this.announcing) await store.publish(tier.channel, tier.reclaimMessage(literalPrefix), keys.prefixes);
        return removed;
      } finally {
        tier.reclaimed(literalPrefix);
      }
    });
    this.events.invalidated(name, 'reclaim', removal.removed, removal.failed);
    return removal;
  }

  /** Runs a removal: how many keys it removed, or that the cache failed (counted under `name`). */
  async remove(name: string, removeWith: (store: CacheStore) => Promise<number>): Promise<Removal> {
    const { failOpen, store } = this.targets;
    const removed = await failOpen.attempt(name, 'delete', undefined, () => removeWith(store));
    return removed === FAILED ? { removed: 0, failed: true } : { removed, failed: false };
  }

  /** Whether changes are announced: this instance keeps an L1, or another one may. */
  private get announcing(): boolean {
    return this.targets.tier.wanted || this.targets.presence.announcementsWanted;
  }
}
