import type { CacheEventPublisher } from '../../events/cache-event-publisher.js';
import type { LoadPolicy } from '../../options/resolve-load-options.js';
import { DecodedEntry, newLeaseToken, NOTHING, READ_FAILED, type EntryRead } from '../cache-entry.js';
import { FAILED, type FailOpenStore } from '../fail-open-store.js';
import type { CachedValue, LoadResult, NotStored, PreparedEntry, WritePolicy } from '../cache-engine.types.js';
import type { Flight } from '../single-flight.js';
import type { EntryReader } from './entry-reader.js';
import { freshnessOf } from './freshness.js';
import type { LeaseSession } from './lease-session.js';

/** What a read-through needs of the running cache. */
export interface RunningReads {
  store: FailOpenStore;
  reader: EntryReader;
  leases: LeaseSession;
  /** True during an outage (reads fail at once): no point taking leases or writing. */
  isDown(): boolean;
  /** The epoch a load records, taken before the method runs (EntryWriter). */
  loadEpoch(redisKey: string, write: WritePolicy): number | Promise<number | undefined>;
  /** The entry to store for a loaded value, or why none (EntryWriter). */
  prepare(
    value: unknown,
    write: WritePolicy,
    name: string,
    loadMs: number,
    epoch: number | undefined,
  ): Promise<PreparedEntry | NotStored>;
  /** A key holding something the cache did not write: counted, logged once. */
  foreignKey(redisKey: string, name: string): void;
}

/** The read-through's parts: what it reports to, and the running cache (undefined once stopped). */
export interface ReadThroughParts {
  events: CacheEventPublisher;
  warnOnce(name: string, topic: string, message: string, err: unknown): void;
  running(): RunningReads | undefined;
}

/** While the release subscriber is down, waiters re-read this often instead of waiting for a message. */
const POLL_WITHOUT_SUBSCRIBER_MS = 50;

type MissOutcome = 'miss' | 'error';

/** One read-through call: its key, its method and its options. */
interface Call {
  key: string;
  loader: () => Promise<unknown>;
  write: WritePolicy;
  load: LoadPolicy;
  name: string;
}

/**
 * The read-through of `@Cacheable` and `getOrSet` across every process that shares the Redis: a fresh
 * value answers (XFetch may refresh it early), one within `staleWhileRevalidate` answers while one
 * caller refreshes it, and otherwise one caller across all processes loads under the key's lease while
 * the others wait for its value (docs/lease-protocol.md). A value within `grace` answers when the method
 * throws or passes `timeout`. Cache failures go to the source (fail open); the method's own errors
 * reach the caller unless a grace value answers instead.
 */
export class ReadThrough {
  /** Keys this process is refreshing in the background: one refresh per key at a time. */
  private readonly refreshing = new Set<string>();

  constructor(private readonly parts: ReadThroughParts) {}

  run(
    key: string,
    loader: () => Promise<unknown>,
    write: WritePolicy,
    load: LoadPolicy,
    name: string,
    flight: Flight<LoadResult<unknown>>,
  ): Promise<LoadResult<unknown>> {
    if (write.tagsOf) flight.tagged = true;
    const running = this.parts.running();
    if (!running) return Promise.resolve(this.answer(NOTHING, key, loader, write, load, name, flight));
    // One `.then` on the GET itself, no async frames, nothing allocated for a plain hit (bench/README.md).
    const { reader } = running;
    return running.store.read(key, name, (payload) => {
      if (payload === FAILED) return this.answer(READ_FAILED, key, loader, write, load, name, flight);
      const read = reader.decode(key, name, payload);
      if (read instanceof DecodedEntry) {
        // A plain hit, answered in this `.then` (no refresh to start: that is `answer`'s).
        if (load.earlyRefreshBeta === 0 && freshnessOf(read, load) === 'fresh') {
          return { value: read.value, outcome: 'hit', fresh: read };
        }
        return this.answer({ entry: read, leased: false, failed: false }, key, loader, write, load, name, flight);
      }
      if (read instanceof Promise)
        return read.then((seen) => this.answer(seen, key, loader, write, load, name, flight));
      return this.answer(read, key, loader, write, load, name, flight);
    });
  }

  /** Everything but a plain hit: early refresh, stale serving, the lease, the outage path. */
  private answer(
    seen: EntryRead,
    key: string,
    loader: () => Promise<unknown>,
    write: WritePolicy,
    load: LoadPolicy,
    name: string,
    flight: Flight<LoadResult<unknown>>,
  ): LoadResult<unknown> | Promise<LoadResult<unknown>> {
    // During an outage the read already failed (and was counted): straight to the source, no lease.
    const call: Call = { key, loader, write, load, name };
    if (seen.failed && this.parts.running()?.isDown() !== false) {
      return this.runLoader(call, false).then((value) => ({ value, outcome: 'error' as const }));
    }
    return (
      this.serve(call, seen.entry, true) ?? this.loadWithLease(call, flight, seen.entry, seen.failed ? 'error' : 'miss')
    );
  }

