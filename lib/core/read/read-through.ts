import type { CacheEventPublisher } from '../../events/cache-event-publisher.js';
import type { LeaseWake } from '../../store/lease-waiters.js';
import type { LoadPolicy } from '../../options/resolve-load-options.js';
import { DecodedEntry, newLeaseToken, NOTHING, READ_FAILED, type EntryRead } from '../cache-entry.js';
import { FAILED, type FailOpenStore, type LeaseOutcome } from '../fail-open-store.js';
import type { CachedValue, LoadResult, NotStored, PreparedEntry, WritePolicy } from '../cache-engine.types.js';
import type { Flight } from '../single-flight.js';
import type { EntryReader } from './entry-reader.js';
import { freshnessOf } from './freshness.js';
import type { EarlyAttempt, LeaseSession } from './lease-session.js';
import { fromGrace, LoadRunner, NO_DEADLINE, type MissOutcome, type ReadCall } from './load-runner.js';

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
/**
 * When an entry fresh until `freshUntil` (epoch ms, from `wallNow = Date.now()`) goes stale, as a
 * `performance.now()` time measured from `now` (a `performance.now()` no later than `wallNow` was read:
 * the time comes out no later than the true one). Not `freshUntil - performance.timeOrigin`: the wall
 * clock drifts from the monotonic one as a process ages (NTP slewing, a step), by seconds in a server
 * that runs for days, and the staleness would be that far off.
 */
function staleAtOf(freshUntil: number, wallNow: number, now: number): number {
  return now + (freshUntil - wallNow);
}

/** A lease attempt's answer, with the token it was made with and the wake-up registered before it. */
interface Attempt {
  token: Buffer;
  wake: LeaseWake;
  attempt: LeaseOutcome;
}

/**
 * The read-through of `@Cacheable` and `getOrSet` across every process that shares the Redis: a fresh
 * value answers (XFetch may refresh it early), one within `staleWhileRevalidate` answers while one
 * caller refreshes it, and otherwise one caller across all processes loads under the key's lease while
 * the others wait for its value (docs/lease-protocol.md). It decides who loads; the load runner
 * (load-runner.ts) runs the method, with `grace` and `timeout`. Cache failures go to the source (fail
 * open); the method's own errors reach the caller unless a grace value answers instead.
 */
export class ReadThrough {
  constructor(
    private readonly parts: ReadThroughParts,
    private readonly loads = new LoadRunner(parts),
  ) {}

