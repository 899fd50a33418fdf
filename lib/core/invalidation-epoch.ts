import type { RedisCacheStore } from '../store/redis-cache.store.js';

/** The epoch key only keeps epochs increasing within one clock tick or across a clock step back. */
const EPOCH_TTL_MS = 24 * 3_600_000;

/**
 * The namespace's invalidation epoch: microseconds of one Redis node's clock, only ever increasing
 * (store/invalidation-scripts.ts). A load reads it before it reads the source; an invalidation (of a
 * tag, of a prefix) takes a new one, above every epoch read before it. An entry loaded in an epoch
 * below an invalidation's predates it.
 */
export class InvalidationEpoch {
  private readonly key: string;

  constructor(
    namespace: string,
    private readonly store: RedisCacheStore,
  ) {
    this.key = `${namespace}:__epoch`;
  }

  /** The epoch a load starts in. Rejects when Redis fails. */
  read(): Promise<number> {
    return this.store.readEpoch(this.key);
  }

  /** A new epoch for an invalidation. Rejects when Redis fails. */
  bump(): Promise<number> {
    return this.store.bumpEpoch(this.key, EPOCH_TTL_MS);
  }
}
