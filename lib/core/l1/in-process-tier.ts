import { LRUCache } from 'lru-cache';
import type { SubscriptionFollower } from '../../store/cache-store.js';
import type { BookkeepingKeys } from '../bookkeeping-keys.js';
import type { TagAnnouncement } from '../invalidation/cache-tags.js';
import type { PrefixGenerations } from '../invalidation/prefix-generations.js';
import type { RedisClock } from '../redis-clock.js';
import { L1Messages, type L1Message } from './l1-messages.js';
import { L1Slot, type L1Entry, type L1Settings } from './l1-slot.js';

/**
 * How many recently invalidated keys (and tags) are remembered one by one. Past it the oldest are
 * forgotten and their invalidation is taken to be as recent as the last one forgotten, which only
 * keeps more reads out of L1.
 */
const REMEMBERED_INVALIDATIONS = 10_000;

/** Why values left L1: see CacheL1DropEvent. */
export type L1DropReason = 'message' | 'local' | 'resync';

/**
 * The in-process tier (L1) of one application, and how it stays coherent across instances: every
 * instance announces the keys, tags and prefixes it invalidates while some instance keeps an L1
 * (l1-presence.ts); this one drops what it hears, refuses values whose read began before a drop, and
 * serves nothing while its subscription is down. The messages, sequence numbers and resync:
 * docs/l1-coherence.md. Changes made outside the module (a `DEL` from redis-cli, maxmemory eviction)
 * are not announced: L1's `ttl` bounds how long an instance may serve a value they replaced.
 */
export class InProcessTier implements SubscriptionFollower {
  readonly channel: string;
  /** The channel's messages, written and read (l1-messages.ts). */
  private readonly messages: L1Messages;
  private readonly slots: L1Slot[] = [];
  private shared: L1Slot | undefined;
  /** Subscribed and caught up: L1 may serve and keep values. */
  private subscribedNow = false;
  /** Every writer announces its changes (l1-presence.ts): L1 may keep values. */
  private announcedTo = false;
  /** Bumped by every invalidation this process learns of. */
  private sequence = 0;
  /** Key -> the sequence number of its last invalidation (the most recent REMEMBERED_INVALIDATIONS). */
  private readonly dropped = new Map<string, number>();
  /** Reads that began before this (a forgotten key's invalidation, a subscription regained) are not kept. */
  private floor = 0;
  /** Tag -> the latest invalidation epoch heard of (the most recent REMEMBERED_INVALIDATIONS). */
  private readonly tagEpochs = new Map<string, number>();
  /** Told how many values left the memories, and why (the `l1:drop` event). */
  onDrop: ((reason: L1DropReason, count: number) => void) | undefined;
  /** Told of each valid message of another instance, once L1 has acted on it. */
  onHeard: ((heard: L1Message) => void) | undefined;

  constructor(
    keys: BookkeepingKeys,
    private readonly prefixes: PrefixGenerations,
    /** The module's `l1`: the memory methods share. */
    sharedSettings: L1Settings | undefined,
    clock: RedisClock,
    /** Counts a message that is not one an instance sends (dropped, never acted on). */
    private readonly rejected: () => void,
  ) {
    this.channel = keys.l1Channel;
    this.messages = new L1Messages(keys, clock);
    if (sharedSettings) this.shared = this.register(sharedSettings);
  }

  /** True when some L1 memory exists: the application subscribes to the channel. */
  get wanted(): boolean {
    return this.slots.length > 0;
  }

  /** True while values may be served from (and kept in) L1. */
  get serving(): boolean {
    return this.subscribedNow && this.announcedTo && (!this.prefixes.active || this.prefixes.fresh);
  }

  /** Whether every writer now announces its changes (see l1-presence.ts); when not, L1 empties. */
  presenceSettled(ready: boolean): void {
    if (!ready) this.dropAll('resync');
    this.announcedTo = ready;
  }

  /** The shared memory (`ttlMs` shorter than its own for one method), or undefined without a module `l1`. */
  sharedSlot(ttlMs?: number): L1Slot | undefined {
    const shared = this.shared;
    if (!shared || ttlMs === undefined || ttlMs === shared.ttlMs) return shared;
    return shared.withTtl(ttlMs);
  }

  /** A method's own memory. */
  ownSlot(settings: L1Settings): L1Slot {
    return this.register(settings);
  }

  /** The sequence number a read takes before it begins; see `L1Slot.offer`. */
  get seq(): number {
    return this.sequence;
  }

  /** @internal True when a value of `redisKey` read since `readSeq` may be kept. */
  admits(redisKey: string, readSeq: number): boolean {
    if (!this.serving || readSeq < this.floor) return false;
    const droppedAt = this.dropped.get(redisKey);
    return droppedAt === undefined || droppedAt <= readSeq;
  }

