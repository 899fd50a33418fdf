import type { CacheEventPublisher } from '../../events/cache-event-publisher.js';
import type { CacheCounters } from '../../metrics/cache-counters.js';
import { currentRequestTrace, type RequestCacheTrace } from '../../metrics/cache-metrics.js';
import type { LoadPolicy } from '../../options/resolve-load-options.js';
import type { LoadResult, WritePolicy } from '../cache-engine.types.js';
import { deepFreeze } from '../deep-freeze.js';
import { type InProcessTier } from '../l1/in-process-tier.js';
import { L1_MISS, type L1Slot } from '../l1/l1-slot.js';
import type { ReadThrough } from './read-through.js';
import type { SharedAnswer, SingleFlight } from '../single-flight.js';

/** Where reads of one kind come from (a `@Cacheable` method, a `getOrSet` name): what they share. */
export interface ReadSite {
  /** The metrics name. */
  readonly name: string;
  readonly load: LoadPolicy;
  /** The in-process memory its values go to; undefined: none. */
  readonly l1: L1Slot | undefined;
  /** The name's counters, looked up on the first L1 hit. */
  counters?: CacheCounters;
}

function asIs<T>(result: T): T {
  return result;
}

/** What an L1 lookup needs of its site. */
export type L1Site = Pick<ReadSite, 'name' | 'l1' | 'counters'>;

/** What the handler needs of the running cache: L1's invalidation sequence, and whether to freeze. */
export interface RunningTier {
  readonly tier: InProcessTier;
  readonly freezeShared: boolean;
}

/**
 * The top of every read: `@Cacheable`, `CacheService.getOrSet`. It answers from the in-process tier
 * when it can, else reads through (single-flight, Redis, the lease, the load: `readThrough`), and
 * records each call's outcome once, here. A loader's error reaches the caller unchanged (recorded as
 * a miss).
 */
export class GetOrLoadHandler {
  constructor(
    private readonly events: CacheEventPublisher,
    private readonly flights: SingleFlight<LoadResult<unknown>>,
    private readonly readThrough: ReadThrough,
    /** Undefined while the cache is not running: reads then go to the method (see ReadThrough.run). */
    private readonly running: () => RunningTier | undefined,
  ) {}

  /** What L1 keeps for `redisKey` (recorded as an L1 hit), or L1_MISS. */
  fromL1(site: L1Site, redisKey: string): unknown {
    const { l1 } = site;
    if (l1 === undefined) return L1_MISS;
    const kept = l1.get(redisKey);
    if (kept !== L1_MISS) this.l1Hit(site, redisKey);
    return kept;
  }

  /** `fromL1` for a caller that returns a Promise: a settled Promise made once per kept value, or undefined. */
  fromL1Resolved(site: L1Site, redisKey: string): Promise<unknown> | undefined {
    const kept = site.l1?.getResolved(redisKey);
    if (kept !== undefined) this.l1Hit(site, redisKey);
    return kept;
  }

  /**
   * A call whose key is already being read (or loaded) in this process: it shares one answer with the
   * other callers that joined it from the same site, instead of a `.then` and closures of its own (the
   * caller that started the read keeps its own). A stampede's 1,000 callers then allocate little, which
   * matters where fresh memory pages are costly (bench/README.md, the sixth session's results). When
   * the read settles, each joined caller is recorded under the site's name with its own latency, for
   * its own request (the trace taken here).
   *
   * Undefined, and the caller uses `load`, when nothing is in flight for the key, when the callers
   * already sharing its answer came from another site, or while someone listens to `call` messages:
   * a listener takes the context a message is published in as the call's, and one `.then` runs in
   * one context. One Promise for many callers also means that a caller who drops it while another
   * awaits it is not reported as an unhandled rejection of its own.
   */
  join<R>(site: ReadSite, redisKey: string, answer: (result: LoadResult<unknown>) => R): Promise<R> | undefined {
    const { events } = this;
    if (events.callsObserved) return undefined;
    const flight = this.flights.running(redisKey);
    if (flight === undefined) return undefined;
    let shared = flight.answered;
    if (shared === undefined) {
      shared = this.shareAnswer(site, redisKey, answer, flight.promise!);
      flight.answered = shared;
    } else if (shared.site !== site || shared.answer !== answer) {
      return undefined;
    }
    shared.starts.push(performance.now());
    shared.traces.push(currentRequestTrace());
    flight.joined?.();
    return shared.promise as Promise<R>;
  }

