import type { CacheOutcome } from '../../metrics/cache-outcome.js';
import type { CacheEngine, WritePolicy } from '../cache-engine.js';
import { learnReturnMode, type CacheMethodPlan, type KeyBuilder, type ReturnMode } from '../cache-method-plan.js';
import { deepFreeze } from '../deep-freeze.js';
import type { KeyMemo } from '../key-memo.js';
import { NOT_LOADED, type BatchFlights, type ItemLoad, type SettleClaim } from './batch-flights.js';

/** A `@Cacheable({ batch })` method as its calls need it: the item's key, and how loaded items are written. */
export interface BatchSite {
  readonly name: string;
  /** `Class.method @Cacheable`, for warnings. */
  readonly where: string;
  /** The logical key of one item (the builder gets `[item]`). */
  readonly itemKey: KeyBuilder;
  readonly ttlMs: number;
  readonly cacheNull: boolean;
  readonly condition: ((...args: unknown[]) => boolean) | undefined;
  readonly unless: ((result: unknown, item: unknown) => boolean) | undefined;
  readonly tags: string | readonly string[] | ((result: unknown, item: unknown) => unknown) | undefined;
  /** The method's mode, stored with what it writes when its return type was not recorded. */
  readonly returned: (() => ReturnMode | undefined) | undefined;
  /** Set when the method's mode is still to be learnt: a hit may tell it. */
  readonly learner: CacheMethodPlan | undefined;
  /** For a `'...{0}...'` template: the Redis keys of recent items (numbers, short strings), bounded. */
  readonly keyMemo: KeyMemo | undefined;
  /** The write policy of every item when there is no `unless` nor tags function (built on first use). */
  sharedPolicy?: WritePolicy;
}

/** Why the keys of a call could not be built (see CacheOperationExecutor.keyFailure): logged once, never thrown. */
export type KeyFailure = (site: { name: string; where: string }, err: unknown) => 'bypass' | 'error';

/** The method for the given ids (the call's other arguments as they were). */
export type BatchLoader = (items: unknown[]) => Promise<unknown>;

/** One call's read: what it found, and what it loads or waits for. */
interface Round {
  /** The key of each of the caller's items, in order. */
  readonly keys: readonly string[];
  /** The distinct keys of the call, each with the first item that has it. */
  readonly itemOf: ReadonlyMap<string, unknown>;
  /** Values by key: the hits, then what was loaded. */
  readonly found: Map<string, unknown>;
  readonly outcomes: Map<string, CacheOutcome>;
  /** Misses this call loads. */
  readonly claimed: string[];
  /** Misses another batch of this process is loading, and those loads. */
  readonly joined: string[];
  readonly joins: Promise<ItemLoad>[];
  /** The epoch loaded ids are written with; undefined: nothing is written. */
  writeEpoch?: Promise<number | undefined>;
  /** Ends the claim of `claimed` (see BatchFlights.claim). */
  settleClaim?: SettleClaim;
}

/** What one load of missing items gave: their values in order, or what the method returned out of line. */
type Loaded = { aligned: true; values: readonly unknown[] } | { aligned: false; result: unknown; count: number };

/**
 * The calls of `@Cacheable({ batch })` list loaders: every id of the first argument is cached under
 * its own key. The hits come from one read (MGET per slot); the method runs once, with the missing
 * ids (in the caller's order, without duplicates), and must answer one result per id, in order; each
 * result is written with its TTL through the engine's ordered writes. An id another batch of this
 * process is loading is waited for, not loaded again. The answer is in the caller's order. Cache
 * failures go to the source; a method's error reaches the caller unchanged.
 */
export class BatchReads {
  /** The engine's: its writes and invalidations supersede the loads in flight. */
  private readonly flights: BatchFlights;

  constructor(
    private readonly engine: CacheEngine,
    private readonly keyFailure: KeyFailure,
  ) {
    this.flights = engine.batchFlights;
  }

