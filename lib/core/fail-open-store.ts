import type { CacheErrorOperation } from '../events/cache-events.js';
import type { CacheEventPublisher } from '../events/cache-event-publisher.js';
import type { CacheStore, LeaseAttempt } from '../store/cache-store.js';
import { CommandTimeoutError } from '../store/redis-cache.store.js';

/** What a command that failed answers: the caller goes on without the cache. */
export const FAILED: unique symbol = Symbol('nestjs-redis-cache:failed');
export type Failed = typeof FAILED;

/** What an attempt to take a lease found; `failed`: Redis failed, load without writing. */
export type LeaseOutcome = LeaseAttempt | { status: 'failed' };
const LEASE_FAILED: LeaseOutcome = Object.freeze({ status: 'failed' });

/** What the boundary hands on for later, so a failure leaves nothing behind once Redis answers. */
export interface FailureFollowUps {
  /** A lease a failed command may hold: given back by its token once Redis answers (after `failure` settled). */
  releaseLater(redisKey: string, token: Buffer, failure?: unknown): void;
}

/**
 * The cache's one fail-open boundary: the commands the pipeline sends go through here. A failure is
 * never thrown at the caller; it is counted once under the caller's name (`stats().errors`, the
 * `error` event) and answered with the operation's fallback — FAILED, a lease attempt of status
 * `failed`, undefined — with what must happen once Redis answers again (a lease given back, a key
 * deleted) handed on. What each fallback then means for the call (a miss, a load without writing, a
 * write that deletes the old value later) is the caller's, named at each use.
 */
export class FailOpenStore {
  /** Set when the cache stops: commands still in flight fail on a closing connection, which is no error of Redis. */
  private stopped = false;

  constructor(
    readonly store: CacheStore,
    private readonly events: CacheEventPublisher,
    private readonly followUps: FailureFollowUps,
  ) {}

  /**
   * GET `redisKey` and hand its bytes (null when absent, FAILED) to `then`, in the one `.then` on the
   * command: every hit's path, where a second promise step costs measurably at high concurrency.
   */
  read<R>(redisKey: string, name: string, then: (payload: Buffer | null | Failed) => R): Promise<Awaited<R>> {
    return this.store
      .get(redisKey)
      .then(then, (err: unknown) => then(this.failed(name, 'read', redisKey, err))) as Promise<Awaited<R>>;
  }

  /**
   * `read` for many keys at once (MGET per slot: CacheStore.getMany): their bytes, in order, or FAILED
   * for all of them when the read failed — counted once for the call, not once per key.
   */
  readMany<R>(
    redisKeys: readonly string[],
    name: string,
    then: (payloads: Array<Buffer | null> | Failed) => R,
  ): Promise<Awaited<R>> {
    return this.store
      .getMany(redisKeys)
      .then(then, (err: unknown) => then(this.failed(name, 'read', redisKeys[0], err))) as Promise<Awaited<R>>;
  }

  /**
   * Runs `work` (commands of the store, or of a part built on it); its failure is counted under
   * (`name`, `operation`, `redisKey`), handed to `onFailure` (a replay once Redis answers), and answered
   * with FAILED.
   */
  async attempt<T>(
    name: string,
    operation: CacheErrorOperation,
    redisKey: string | undefined,
    work: () => Promise<T>,
    onFailure?: (err: unknown) => void,
  ): Promise<T | Failed> {
    try {
      return await work();
    } catch (err) {
      onFailure?.(err);
      return this.failed(name, operation, redisKey, err);
    }
  }

  /** Runs `work`, answering undefined when it fails, uncounted: its caller counts what the missing answer costs. */
  async quietly<T>(work: () => Promise<T>): Promise<T | undefined> {
    try {
      return await work();
    } catch {
      return undefined;
    }
  }

  /** Takes the lease of `redisKey` on what the caller saw; a timed-out attempt may hold it: given back later. */
  async acquireLease(
    redisKey: string,
    token: Buffer,
    ttlMs: number,
    stamp: Buffer | '',
    name: string,
  ): Promise<LeaseOutcome> {
    try {
      return await this.store.acquireLease(redisKey, token, ttlMs, stamp);
    } catch (err) {
      if (err instanceof CommandTimeoutError) this.followUps.releaseLater(redisKey, token, err);
      this.failed(name, 'lease', redisKey, err);
      return LEASE_FAILED;
    }
  }

  /**
   * Replaces the key by `entry` if it still carries `token` (or only gives the lease back), waking the
   * waiters. Refused or timed out, the lease would keep every waiter waiting until lockTtl: it is given
   * back by token once Redis answers, so a value a timed-out completion did store stays.
   */
  async completeLease(
    redisKey: string,
    token: Buffer,
    entry: Buffer | undefined,
    ttlMs: number,
    channel: string,
    name: string,
  ): Promise<void> {
    try {
      await this.store.completeLease(redisKey, token, entry, ttlMs, channel);
    } catch (err) {
      this.failed(name, 'lease', redisKey, err);
      this.followUps.releaseLater(redisKey, token, err);
    }
  }

  /** Gives a lease back without a value; uncounted (no call is served by it), given back later if refused. */
  async giveBack(redisKey: string, token: Buffer, channel: string): Promise<void> {
    await this.store
      .completeLease(redisKey, token, undefined, 0, channel)
      .catch(() => this.followUps.releaseLater(redisKey, token));
  }

  /** The cache stopped: what fails from now on is answered as before, uncounted. */
  stop(): void {
    this.stopped = true;
  }

  private failed(name: string, operation: CacheErrorOperation, redisKey: string | undefined, err: unknown): Failed {
    if (!this.stopped) this.events.failed(name, operation, redisKey, err);
    return FAILED;
  }
}