  /**
   * Reads `redisKey` through (see the class), the call recorded under the site's name; `answer` turns the
   * result into what the caller returns, in the same step (a hit's path: no second `.then`).
   */
  load<T, R = LoadResult<T>>(
    site: ReadSite,
    redisKey: string,
    loader: () => Promise<T>,
    write: WritePolicy,
    answer: (result: LoadResult<T>) => R = asIs as (result: LoadResult<T>) => R,
  ): Promise<R> {
    const started = performance.now();
    const { name } = site;
    return this.shared(redisKey, loader, write, site.load, name, site.l1, started).then(
      (result) => {
        this.events.called(name, 'read', result.outcome, 'redis', started, redisKey, result.fallback);
        return answer(result);
      },
      (err: unknown) => {
        // The method itself failed: the call counts as a miss and the error reaches the caller unchanged.
        this.events.called(name, 'read', 'miss', 'redis', started, redisKey);
        throw err;
      },
    );
  }

  /**
   * The cached value for `redisKey`, or else the loader's (stored before this resolves). Concurrent
   * callers of one key in this process share one read and one load; a fresh value read from Redis is
   * offered to `l1`.
   */
  private shared<T>(
    redisKey: string,
    loader: () => Promise<T>,
    write: WritePolicy,
    load: LoadPolicy,
    name: string,
    l1: L1Slot | undefined,
    /** The call's start (`performance.now()`). */
    now: number,
  ): Promise<LoadResult<T>> {
    const running = this.running();
    const freeze = running?.freezeShared === true;
    const tier = l1 && running?.tier;
    return this.flights.run(redisKey, (flight) => {
      // Taken before the read: an invalidation of the key heard meanwhile keeps its value out of L1.
      const seq = tier ? tier.seq : 0;
      const loading = this.readThrough.run(redisKey, loader, write, load, name, flight, now);
      if (!tier && !freeze) return loading;
      return loading.then((result) => {
        // `freezeShared`: the value every caller of one load receives, frozen (deep-freeze.ts).
        if (freeze) deepFreeze(result.value);
        if (tier && result.fresh) l1!.offer(redisKey, seq, result.fresh);
        return result;
      });
    }) as Promise<LoadResult<T>>;
  }

  /** The answer of `join`'s callers: one `.then` on the work, recording every caller that joined. */
  private shareAnswer<R>(
    site: ReadSite,
    redisKey: string,
    answer: (result: LoadResult<unknown>) => R,
    work: Promise<LoadResult<unknown>>,
  ): SharedAnswer {
    const { name } = site;
    const starts: number[] = [];
    const traces: (RequestCacheTrace | undefined)[] = [];
    // Runs in the context of the first caller to join. A `call` listener that subscribed since then
    // sees every joined call published there: they were joined while none listened.
    const promise = work.then(
      (result) => {
        for (let i = 0; i < starts.length; i++) {
          this.events.calledFor(traces[i], name, 'read', result.outcome, 'redis', starts[i], redisKey, result.fallback);
        }
        return answer(result);
      },
      (err: unknown) => {
        for (let i = 0; i < starts.length; i++) {
          this.events.calledFor(traces[i], name, 'read', 'miss', 'redis', starts[i], redisKey);
        }
        throw err;
      },
    );
    return { site, answer, promise, starts, traces };
  }

  /** An L1 hit takes well under a microsecond: recorded without reading the clock (latency 0). */
  private l1Hit(site: L1Site, redisKey: string): void {
    this.events.l1Hit((site.counters ??= this.events.countersOf(site.name)), site.name, redisKey);
  }
}