  async read(site: BatchSite, load: BatchLoader, args: readonly unknown[]): Promise<unknown> {
    const started = performance.now();
    const items = args[0];
    if (site.condition && !site.condition(...args)) return this.uncached(site, load, items, 'bypass', started);
    if (!Array.isArray(items)) {
      this.engine.warnOnce(
        site.name,
        'batch-argument',
        `${site.where}: the first argument of a batch method must be the array of ids; calls without one bypass the cache`,
        new TypeError(`got ${items === null ? 'null' : typeof items}`),
      );
      return this.uncached(site, load, items, 'bypass', started);
    }
    if (items.length === 0) return [];
    let keys: string[];
    try {
      keys = this.keysOf(site, items);
    } catch (err) {
      return this.uncached(site, load, items, this.keyFailure(site, err), started);
    }
    const round = await this.lookUp(site, items, keys);
    try {
      return await this.fill(site, load, args, items, round);
    } finally {
      // Each id is one read under the method's name: a hit, a miss, or an error where its read failed.
      const { events } = this.engine;
      for (const key of keys) events.called(site.name, 'read', round.outcomes.get(key)!, 'redis', started, key);
    }
  }

  /**
   * One read of the call's distinct keys (an id given twice is read, loaded and answered once): the
   * hits, and for each miss whether this call loads it or waits for another batch's load of it.
   */
  private async lookUp(site: BatchSite, items: readonly unknown[], keys: readonly string[]): Promise<Round> {
    const itemOf = new Map<string, unknown>();
    keys.forEach((key, i) => {
      if (!itemOf.has(key)) itemOf.set(key, items[i]);
    });
    const distinct = [...itemOf.keys()];
    const ticket = this.flights.startRead();
    const reading = this.engine.readMany(distinct, site.name);
    // The epoch loaded ids are written with is read before the method runs (it orders these writes
    // against others of the same keys): sent right behind the MGET, in the same socket write, so a
    // batch with misses waits for no extra round trip. Not during an outage, when nothing is written.
    const epoch = this.engine.isDown() ? undefined : this.engine.readEpoch();
    const round: Round = { keys, itemOf, found: new Map(), outcomes: new Map(), claimed: [], joined: [], joins: [] };
    try {
      const { fresh, failed } = await reading;
      distinct.forEach((key, i) => {
        const entry = fresh[i];
        round.outcomes.set(key, entry ? 'hit' : failed[i] ? 'error' : 'miss');
        if (entry) {
          round.found.set(key, entry.value);
          if (site.learner && entry.returned !== undefined) learnReturnMode(site.learner, entry.returned, 'stored');
          return;
        }
        const running = this.flights.joined(key, ticket);
        if (running === undefined) {
          round.claimed.push(key);
        } else if (running instanceof Promise) {
          round.joined.push(key);
          round.joins.push(running);
        } else if (running !== NOT_LOADED) {
          round.found.set(key, running.value);
        }
      });
      // During an outage the read already failed: nothing to write.
      if (!(failed.some(Boolean) && this.engine.isDown())) round.writeEpoch = epoch;
      // Claimed now, in the step that found them missing: a batch looking next waits for this load.
      if (round.claimed.length > 0) round.settleClaim = this.flights.claim(round.claimed, site.tags !== undefined);
    } finally {
      this.flights.endRead(ticket);
    }
    return round;
  }

  /** The values of the round's misses (loaded here, or by the batches it waits for), in the caller's order. */
  private async fill(
    site: BatchSite,
    load: BatchLoader,
    args: readonly unknown[],
    items: unknown[],
    round: Round,
  ): Promise<unknown> {
    const { claimed, joined, found, itemOf, writeEpoch } = round;
    const [own, waited] = await Promise.all([
      claimed.length > 0 ? this.load(site, load, args, claimed, itemOf, writeEpoch, round.settleClaim) : undefined,
      Promise.all(round.joins),
    ]);
    let loaded = own;
    // Another batch's load that ended without values (its method threw): loaded here after all.
    const retry: string[] = [];
    joined.forEach((key, i) => {
      const item = waited[i];
      if (item === NOT_LOADED) retry.push(key);
      else found.set(key, item.value);
    });
    if (loaded?.aligned !== false && retry.length > 0) {
      const again = await this.load(site, load, args, retry, itemOf, writeEpoch);
      if (!again.aligned) loaded = again;
      else retry.forEach((key, i) => found.set(key, again.values[i]));
    }
    if (loaded && !loaded.aligned) return this.outOfLine(site, load, items, loaded.result, loaded.count);
    loaded?.values.forEach((value, i) => found.set(claimed[i], value));
    const freeze = this.engine.config.freezeShared;
    return round.keys.map((key) => {
      const value = found.get(key);
      return freeze ? deepFreeze(value) : value;
    });
  }