  /**
   * The answer an entry gives without loading: fresh (a hit), or within `staleWhileRevalidate` (stale,
   * with a background refresh when `refresh`). Undefined when the caller must load.
   */
  private serve(call: Call, entry: CachedValue | undefined, refresh: boolean): LoadResult<unknown> | undefined {
    switch (freshnessOf(entry, call.load)) {
      case 'refresh':
        if (refresh) this.refreshInBackground(call, entry!);
        return { value: entry!.value, outcome: 'hit', fresh: entry };
      case 'fresh':
        return { value: entry!.value, outcome: 'hit', fresh: entry };
      case 'stale':
        if (refresh) this.refreshInBackground(call, entry!);
        return { value: entry!.value, outcome: 'stale' };
      default:
        return undefined;
    }
  }

  /**
   * Takes the lease and loads, or waits for the holder's value. `entry` is what the caller last saw
   * (expired, or undefined): the lease is taken only on that version of the key.
   */
  private async loadWithLease(
    call: Call,
    flight: Flight<LoadResult<unknown>>,
    entry: CachedValue | undefined,
    outcome: MissOutcome,
  ): Promise<LoadResult<unknown>> {
    const { key, load, name } = call;
    // Stopped while the read ran (the app is closing): no lease, no write.
    const running = this.parts.running();
    if (!running) return this.loadWithoutWriting(call, undefined, Infinity, outcome);
    const { leases, reader } = running;
    const started = performance.now();
    const lockDeadline = started + load.lockWaitMs;
    let fallback = this.withinGrace(call, entry);
    // `timeout` counts from the call's start, once a grace value is known (it may appear on a re-read).
    const graceDeadlineOf = () => (fallback && load.timeoutMs !== undefined ? started + load.timeoutMs : Infinity);
    let graceDeadline = graceDeadlineOf();
    for (;;) {
      // Closed while waiting (the client may be the application's own and still answer): no lease, no write.
      if (!this.parts.running()) return this.loadWithoutWriting(call, fallback, graceDeadline, outcome);
      const token = newLeaseToken();
      // Listening before the attempt: a release between a 'held' answer and the wait is not missed.
      const wake = leases.listen(key);
      const attempt = await leases.acquire(key, token, load.lockTtlMs, entry?.stamp ?? '', name);
      if (attempt.status === 'failed') {
        wake.cancel();
        return this.loadWithoutWriting(call, fallback, graceDeadline, 'error');
      }
      if (attempt.status === 'foreign') {
        wake.cancel();
        // Counted once per call: a read that already failed on it (an error reply) was counted.
        if (outcome !== 'error') running.foreignKey(key, name);
        return this.loadWithoutWriting(call, fallback, graceDeadline, 'error');
      }
      if (attempt.status === 'acquired') {
        wake.cancel();
        // Taken while the app closes, after its leases were given back: it went back too.
        if (!(await leases.hold(key, token))) return this.loadWithoutWriting(call, fallback, graceDeadline, outcome);
        return this.loadAsHolder(running, call, token, flight, fallback, graceDeadline, outcome);
      }
      if (attempt.status === 'held') {
        if (!load.lock) {
          wake.cancel();
          return this.loadWithoutWriting(call, fallback, graceDeadline, outcome);
        }
        const waitStarted = performance.now();
        const left = Math.min(lockDeadline, graceDeadline) - waitStarted;
        const bound = leases.listening ? Infinity : POLL_WITHOUT_SUBSCRIBER_MS;
        // Woken by the release, or when the lease the holder took runs out (it may have died).
        const woken = left > 0 ? await wake.wait(Math.min(left, attempt.remainingMs + 1, bound)) : 'timeout';
        wake.cancel();
        const waited = performance.now();
        this.parts.events.leaseWaited(
          name,
          key,
          waited - waitStarted,
          woken === 'empty' ? 'empty' : waited >= lockDeadline ? 'timeout' : 'value',
        );
        // The holder stored nothing (its method threw, or `unless`/`cacheNull` kept the result out):
        // every waiter runs the method now, rather than one process after another taking the lease.
        if (woken === 'empty') return this.loadWithoutWriting(call, fallback, graceDeadline, outcome);
      } else {
        wake.cancel();
      }
      const again = await reader.read(key, name);
      if (again.failed && running.isDown()) return this.loadWithoutWriting(call, fallback, graceDeadline, 'error');
      // The holder's value (a hit: the method did not run for this caller), or a stale one being refreshed.
      const served = this.serve(call, again.entry, attempt.status === 'changed');
      if (served) return served;
      entry = again.entry;
      fallback = this.withinGrace(call, entry) ?? fallback;
      graceDeadline = graceDeadlineOf();
      const now = performance.now();
      if (now >= graceDeadline && fallback) return fromGrace(fallback);
      if (now >= lockDeadline) return this.loadWithoutWriting(call, fallback, graceDeadline, outcome);
    }
  }

