import { newLeaseToken } from '../cache-entry.js';
import type { CachedValue, LoadResult } from '../cache-engine.types.js';
import type { WritePolicy } from '../cache-engine.types.js';
import type { LoadPolicy } from '../../options/resolve-load-options.js';
import type { Flight } from '../single-flight.js';
import { within } from '../within.js';
import type { ReadThroughParts, RunningReads } from './read-through.js';

/** One read-through call: its key, its method and its options. */
export interface ReadCall {
  key: string;
  loader: () => Promise<unknown>;
  write: WritePolicy;
  load: LoadPolicy;
  name: string;
}

/** How a call that loads is counted when it gets the method's value: a miss, or an error (the cache failed). */
export type MissOutcome = 'miss' | 'error';

/** No grace deadline: the caller waits for the method. */
export const NO_DEADLINE = Infinity;

/**
 * Runs the method (or loader) for the read-through, once the lease loop decided who loads
 * (read-through.ts): as the lease holder (its value written, the lease completed), without writing
 * (no lease), or as a background refresh of a value still served. It owns what happens around a
 * run: `grace` and `timeout` (a kept value answers when the method throws or is too slow, and the
 * load goes on in the background), one background refresh per key in this process, and the
 * `load:start`/`load:end` events.
 */
export class LoadRunner {
  /** Keys this process is refreshing in the background: one refresh per key at a time. */
  private readonly refreshing = new Set<string>();

  constructor(private readonly parts: ReadThroughParts) {}

  /**
   * The lease holder's load: runs the method, writes its value if the lease still holds, releases
   * and wakes the waiters. With a grace value and `timeout`, answers with that value when the method
   * is too slow and lets the load finish in the background (its value is still stored).
   */
  asHolder(
    running: RunningReads,
    call: ReadCall,
    token: Buffer,
    flight: Flight<LoadResult<unknown>>,
    fallback: CachedValue | undefined,
    graceDeadline: number,
    outcome: MissOutcome,
  ): Promise<LoadResult<unknown>> {
    const loading = this.loadAndComplete(running, call, token, flight);
    return this.valueOrFallback(call, loading, fallback, graceDeadline, outcome, true);
  }

  /** Runs the method without a lease (lock off and held, the wait ran out, or the cache failed): nothing is written. */
  withoutWriting(
    call: ReadCall,
    fallback: CachedValue | undefined,
    graceDeadline: number,
    outcome: MissOutcome,
  ): Promise<LoadResult<unknown>> {
    return this.valueOrFallback(call, this.run(call, false), fallback, graceDeadline, outcome, false);
  }

  /**
   * Refreshes a value that is still served (stale-while-revalidate, early refresh): at most one
   * refresh per key in this process, and only the caller that takes the lease across processes runs
   * the method. Never rejects; a failing method is counted in `refreshFailures` and logged once.
   */
  refreshInBackground(call: ReadCall, entry: CachedValue): void {
    if (this.refreshing.has(call.key)) return;
    this.refreshing.add(call.key);
    void this.refresh(call, entry).finally(() => this.refreshing.delete(call.key));
  }

  /**
   * Runs the method (or loader) for the cache: every load goes through here, announced on the
   * `load:start`/`load:end` channels only while someone listens (CacheEventPublisher.load).
   */
  run(call: ReadCall, background: boolean): Promise<unknown> {
    return this.parts.events.load(call.name, call.key, background, call.loader);
  }

  /**
   * The method's value; or, when a grace value exists, that value if the method throws or is still
   * running at `graceDeadline` (a `performance.now()` time; NO_DEADLINE for none). A load left running
   * never rejects unhandled: as the holder's it counts as a refresh (and a failed one if it throws).
   */
  private async valueOrFallback(
    call: ReadCall,
    loading: Promise<unknown>,
    fallback: CachedValue | undefined,
    graceDeadline: number,
    outcome: MissOutcome,
    holder: boolean,
  ): Promise<LoadResult<unknown>> {
    try {
      if (!fallback || graceDeadline === NO_DEADLINE) return { value: await loading, outcome };
      const raced = await within(loading, graceDeadline - performance.now(), TIMED_OUT);
      if (raced !== TIMED_OUT) return { value: raced, outcome };
      if (holder) this.parts.events.refreshed(call.name);
      loading.catch((err: unknown) => holder && this.refreshFailed(call, err));
      return fromGrace(fallback);
    } catch (err) {
      if (fallback) return fromGrace(fallback);
      throw err;
    }
  }

  /** Runs the method as the lease holder; resolves once its value is written (or dropped) and the lease released. */
  private async loadAndComplete(
    running: RunningReads,
    call: ReadCall,
    token: Buffer,
    flight: Flight<LoadResult<unknown>>,
    background = false,
  ): Promise<unknown> {
    const { leases } = running;
    // Taken before the source is read: the value is stored with it (see EntryWriter.loadEpoch).
    const epoch = await running.loadEpoch(call.key, call.write);
    const started = performance.now();
    let value: unknown;
    try {
      value = await this.run(call, background);
    } catch (err) {
      await leases.complete(call.key, token, undefined, call.name);
      throw err;
    }
    let prepared;
    try {
      // A write or eviction of this key in this process while the method ran: its value may predate it.
      prepared = flight.superseded
        ? 'skip'
        : await running.prepare(value, call.write, call.name, performance.now() - started, epoch);
    } catch (err) {
      // Never expected (prepare fails open), but a lease must not outlive a failure: give it back now.
      await leases.complete(call.key, token, undefined, call.name);
      throw err;
    }
    await leases.complete(call.key, token, typeof prepared === 'string' ? undefined : prepared, call.name);
    return value;
  }

  private async refresh(call: ReadCall, entry: CachedValue): Promise<void> {
    const running = this.parts.running();
    if (!running) return;
    const { leases } = running;
    const token = newLeaseToken();
    const attempt = await leases.acquire(call.key, token, call.load.lockTtlMs, entry.stamp, call.name);
    if (attempt.status !== 'acquired' || !(await leases.hold(call.key, token))) return;
    this.parts.events.refreshed(call.name);
    try {
      await this.loadAndComplete(running, call, token, { promise: undefined, superseded: false }, true);
    } catch (err) {
      this.refreshFailed(call, err);
    }
  }

  /** A load that went on in the background failed: counted in `refreshFailures`, logged once per name. */
  private refreshFailed(call: ReadCall, err: unknown): void {
    this.parts.events.refreshed(call.name, true);
    this.parts.warnOnce(call.name, 'refresh', `${call.name}: a background refresh failed; the old value stays`, err);
  }
}

/** A caller answered by a grace value (counted per caller in `fallbacks`). */
export function fromGrace(fallback: CachedValue): LoadResult<unknown> {
  return { value: fallback.value, outcome: 'stale', fallback: true };
}

const TIMED_OUT: unique symbol = Symbol('timed-out');
