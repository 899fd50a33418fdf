import type { LRUCache } from 'lru-cache';
import type { DecodedEntry } from '../cache-entry.js';
import type { InProcessTier } from './in-process-tier.js';

/** An L1 memory resolved from the options: how many entries, and how long one is kept at most. */
export interface L1Settings {
  max: number;
  ttlMs: number;
}

/** What L1 keeps of a value read from Redis: the value, and what tells whether it was invalidated since. */
export interface L1Entry {
  value: unknown;
  /** The value as a settled Promise, made on the first hit and handed to every later one. */
  resolved?: Promise<unknown>;
  epoch: number;
  tags: readonly string[];
}

/** What `L1Slot.get` returns when it has nothing to serve (a cached value may be `undefined`). */
export const L1_MISS: unique symbol = Symbol('nestjs-redis-cache:l1-miss');

/**
 * One in-process memory of values read from Redis (lru-cache): the module's shared one, or a method's
 * own. Serves only fresh values, and only while its tier may (see InProcessTier).
 */
export class L1Slot {
  constructor(
    private readonly tier: InProcessTier,
    private readonly lru: LRUCache<string, L1Entry>,
    /** The longest a value of this slot's users is kept (a method may keep its values shorter or longer). */
    readonly ttlMs: number,
  ) {}

  /** The same memory, its values kept at most `ttlMs` (a method's own `l1.ttl` on the shared memory). */
  withTtl(ttlMs: number): L1Slot {
    return new L1Slot(this.tier, this.lru, ttlMs);
  }

  /** The value kept for `redisKey`, or L1_MISS. */
  get(redisKey: string): unknown {
    const entry = this.servable(redisKey);
    return entry === undefined ? L1_MISS : entry.value;
  }

  /** `get` for a caller that returns a Promise: the kept value as a settled Promise (made once per entry), or undefined. */
  getResolved(redisKey: string): Promise<unknown> | undefined {
    const entry = this.servable(redisKey);
    return entry === undefined ? undefined : (entry.resolved ??= Promise.resolve(entry.value));
  }

  /**
   * Keeps a value just read from Redis, fresh and checked, unless an invalidation of its key reached
   * this process after the read began (`readSeq`, from `InProcessTier.seq`): the read may have
   * returned what the invalidation replaced.
   */
  offer(redisKey: string, readSeq: number, entry: DecodedEntry): void {
    if (!this.tier.admits(redisKey, readSeq)) return;
    const ttl = Math.min(this.ttlMs, entry.freshUntil - Date.now());
    if (!(ttl >= 1)) return;
    this.lru.set(redisKey, { value: entry.value, epoch: entry.epoch, tags: entry.tags }, { ttl });
  }

  /**
   * The entry kept for `redisKey` if it may be served. One whose tag or prefix was invalidated since
   * it was read is dropped here: the invalidation reached this process, the entry may not have been
   * dropped yet (it was read before the message came and stored after it).
   */
  private servable(redisKey: string): L1Entry | undefined {
    if (!this.tier.serving) return undefined;
    const entry = this.lru.get(redisKey);
    if (entry === undefined || !this.tier.invalidates(redisKey, entry)) return entry;
    this.lru.delete(redisKey);
    return undefined;
  }

  /** @internal */
  get memory(): LRUCache<string, L1Entry> {
    return this.lru;
  }
}