  /** @internal True when a tag or prefix of the entry was invalidated after it was loaded. */
  invalidates(redisKey: string, entry: L1Entry): boolean {
    for (const tag of entry.tags) {
      const invalidatedAt = this.tagEpochs.get(tag);
      if (invalidatedAt !== undefined && invalidatedAt > entry.epoch) return true;
    }
    return this.prefixes.active && this.prefixes.invalidates(redisKey, entry.epoch);
  }

  /** Drops `redisKeys` here; reads of them that began before are not kept. */
  dropKeys(redisKeys: readonly string[], reason: L1DropReason = 'local'): void {
    if (this.slots.length === 0) return; // no L1 here: nothing to drop, nothing to keep out
    const seq = ++this.sequence;
    let count = 0;
    for (const key of redisKeys) {
      this.dropped.delete(key);
      this.dropped.set(key, seq);
      for (const slot of this.slots) if (slot.memory.delete(key)) count++;
    }
    if (count > 0) this.onDrop?.(reason, count);
    if (this.dropped.size > REMEMBERED_INVALIDATIONS) {
      for (const [key, at] of this.dropped) {
        if (this.dropped.size <= REMEMBERED_INVALIDATIONS) break;
        this.dropped.delete(key);
        this.floor = Math.max(this.floor, at);
      }
    }
  }

  /** Entries of `tags` loaded before `epoch` are not served here any more. */
  tagsInvalidated(tags: readonly string[], epoch: number): void {
    if (this.slots.length === 0) return;
    for (const tag of tags) {
      const known = this.tagEpochs.get(tag);
      if (known !== undefined && known >= epoch) continue;
      this.tagEpochs.delete(tag);
      this.tagEpochs.set(tag, epoch);
    }
    if (this.tagEpochs.size > REMEMBERED_INVALIDATIONS) {
      // Forgetting a tag's epoch could let an entry of it be served: forget L1 instead.
      this.tagEpochs.clear();
      this.dropAll('resync');
    }
  }

  /** Drops every key under `fullPrefix` (`${namespace}:${prefix}`): the keys were deleted. */
  reclaimed(fullPrefix: string, reason: L1DropReason = 'local'): void {
    this.floor = ++this.sequence;
    let count = 0;
    for (const slot of this.slots) {
      for (const key of slot.memory.keys()) if (key.startsWith(fullPrefix) && slot.memory.delete(key)) count++;
    }
    if (count > 0) this.onDrop?.(reason, count);
  }

  /** The message announcing that this instance wrote or evicted `redisKeys`. */
  keysMessage(redisKeys: readonly string[]): string {
    return this.messages.keysMessage(redisKeys);
  }

  /** How a tag invalidation announces its tags and epoch: see CacheTags.invalidate. */
  tagsAnnouncement(tags: readonly string[]): TagAnnouncement {
    return this.messages.tagsAnnouncement(this.channel, tags);
  }

  /** The message announcing that every key under `fullPrefix` was deleted. */
  reclaimMessage(fullPrefix: string): string {
    return this.messages.reclaimMessage(fullPrefix);
  }

  /** A message of another instance (l1-messages.ts); one no instance would send is counted, never acted on. */
  received(message: string): void {
    const heard = this.messages.parse(message);
    if (heard === 'own') return;
    if (heard === 'rejected') return this.rejected();
    if (heard.kind === 'keys') this.dropKeys(heard.keys, 'message');
    else if (heard.kind === 'tags') this.tagsInvalidated(heard.tags, heard.epoch);
    else this.reclaimed(heard.fullPrefix, 'message');
    this.onHeard?.(heard);
  }

  /** Subscribed (again): what was kept before may be stale, and reads that began before are not kept. */
  subscribed(): Promise<void> {
    this.dropAll('resync');
    this.subscribedNow = true;
    return Promise.resolve();
  }

  /** The subscription dropped: invalidations published from now on may be missed. */
  lost(): void {
    this.subscribedNow = false;
    this.dropAll('resync');
  }

  /** Empties every memory (the application is closing, or coherence was lost: `reason`). */
  dropAll(reason?: L1DropReason): void {
    this.floor = ++this.sequence;
    this.dropped.clear();
    let count = 0;
    for (const slot of this.slots) {
      count += slot.memory.size;
      slot.memory.clear();
    }
    if (reason && count > 0) this.onDrop?.(reason, count);
  }

  /** A new memory of `settings`, which this tier's invalidations reach. */
  private register({ max, ttlMs }: L1Settings): L1Slot {
    const slot = new L1Slot(this, new LRUCache<string, L1Entry>({ max, ttl: ttlMs }), ttlMs);
    this.slots.push(slot);
    return slot;
  }
}
