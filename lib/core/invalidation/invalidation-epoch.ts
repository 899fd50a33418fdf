import type { CacheStore } from '../../store/cache-store.js';
import type { BookkeepingKeys } from '../bookkeeping-keys.js';
import type { RedisClock } from '../redis-clock.js';

/**
 * The namespace's invalidation epoch: microseconds of one Redis node's clock, only ever increasing
 * (store/invalidation-scripts.ts). A load that needs it reads it before it reads the source; an
 * invalidation (of a tag, of a prefix) takes a new one, above every epoch read before it. An entry
 * loaded in an epoch below an invalidation's predates it. A write also reads it before its method
 * runs: it is when the write began, which orders it against other writes of the key.
 */
export class InvalidationEpoch {
  constructor(
    private readonly keys: BookkeepingKeys,
    private readonly store: CacheStore,
    private readonly clock: RedisClock,
  ) {}

  /** The epoch a load starts in. Rejects when Redis fails. */
  async read(): Promise<number> {
    const epoch = await this.store.readEpoch(this.keys.epoch);
    this.clock.observe(epoch);
    return epoch;
  }
}