  /**
   * Runs the method for the missing `keys` and writes what it returned, one entry per id (in parallel,
   * each with its TTL). `settle`: the claim other batches of this process wait on for these ids.
   */
  private async load(
    site: BatchSite,
    load: BatchLoader,
    args: readonly unknown[],
    keys: readonly string[],
    itemOf: ReadonlyMap<string, unknown>,
    writeEpoch: Promise<number | undefined> | undefined,
    settle?: SettleClaim,
  ): Promise<Loaded> {
    try {
      const epoch = await writeEpoch;
      const items = keys.map((key) => itemOf.get(key));
      const invoked = performance.now();
      const result = await load(items);
      const loadMs = performance.now() - invoked;
      if (!Array.isArray(result) || result.length !== items.length) {
        settle?.(NOT_LOADED);
        return { aligned: false, result, count: items.length };
      }
      // Without the epoch (Redis failed) a write could not tell a newer entry from an older one: none.
      if (epoch !== undefined) {
        await Promise.all(
          keys.map((key, i) =>
            this.engine.writeBatchItem(key, result[i], this.policyOf(site, items[i]), site.name, loadMs, epoch),
          ),
        );
      }
      settle?.(result);
      return { aligned: true, values: result };
    } catch (err) {
      settle?.(NOT_LOADED);
      throw err;
    }
  }

  /**
   * The method did not answer one result per id: nothing is stored, and the caller gets what the
   * method returns for the caller's own ids, as it is — this result when the method was given exactly
   * those, else the method's result for them (a second call). Counted as an error, logged once.
   */
  private outOfLine(
    site: BatchSite,
    load: BatchLoader,
    items: unknown[],
    result: unknown,
    loadedCount: number,
  ): Promise<unknown> | unknown {
    const { events } = this.engine;
    const got = Array.isArray(result) ? `an array of ${result.length}` : result === null ? 'null' : typeof result;
    const err = new TypeError(`returned ${got} for ${loadedCount} id(s)`);
    events.failed(site.name, 'key', undefined, err);
    this.engine.warnOnce(
      site.name,
      'batch-result',
      `${site.where}: a batch method must return an array with one result per id it was given, in order; ` +
        `its result was returned as it is and nothing was cached`,
      err,
    );
    return loadedCount === items.length ? result : load(items);
  }

  /** The call without the cache: the method with the caller's arguments, each id recorded with `outcome`. */
  private async uncached(
    site: BatchSite,
    load: BatchLoader,
    items: unknown,
    outcome: CacheOutcome,
    started: number,
  ): Promise<unknown> {
    try {
      return await load(items as unknown[]);
    } finally {
      const count = Array.isArray(items) ? items.length : 1;
      for (let i = 0; i < count; i++)
        this.engine.events.called(site.name, 'read', outcome, 'source', started, undefined);
    }
  }

  /** The Redis key of every item, in order (from `keyMemo` when it can be). */
  private keysOf(site: BatchSite, items: readonly unknown[]): string[] {
    const memo = site.keyMemo;
    return items.map((item) => {
      let redisKey = memo?.get(item);
      if (redisKey === undefined) {
        redisKey = this.engine.redisKey(site.itemKey([item]));
        memo?.remember(item, redisKey);
      }
      return redisKey;
    });
  }

  /** How one item's result is written: TTL (or `nullTtl`), `unless` and tags of that item. */
  private policyOf(site: BatchSite, item: unknown): WritePolicy {
    const { unless, tags } = site;
    if (!unless && typeof tags !== 'function') {
      return (site.sharedPolicy ??= {
        ttlMs: site.ttlMs,
        cacheNull: site.cacheNull,
        tagsOf: tags === undefined ? undefined : () => tags,
        returned: site.returned,
      });
    }
    return {
      ttlMs: site.ttlMs,
      cacheNull: site.cacheNull,
      returned: site.returned,
      unless: unless ? (value) => unless(value, item) : undefined,
      tagsOf: typeof tags === 'function' ? (value) => tags(value, item) : tags === undefined ? undefined : () => tags,
    };
  }
}