  run(
    key: string,
    loader: () => Promise<unknown>,
    write: WritePolicy,
    load: LoadPolicy,
    name: string,
    flight: Flight<LoadResult<unknown>>,
    /** The call's start (`performance.now()`). */
    now = performance.now(),
  ): Promise<LoadResult<unknown>> {
    if (write.tagsOf) flight.tagged = true;
    const running = this.parts.running();
    if (!running) return Promise.resolve(this.answer(NOTHING, key, loader, write, load, name, flight));
    const { reader, leases } = running;
    // A second caller while the GET is out, on a key whose last value read here is no longer fresh
    // (or that was never read here), is a stampede's sign: the lease attempt a miss needs goes out
    // right behind the GET rather than a round trip after it (bench/README.md, stampede).
    let early: EarlyAttempt | undefined;
    if ((flight.staleAt ?? 0) <= now && !running.isDown()) {
      flight.joined = () => {
        flight.joined = undefined;
        if (this.parts.running() === running) early = leases.attemptEarly(key, load.lockTtlMs);
      };
    }
    // One `.then` on the GET itself, no async frames, nothing allocated for a plain hit (bench/README.md).
    return running.store.read(key, name, (payload) => {
      flight.joined = undefined;
      if (payload === FAILED) return this.answer(READ_FAILED, key, loader, write, load, name, flight, early);
      const read = reader.decode(key, name, payload);
      if (read instanceof DecodedEntry) {
        // A plain hit, answered in this `.then` (no refresh to start: that is `answer`'s). The wall
        // clock freshness reads anyway places the staleness too: the hit reads no other clock.
        if (load.earlyRefreshBeta === 0) {
          const wallNow = Date.now();
          if (freshnessOf(read, load, wallNow) === 'fresh') {
            flight.staleAt = staleAtOf(read.freshUntil, wallNow, now);
            early?.drop();
            return { value: read.value, outcome: 'hit', fresh: read };
          }
        }
        return this.answer(
          { entry: read, leased: false, failed: false },
          key,
          loader,
          write,
          load,
          name,
          flight,
          early,
        );
      }
      if (read instanceof Promise)
        return read.then((seen) => this.answer(seen, key, loader, write, load, name, flight, early));
      return this.answer(read, key, loader, write, load, name, flight, early);
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
    early?: EarlyAttempt,
  ): LoadResult<unknown> | Promise<LoadResult<unknown>> {
    // During an outage the read already failed (and was counted): straight to the source, no lease.
    const call: ReadCall = { key, loader, write, load, name };
    if (seen.failed && this.parts.running()?.isDown() !== false) {
      early?.drop();
      return this.loads.run(call, false).then((value) => ({ value, outcome: 'error' as const }));
    }
    const served = this.serve(call, seen.entry, true);
    if (served?.fresh) {
      const at = performance.now();
      flight.staleAt = staleAtOf(served.fresh.freshUntil, Date.now(), at);
    }
    // The early attempt is the one a miss sends: of use only when the read saw nothing and did not fail.
    if (early && (served || seen.entry || seen.failed)) {
      early.drop();
      early = undefined;
    }
    return served ?? this.loadWithLease(call, flight, seen.entry, seen.failed ? 'error' : 'miss', early);
  }

  /**
   * The answer an entry gives without loading: fresh (a hit), or within `staleWhileRevalidate` (stale,
   * with a background refresh when `refresh`). Undefined when the caller must load.
   */
  private serve(call: ReadCall, entry: CachedValue | undefined, refresh: boolean): LoadResult<unknown> | undefined {
    switch (freshnessOf(entry, call.load)) {
      case 'refresh':
        if (refresh) this.loads.refreshInBackground(call, entry!);
        return { value: entry!.value, outcome: 'hit', fresh: entry };
      case 'fresh':
        return { value: entry!.value, outcome: 'hit', fresh: entry };
      case 'stale':
        if (refresh) this.loads.refreshInBackground(call, entry!);
        return { value: entry!.value, outcome: 'stale' };
      default:
        return undefined;
    }
  }

  /**
   * Takes the lease and loads, or waits for the holder's value. `entry` is what the caller last saw
   * (expired, or undefined): the lease is taken only on that version of the key. `early`: the first
   * attempt, already sent (see `run`).
   */
  private async loadWithLease(
    call: ReadCall,
    flight: Flight<LoadResult<unknown>>,
    entry: CachedValue | undefined,
    outcome: MissOutcome,
    early: EarlyAttempt | undefined,
  ): Promise<LoadResult<unknown>> {
    const { key, load, name } = call;
    // Stopped while the read ran (the app is closing): no lease, no write.
    const running = this.parts.running();
    if (!running) {
      early?.drop();
      return this.loads.withoutWriting(call, undefined, NO_DEADLINE, outcome);
    }
    const { leases, reader } = running;
    const started = performance.now();
    const lockDeadline = started + load.lockWaitMs;
    let fallback = this.withinGrace(call, entry);
    // `timeout` counts from the call's start, once a grace value is known (it may appear on a re-read).
    const graceDeadlineOf = () => (fallback && load.timeoutMs !== undefined ? started + load.timeoutMs : NO_DEADLINE);
    let graceDeadline = graceDeadlineOf();
    // How long this caller has waited for the holder so far (undefined: it has not waited). One wait
    // is recorded once it ends, however many wake-ups it took: with the holder's value, with the
    // method run here, or out of time. One cut short by a cache failure or the app closing is not.
    let waitedMs: number | undefined;
    const waitEnded = (result: 'value' | 'empty' | 'timeout') => {
      if (waitedMs !== undefined) this.parts.events.leaseWaited(name, key, waitedMs, result);
      waitedMs = undefined;
    };
    for (;;) {
      // Closed while waiting (the client may be the application's own and still answer): no lease, no write.
      if (!this.parts.running()) {
        early?.drop();
        return this.loads.withoutWriting(call, fallback, graceDeadline, outcome);
      }
      const { token, wake, attempt } = await this.attempt(leases, call, entry, early);
      early = undefined;
      if (attempt.status === 'failed') {
        wake.cancel();
        return this.loads.withoutWriting(call, fallback, graceDeadline, 'error');
      }
      if (attempt.status === 'foreign') {
        wake.cancel();
        // Counted once per call: a read that already failed on it (an error reply) was counted.
        if (outcome !== 'error') running.foreignKey(key, name);
        return this.loads.withoutWriting(call, fallback, graceDeadline, 'error');
      }
      if (attempt.status === 'acquired') {
        wake.cancel();
        // After a wait: the holder's lease ended without a value (it gave it back, or it ran out).
        waitEnded('empty');
        // Taken while the app closes, after its leases were given back: it went back too.
        if (!(await leases.hold(key, token))) return this.loads.withoutWriting(call, fallback, graceDeadline, outcome);
        return this.loads.asHolder(running, call, token, flight, fallback, graceDeadline, outcome);
      }
      if (attempt.status === 'held') {
        if (!load.lock) {
          wake.cancel();
          return this.loads.withoutWriting(call, fallback, graceDeadline, outcome);
        }
        const waitStarted = performance.now();
        const left = Math.min(lockDeadline, graceDeadline) - waitStarted;
        const bound = leases.listening ? Infinity : POLL_WITHOUT_SUBSCRIBER_MS;
        // Woken by the release, or when the lease the holder took runs out (it may have died).
        const woken = left > 0 ? await wake.wait(Math.min(left, attempt.remainingMs + 1, bound)) : 'timeout';
        wake.cancel();
        waitedMs = (waitedMs ?? 0) + (performance.now() - waitStarted);
        // The holder stored nothing (its method threw, or `unless`/`cacheNull` kept the result out):
        // every waiter runs the method now, rather than one process after another taking the lease.
        if (woken === 'empty') {
          waitEnded('empty');
          return this.loads.withoutWriting(call, fallback, graceDeadline, outcome);
        }
        // The release carried the holder's value: it answers as the GET below would, one round trip sooner.
        const released = woken === 'stored' ? await this.fromRelease(reader, call, wake, attempt.holder) : undefined;
        if (released) {
          waitEnded('value');
          return released;
        }
      } else {
        wake.cancel();
      }
      const again = await reader.read(key, name);
      if (again.failed && running.isDown()) return this.loads.withoutWriting(call, fallback, graceDeadline, 'error');
      // The holder's value (a hit: the method did not run for this caller), or a stale one being refreshed.
      const served = this.serve(call, again.entry, attempt.status === 'changed');
      if (served) {
        waitEnded('value');
        return served;
      }
      entry = again.entry;
      fallback = this.withinGrace(call, entry) ?? fallback;
      graceDeadline = graceDeadlineOf();
      const now = performance.now();
      if (now >= graceDeadline && fallback) {
        waitEnded('timeout');
        return fromGrace(fallback);
      }
      if (now >= lockDeadline) {
        waitEnded('timeout');
        return this.loads.withoutWriting(call, fallback, graceDeadline, outcome);
      }
    }
  }

  /**
   * An attempt at the key's lease on what the caller saw, listening first (a release between a
   * 'held' answer and the wait is not missed): the early one when it got an answer, else one sent
   * now (an early attempt that failed is retried here, where a failure is counted).
   */
  private async attempt(
    leases: LeaseSession,
    call: ReadCall,
    entry: CachedValue | undefined,
    early: EarlyAttempt | undefined,
  ): Promise<Attempt> {
    if (early) {
      const attempt = await early.outcome;
      if (attempt.status !== 'failed') return { token: early.token, wake: early.wake, attempt };
      early.wake.cancel();
    }
    const token = newLeaseToken();
    const wake = leases.listen(call.key);
    return {
      token,
      wake,
      attempt: await leases.acquire(call.key, token, call.load.lockTtlMs, entry?.stamp ?? '', call.name),
    };
  }

  /**
   * What the value a release carried answers (lease-waiters.ts): only when it comes from the lease
   * this caller was told holds the key (`holder`, ACQUIRE_LEASE's token), decodes to a value and
   * passes a read's checks (tags, cleared prefixes). A pub/sub message is untrusted input, and only
   * that lease's holder knows its token. The value was the key's when that holder's COMPLETE_LEASE
   * ran, after this caller's call began, so serving it is what a GET right then would have read.
   * Undefined otherwise: the caller reads the key.
   */
  private async fromRelease(
    reader: EntryReader,
    call: ReadCall,
    wake: LeaseWake,
    holder: Buffer | undefined,
  ): Promise<LoadResult<unknown> | undefined> {
    const carried = wake.carried();
    if (carried === undefined || holder === undefined || !carried.holder.equals(holder)) return undefined;
    const read = await reader.decodeCarried(call.key, call.name, carried.entry);
    if (read === undefined) return undefined;
    const entry = read instanceof DecodedEntry ? read : read.failed ? undefined : read.entry;
    return entry === undefined ? undefined : this.serve(call, entry, false);
  }

  /** The fallback `entry` gives when the load fails or is too slow (an entry not served: see `serve`). */
  private withinGrace(call: ReadCall, entry: CachedValue | undefined): CachedValue | undefined {
    return freshnessOf(entry, call.load) === 'grace' ? entry : undefined;
  }
}
