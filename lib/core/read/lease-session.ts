import type { NamespaceSubscription } from '../../store/cache-store.js';
import type { LeaseWake } from '../../store/lease-waiters.js';
import { CommandTimeoutError } from '../../store/redis-cache.store.js';
import { newLeaseToken } from '../cache-entry.js';
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
   * Sends the attempt a miss sends (nothing seen, so no stamp) before the read that decides whether
   * one is needed has answered, listening first as every attempt does (ReadThrough.run). Uncounted:
   * the caller falls back to `acquire` (which counts) if it fails, and a lease a timed-out attempt
   * may still take is given back once the client is done with it.
   */
  attemptEarly(redisKey: string, ttlMs: number): EarlyAttempt {
    const token = newLeaseToken();
    const wake = this.listen(redisKey);
    const { store } = this.parts.store;
    // The executor turns a synchronous throw into a rejection: the joining caller never sees it.
    const outcome = new Promise<LeaseOutcome>((resolve) =>
      resolve(store.acquireLease(redisKey, token, ttlMs, '')),
    ).catch((err: unknown) => {
      // As FailOpenStore.acquireLease: only a command that timed out may still take the lease.
      if (err instanceof CommandTimeoutError) void err.settled.then(() => this.giveBack(redisKey, token));
      return EARLY_FAILED;
    });
    return new EarlyAttempt(this, redisKey, token, wake, outcome);
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

const EARLY_FAILED: LeaseOutcome = Object.freeze({ status: 'failed' });

/** A lease attempt sent before the caller knew it needed one (LeaseSession.attemptEarly): used, or dropped. */
export class EarlyAttempt {
  constructor(
    private readonly session: LeaseSession,
    private readonly redisKey: string,
    readonly token: Buffer,
    readonly wake: LeaseWake,
    readonly outcome: Promise<LeaseOutcome>,
  ) {}

  /**
   * Not needed after all (the read answered): stops listening, and gives back a lease it took. It
   * can take one only when the value the read saw went in between (an attempt that saw nothing
   * carries no stamp, so a value it finds answers 'changed').
   */
  drop(): void {
    this.wake.cancel();
    void this.outcome.then((attempt) => {
      if (attempt.status === 'acquired') return this.session.giveBack(this.redisKey, this.token);
    });
  }
}
