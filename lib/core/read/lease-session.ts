import type { NamespaceSubscription } from '../../store/cache-store.js';
import type { LeaseWake } from '../../store/lease-waiters.js';
import type { PreparedEntry } from '../cache-engine.types.js';
import type { FailOpenStore, LeaseOutcome } from '../fail-open-store.js';

/** What a lease session needs of the running cache. */
export interface LeaseSessionParts {
  store: FailOpenStore;
  listener: NamespaceSubscription;
}

/**
 * The leases of one running cache (docs/lease-protocol.md): taking a key's lease, waiting for
 * another holder's release, completing a load (its value written only if the key still carries the
 * lease) and giving leases back. Redis failures are answered by the fail-open boundary
 * (fail-open-store.ts), which gives back by token a lease a failed command may hold. The leases held
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
  acquire(redisKey: string, token: Buffer, ttlMs: number, stamp: Buffer | '', name: string): Promise<LeaseOutcome> {
    return this.parts.store.acquireLease(redisKey, token, ttlMs, stamp, name);
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

  /** Writes `prepared` if the key still carries `token` (or only gives the lease back), and wakes the waiters. */
  async complete(redisKey: string, token: Buffer, prepared: PreparedEntry | undefined, name: string): Promise<void> {
    if (this.held.get(redisKey) === token) this.held.delete(redisKey);
    // Closed meanwhile: the lease was given back by releaseHeld(); the value is not stored.
    if (this.closing) return;
    const { store, listener } = this.parts;
    await store.completeLease(redisKey, token, prepared?.bytes, prepared?.pxMs ?? 0, listener.channel, name);
  }

  /** Gives a lease back without a value (waiters elsewhere run the method at once). Never rejects. */
  giveBack(redisKey: string, token: Buffer): Promise<void> {
    return this.parts.store.giveBack(redisKey, token, this.parts.listener.channel);
  }

  /** Gives back every lease this process holds (the application is closing). Never rejects. */
  async releaseHeld(): Promise<void> {
    this.closing = true;
    const held = [...this.held];
    this.held.clear();
    const { store, listener } = this.parts;
    // Closing: nothing is replayed after this (a lease refused now ends by its lockTtl).
    await Promise.all(
      held.map(([key, token]) =>
        store.quietly(() => store.store.completeLease(key, token, undefined, 0, listener.channel)),
      ),
    );
  }
}
