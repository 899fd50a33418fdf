import { BookkeepingKeys } from '../core/bookkeeping-keys.js';
import type { BackendEvents, CacheBackend, CacheBackendSession } from '../store/cache-backend.js';
import { InMemorySubscriber } from './in-memory-subscriber.js';
import { InMemoryCacheStore } from './in-memory-store.js';
import { InProcessBus } from './in-process-bus.js';
import { TestClock } from './test-clock.js';

/**
 * What one RedisCacheTestingModule registration runs on instead of Redis: a fresh in-process store,
 * its clock and its bus, made per application (a run never sees another run's entries).
 */
export class InMemoryBackend implements CacheBackend {
  readonly clock = new TestClock();
  readonly store: InMemoryCacheStore;
  private readonly bus = new InProcessBus();
  private opened: { keys: BookkeepingKeys; leases: InMemorySubscriber } | undefined;

  /** `retain: false`: nothing is ever stored (the `disabled` switch). */
  constructor(retain = true) {
    this.store = new InMemoryCacheStore(this.clock, this.bus, retain);
  }

  readonly where = ', in-process store';

  /** Nothing connects: no outage, no connection to announce, nothing to close but the subscription. */
  open(namespace: string, events: BackendEvents): CacheBackendSession {
    const keys = new BookkeepingKeys(namespace, { keyPrefix: '', db: 0 });
    const leases = new InMemorySubscriber(keys.leaseChannel, this.bus, (key) => keys.isEntryKey(key), events.rejected);
    this.opened = { keys, leases };
    return {
      keys,
      store: this.store,
      leases,
      isDown: () => false,
      up: false,
      connect: async (preflight) => {
        await leases.start();
        await preflight();
      },
      closing: () => undefined,
      close: () => leases.stop(),
    };
  }

  /**
   * Moves the clock `ms` ahead: keys past their TTL are gone, entries age, leases and tombstones end.
   * The in-process tier (L1), which keeps values by the process's own clock, is emptied; callers
   * waiting for a lease read the key again.
   */
  advance(ms: number): void {
    this.clock.advance(ms);
    this.store.sweep();
    this.opened?.leases.renew(this.opened.keys.l1Channel);
    this.opened?.leases.wakeAll();
  }

  /** Deletes every entry, tombstone and lease (the namespace's bookkeeping stays), and empties L1. */
  reset(): void {
    const keys = this.opened?.keys;
    this.store.dropKeys((key) => !keys?.isBookkeeping(key));
    if (keys) this.opened?.leases.renew(keys.l1Channel);
  }
}
