import type { CacheEventPublisher } from '../../events/cache-event-publisher.js';
import type { CacheStore, LeaseAttempt, LeaseListener } from '../../store/cache-store.js';
import type { LeaseWake } from '../../store/lease-waiters.js';
import { CommandTimeoutError } from '../../store/redis-cache.store.js';
import type { PreparedEntry } from '../cache-engine.types.js';

/** What an attempt to take a lease found; `failed`: Redis failed (counted), load without writing. */
export type LeaseOutcome = LeaseAttempt | { status: 'failed' };

/** What a lease session needs of the running cache. */
export interface LeaseSessionParts {
  store: CacheStore;
  listener: LeaseListener;
  events: CacheEventPublisher;
  /** Gives a lease back by its token once Redis answers again (pending invalidations). */
  releaseLater: (redisKey: string, token: Buffer, failure?: unknown) => void;
}

/**
 * The leases of one running cache (docs/lease-protocol.md): taking a key's lease, waiting for
 * another holder's release, completing a load (its value written only if the key still carries the
 * lease) and giving leases back. Every Redis failure is counted and answered so that no lease outlives
 * it: a completion or give-back that failed is replayed by token once Redis answers. The leases held
 * in this process are given back when the application closes.
 */
export class LeaseSession {
  /** The leases this process holds (key -> token), given back if the application closes mid-load. */
  private readonly held = new Map<string, Buffer>();
  /** Set once the leases were given back (closing): a lease taken later goes back at once. */
  private closing = false;

  constructor(private readonly parts: LeaseSessionParts) {}

  /** True while a release would reach this process. */
  get listening(): boolean {
    return this.parts.listener.listening;
  }

  /** Starts listening for the release of `redisKey`; before the attempt, so no release is missed. */
  listen(redisKey: string): LeaseWake {
    return this.parts.listener.listen(redisKey);
  }

  /** Takes the lease of `redisKey` on what the caller saw (`stamp`; '' for nothing). */
  async acquire(
    redisKey: string,
    token: Buffer,
    ttlMs: number,
    stamp: Buffer | '',
    name: string,
  ): Promise<LeaseOutcome> {
    try {
      return await this.parts.store.acquireLease(redisKey, token, ttlMs, stamp);
    } catch (err) {
      this.parts.events.failed(name, 'lease', redisKey, err);
      // A timed-out attempt may still have taken the lease: give it back once Redis answers.
      if (err instanceof CommandTimeoutError) this.parts.releaseLater(redisKey, token, err);
      return { status: 'failed' };
    }
  }

  /**
   * Records a lease just taken as this process's; false (and the lease given back) when the
   * application is closing: the caller then loads without writing.
   */
  async hold(redisKey: string, token: Buffer): Promise<boolean> {
    if (this.closing) {
      await this.giveBack(redisKey, token);
      return false;
    }
    this.held.set(redisKey, token);
    return true;
  }

  /**
   * Writes `prepared` if the key still carries `token` (or only gives the lease back), and wakes the
   * waiters. Never rejects: a failure is counted and the lease given back by token later.
   */
  async complete(redisKey: string, token: Buffer, prepared: PreparedEntry | undefined, name: string): Promise<void> {
    if (this.held.get(redisKey) === token) this.held.delete(redisKey);
    // Closed meanwhile: the lease was given back by releaseHeld(); the value is not stored.
    if (this.closing) return;
    const { store, listener } = this.parts;
    try {
      await store.completeLease(redisKey, token, prepared?.bytes, prepared?.pxMs ?? 0, listener.channel);
    } catch (err) {
      this.parts.events.failed(name, 'lease', redisKey, err);
      // Refused or timed out: the lease would keep every waiter waiting until lockTtl. Given back by
      // token once Redis answers, so a value a timed-out completion did store stays.
      this.parts.releaseLater(redisKey, token, err);
    }
  }

  /** Gives a lease back without a value (waiters elsewhere run the method at once). Never rejects. */
  async giveBack(redisKey: string, token: Buffer): Promise<void> {
    const { store, listener, releaseLater } = this.parts;
    await store
      .completeLease(redisKey, token, undefined, 0, listener.channel)
      .catch(() => releaseLater(redisKey, token));
  }

  /** Gives back every lease this process holds (the application is closing). Never rejects. */
  async releaseHeld(): Promise<void> {
    this.closing = true;
    const held = [...this.held];
    this.held.clear();
    const { store, listener } = this.parts;
    await Promise.all(
      held.map(([key, token]) =>
        store.completeLease(key, token, undefined, 0, listener.channel).catch(() => undefined),
      ),
    );
  }
}