  /**
   * The lease holder's load: runs the method, writes its value if the lease still holds, releases
   * and wakes the waiters. With a grace value and `timeout`, answers with that value when the method
   * is too slow and lets the load finish in the background.
   */
  private loadAsHolder(
    running: RunningReads,
    call: Call,
    token: Buffer,
    flight: Flight<LoadResult<unknown>>,
    fallback: CachedValue | undefined,
    graceDeadline: number,
    outcome: MissOutcome,
  ): Promise<LoadResult<unknown>> {
    // Past the deadline the load goes on as a background refresh: its value is still stored.
    return this.valueOrFallback(
      call,
      this.loadAndComplete(running, call, token, flight),
      fallback,
      graceDeadline,
      outcome,
      true,
    );
  }

  /**
   * The method's value; or, when a grace value exists, that value if the method throws or is still
   * running at `graceDeadline` (a `performance.now()` time; Infinity for none). A load left running
   * never rejects unhandled: as the holder's it counts as a refresh (and a failed one if it throws).
   */
  private async valueOrFallback(
    call: Call,
    loading: Promise<unknown>,
    fallback: CachedValue | undefined,
    graceDeadline: number,
    outcome: MissOutcome,
    holder: boolean,
  ): Promise<LoadResult<unknown>> {
    try {
      if (!fallback || graceDeadline === Infinity) return { value: await loading, outcome };
      const raced = await beforeTimeout(loading, Math.max(0, graceDeadline - performance.now()));
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
    call: Call,
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
      value = await this.runLoader(call, background);
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

  /** Runs the method without a lease (lock off and held, the wait ran out, or the cache failed): nothing is written. */
  private loadWithoutWriting(
    call: Call,
    fallback: CachedValue | undefined,
    graceDeadline: number,
    outcome: MissOutcome,
  ): Promise<LoadResult<unknown>> {
    return this.valueOrFallback(call, this.runLoader(call, false), fallback, graceDeadline, outcome, false);
  }

  /**
   * Refreshes a value that is still served (stale-while-revalidate, early refresh): at most one
   * refresh per key in this process, and only the caller that takes the lease across processes runs
   * the method. Never rejects; a failing method is counted in `refreshFailures` and logged once.
   */
  private refreshInBackground(call: Call, entry: CachedValue): void {
    if (this.refreshing.has(call.key)) return;
    this.refreshing.add(call.key);
    void this.refresh(call, entry).finally(() => this.refreshing.delete(call.key));
  }

  private async refresh(call: Call, entry: CachedValue): Promise<void> {
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
  private refreshFailed(call: Call, err: unknown): void {
    this.parts.events.refreshed(call.name, true);
    this.parts.warnOnce(call.name, 'refresh', `${call.name}: a background refresh failed; the old value stays`, err);
  }

  /**
   * Runs the method (or loader) for the cache: every load goes through here, so it is announced
   * (`load:start` / `load:end`) only while someone listens, and otherwise costs nothing more.
   */
  private runLoader(call: Call, background: boolean): Promise<unknown> {
    const { events } = this.parts;
    if (!events.loadsObserved) return call.loader();
    const started = performance.now();
    events.loadStarted(call.name, call.key, background);
    return call.loader().then(
      (value) => {
        events.loadEnded(call.name, call.key, background, performance.now() - started, false);
        return value;
      },
      (err: unknown) => {
        events.loadEnded(call.name, call.key, background, performance.now() - started, true);
        throw err;
      },
    );
  }

  /** The fallback `entry` gives when the load fails or is too slow (an entry not served: see `serve`). */
  private withinGrace(call: Call, entry: CachedValue | undefined): CachedValue | undefined {
    return freshnessOf(entry, call.load) === 'grace' ? entry : undefined;
  }
}

/** A caller answered by a grace value (counted per caller in `fallbacks`). */
function fromGrace(fallback: CachedValue): LoadResult<unknown> {
  return { value: fallback.value, outcome: 'stale', fallback: true };
}

const TIMED_OUT: unique symbol = Symbol('timed-out');

/** `promise`'s value, or TIMED_OUT after `ms` (the promise keeps running; its rejection is the caller's to handle). */
async function beforeTimeout<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
