import { RetryTimer } from '../retry-timer.js';

/**
 * How many keys, prefixes, tags and timed-out commands are remembered, each; past it the
 * replay clears the whole namespace instead (in O(1)), which covers every entry they could concern.
 */
export const MAX_PENDING = 10_000;
/** When Redis answers but an invalidation still failed (an error reply: READONLY, OOM), retry this often. */
const RETRY_MS = 1_000;

/** How a replay carries out what was held back (the running cache's own operations). */
export interface Replay {
  /** Deletes keys and tells every instance's in-process tier. */
  deleteKeys(keys: readonly string[]): Promise<unknown>;
  invalidateTags(tags: readonly string[]): Promise<unknown>;
  /** Clears a prefix relative to the namespace (`''`: all of it). */
  clearPrefix(prefix: string): Promise<unknown>;
}

/**
 * Invalidations the cache could not carry out because Redis failed: evictions and writes (the old
 * value stays behind a write that did not land), prefix clears and tag invalidations. They are
 * replayed as soon as Redis answers again (`flush`, on recovery), and retried every second while any
 * remain, so an outage costs misses afterwards, never stale values for a whole TTL. Memory is bounded: past MAX_PENDING keys, prefixes, tags or
 * timed-out commands the replay clears the whole namespace instead (in O(1), a new generation, which
 * invalidates every entry loaded before it, tagged ones included): more misses, still nothing stale.
 * (Leases a failed command may hold are no invalidation: read/lease-returns.ts gives them back.)
 */
export class PendingInvalidations {
  private keys = new Set<string>();
  /** Prefixes (relative to the namespace) whose clear failed. */
  private prefixes = new Set<string>();
  /** Tags whose invalidation failed: invalidated again (with a new epoch) by the replay. */
  private tags = new Set<string>();
  private overflowed = false;
  private flushing = false;
  /** Keys, prefixes and tags taken by the flush running now: still pending until it is done. */
  private inFlight = 0;
  private readonly retry: RetryTimer;
  /** Invalidations waiting for a timed-out command to be done with (see `after`). */
  private awaiting = 0;

  /** `replay`: flushes through the store (the engine's, while it runs). */
  constructor(replay: () => void) {
    this.retry = new RetryTimer(replay, RETRY_MS);
  }

  get size(): number {
    return (
      this.keys.size + this.prefixes.size + this.tags.size + (this.overflowed ? 1 : 0) + this.inFlight + this.awaiting
    );
  }

  addKeys(keys: readonly string[]): void {
    if (!this.overflowed) {
      for (const key of keys) this.keys.add(key);
      if (this.keys.size > MAX_PENDING) this.overflow();
    }
    this.scheduleRetry();
  }

  /** True once the replay will clear the whole namespace (what was held back outgrew its bounds). */
  get overflowing(): boolean {
    return this.overflowed;
  }

  /**
   * Adds an invalidation once `settled` (a timed-out command, done with): replayed before, it could
   * run before the command it undoes. Counted in `size` meanwhile.
   */
  after(settled: Promise<void>, add: () => void): void {
    if (this.overflowed) return this.scheduleRetry();
    if (this.awaiting >= MAX_PENDING) {
      // The clear of everything covers whatever these commands did: a write that lands after it
      // carries an epoch from before it, so it is never served.
      this.overflow();
      return this.scheduleRetry();
    }
    this.awaiting++;
    void settled.then(() => {
      this.awaiting--;
      add();
    });
  }

  /** A prefix (relative to the namespace) whose clear failed. */
  addPrefix(literalPrefix: string): void {
    if (!this.overflowed) {
      this.prefixes.add(literalPrefix);
      if (this.prefixes.size > MAX_PENDING) this.overflow();
    }
    this.scheduleRetry();
  }

  /** Tags whose invalidation failed (past MAX_PENDING, covered by the whole namespace's clear instead). */
  addTags(tags: readonly string[]): void {
    if (!this.overflowed) {
      for (const tag of tags) this.tags.add(tag);
      if (this.tags.size > MAX_PENDING) this.overflow();
    }
    this.scheduleRetry();
  }

  /** Replays everything pending; what fails again stays pending. One flush at a time. */
  async flush(replay: Replay): Promise<void> {
    if (this.flushing || this.size === 0) return;
    this.flushing = true;
    const keys = [...this.keys];
    const prefixes = this.overflowed ? [''] : [...this.prefixes];
    const tags = [...this.tags];
    this.keys = new Set();
    this.prefixes = new Set();
    this.tags = new Set();
    this.overflowed = false;
    this.inFlight = keys.length + prefixes.length + tags.length;
    try {
      if (tags.length > 0) await replay.invalidateTags(tags).catch(() => this.addTags(tags));
      if (keys.length > 0) await replay.deleteKeys(keys).catch(() => this.addKeys(keys));
      for (const prefix of prefixes) await replay.clearPrefix(prefix).catch(() => this.addPrefix(prefix));
    } finally {
      this.flushing = false;
      this.inFlight = 0;
    }
    // Added while this flush ran, or failed again: the retry timer takes it from here.
    this.scheduleRetry();
  }

  /** No more retries (the application is closing). */
  stop(): void {
    this.retry.stop();
  }

  private scheduleRetry(): void {
    if (this.size > 0) this.retry.schedule();
  }

  private overflow(): void {
    this.overflowed = true;
    this.keys.clear();
    this.prefixes.clear();
    this.tags.clear();
  }
}
