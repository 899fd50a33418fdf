import type { RedisCacheStore } from '../store/redis-cache.store.js';

/** How many keys are remembered; past it, the recovery clears the whole namespace instead. */
const MAX_PENDING_KEYS = 10_000;

/**
 * Invalidations the cache could not carry out because Redis failed: evictions, writes (the old
 * value stays behind a write that did not land), leases left behind by a timed-out command. They are
 * replayed when Redis answers again, so an outage costs misses afterwards, never stale values for a
 * whole TTL. Past MAX_PENDING_KEYS the replay clears the namespace: more misses, still nothing stale.
 */
export class PendingInvalidations {
  private keys = new Set<string>();
  private prefixes = new Set<string>();
  private overflowed = false;
  private flushing = false;
  /** Keys and prefixes taken by the flush running now: still pending until it is done. */
  private inFlight = 0;

  /** `namespacePrefix`: `${namespace}:`, what an overflow clears. */
  constructor(private readonly namespacePrefix: string) {}

  get size(): number {
    return this.keys.size + this.prefixes.size + (this.overflowed ? 1 : 0) + this.inFlight;
  }

  addKeys(keys: readonly string[]): void {
    if (this.overflowed) return;
    for (const key of keys) this.keys.add(key);
    if (this.keys.size > MAX_PENDING_KEYS) this.overflow();
  }

  /** A prefix whose SCAN + UNLINK failed (`clear`). */
  addPrefix(literalPrefix: string): void {
    if (this.overflowed) return;
    this.prefixes.add(literalPrefix);
    if (this.prefixes.size > MAX_PENDING_KEYS) this.overflow();
  }

  /** Replays everything pending; what fails again stays pending for the next recovery. One flush at a time. */
  async flush(store: RedisCacheStore): Promise<void> {
    if (this.flushing || this.size === 0) return;
    this.flushing = true;
    const keys = [...this.keys];
    const prefixes = this.overflowed ? [this.namespacePrefix] : [...this.prefixes];
    this.keys = new Set();
    this.prefixes = new Set();
    this.overflowed = false;
    this.inFlight = keys.length + prefixes.length;
    try {
      if (keys.length > 0) {
        try {
          await store.unlink(keys);
        } catch {
          this.addKeys(keys);
        }
      }
      for (const prefix of prefixes) {
        try {
          await store.scanAndUnlink(prefix);
        } catch {
          this.addPrefix(prefix);
        }
      }
    } finally {
      this.flushing = false;
      this.inFlight = 0;
    }
  }

  private overflow(): void {
    this.overflowed = true;
    this.keys.clear();
    this.prefixes.clear();
  }
}
