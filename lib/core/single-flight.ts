import type { RequestCacheTrace } from '../metrics/cache-metrics.js';

/** One load in flight, as its callers and the cache see it. */
export interface Flight<T> {
  /** The shared work; cleared once it settles (see `run`). */
  promise: Promise<T> | undefined;
  /** Set when a write or eviction of the key happened while the work ran: its result may be stale. */
  superseded: boolean;
  /** The work reads or loads a tagged value: a tag invalidation supersedes it (see `supersedeTagged`). */
  tagged?: boolean;
  /** Set by the work to hear of each caller that joins it while it runs; cleared when it settles. */
  joined?: () => void;
  /**
   * The work's note about the key for the next work on it (the holder is kept, see `run`): the
   * `performance.now()` time from which the last value read is no longer fresh; 0 before any.
   */
  staleAt?: number;
  /**
   * The answer the callers that joined the work from one read site share (GetOrLoadHandler.join): one
   * `.then` for all of them instead of one each. Cleared when the work settles.
   */
  answered?: SharedAnswer;
}

/** What callers joining one work from one site receive, and what each of them is recorded with. */
export interface SharedAnswer {
  /** The site and the answer function the callers share: a caller from another joins the work on its own. */
  readonly site: object;
  readonly answer: unknown;
  readonly promise: Promise<unknown>;
  /** Each joined caller's start (`performance.now()`), recorded once the work settles. */
  readonly starts: number[];
  /** Each joined caller's request trace (in `starts`' order): it is recorded for its own request. */
  readonly traces: (RequestCacheTrace | undefined)[];
}

/** Settled holders kept for reuse before a sweep removes them (see `run`). */
const MAX_IDLE_HOLDERS = 10_000;

/**
 * Coalesces concurrent work on the same key within this process: while a load for a key is running,
 * every other caller for that key awaits the same promise instead of starting its own. A holder lets
 * go of its promise as soon as the work settles, so nothing is cached here — this only shares work
 * in flight.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Flight<T>>();
  /** The Map size at which idle holders are swept; doubles while most holders are busy. */
  private sweepAt = MAX_IDLE_HOLDERS;

  /** The key's work while it runs (to join it); undefined when none does. */
  running(key: string): Flight<T> | undefined {
    const flight = this.inFlight.get(key);
    return flight?.promise ? flight : undefined;
  }

  run(key: string, work: (flight: Flight<T>) => Promise<T>): Promise<T> {
    let flight = this.inFlight.get(key);
    if (flight?.promise) {
      flight.joined?.();
      return flight.promise;
    }
    // A settled holder stays in the Map and is reused by the key's next call. Deleting at the call
    // rate costs twice: the Map is rehashed often, and V8 keeps obsolete tables that can reach the
    // old generation still pointing at settled promises — and so at their decoded values, which then
    // survive every scavenge. Measured in bench/README.md (the hit path).
    if (!flight) {
      if (this.inFlight.size >= this.sweepAt) this.sweep();
      flight = {
        promise: undefined,
        superseded: false,
        tagged: false,
        joined: undefined,
        staleAt: 0,
        answered: undefined,
      };
      this.inFlight.set(key, flight);
    }
    const holder = flight;
    holder.tagged = false;
    const started = work(holder);
    holder.promise = started;
    const forget = () => {
      holder.promise = undefined;
      holder.joined = undefined;
      holder.answered = undefined;
    };
    // Both branches handled: a rejection reaches the callers through `started`, not through this chain.
    started.then(forget, forget);
    return started;
  }

  /** Drops the holders of settled work (rarely: when the Map reaches `sweepAt` keys). */
  private sweep(): void {
    for (const [key, flight] of this.inFlight) if (!flight.promise) this.inFlight.delete(key);
    this.sweepAt = Math.max(MAX_IDLE_HOLDERS, this.inFlight.size * 2);
  }

  /**
   * Detaches the load of `key` (if any), so callers arriving from now on start a fresh load instead of
   * joining one that began before a write. `skipWrite` (a change made in this process) also marks it
   * superseded: it does not store its value. A change heard from another instance only detaches: the
   * load may have begun after it, and the epochs refuse its value if it began before.
   */
  supersede(key: string, skipWrite = true): void {
    const flight = this.inFlight.get(key);
    if (!flight?.promise) return;
    if (skipWrite) flight.superseded = true;
    this.inFlight.delete(key);
  }

  /** `supersede` for every tagged work in flight (its tags are only known once it has loaded). */
  supersedeTagged(skipWrite = true): void {
    for (const [key, flight] of [...this.inFlight]) if (flight.tagged) this.supersede(key, skipWrite);
  }

  /** `supersede` for every key in flight that starts with `prefix`. */
  supersedePrefix(prefix: string, skipWrite = true): void {
    for (const key of [...this.inFlight.keys()]) if (key.startsWith(prefix)) this.supersede(key, skipWrite);
  }
}
