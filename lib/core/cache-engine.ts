import { DEFAULT_CACHE } from '../cache-names.js';
import { RedisCacheConfigError } from '../errors.js';
import { CacheEventPublisher } from '../events/cache-event-publisher.js';
import type { CacheMetrics } from '../metrics/cache-metrics.js';
import type { L1Choice } from '../options/resolve-l1-options.js';
import type { ResolvedCacheConfig } from '../options/resolve-options.js';
import type { CacheCodec } from '../serialization/cache-codec.js';
import type { CacheStore, NamespaceSubscription } from '../store/cache-store.js';
import type { BookkeepingKeys } from './bookkeeping-keys.js';
import type { CacheStatus } from './cache-status.js';
import type { CachedValue, LoadResult, Removal, WritePolicy } from './cache-engine.types.js';
import { FailOpenStore } from './fail-open-store.js';
import { NOT_RUNNING_STATUS, STOPPED_ANSWERS } from './not-running.js';
import { CacheInvalidation } from './invalidation/cache-invalidation.js';
import { CacheTags, normalizeTags } from './invalidation/cache-tags.js';
import { InvalidationEpoch } from './invalidation/invalidation-epoch.js';
import { PendingInvalidations } from './invalidation/pending-invalidations.js';
import { PrefixGenerations } from './invalidation/prefix-generations.js';
import { TagEpochs } from './invalidation/tag-epochs.js';
import { safeKey } from './key-hash.js';
import { InProcessTier } from './l1/in-process-tier.js';
import { L1Presence } from './l1/l1-presence.js';
import type { L1Slot } from './l1/l1-slot.js';
import { OnceWarnings } from './once-warnings.js';
import { BatchFlights } from './read/batch-flights.js';
import { EntryReader } from './read/entry-reader.js';
import { FRESH_ONLY, freshnessOf } from './read/freshness.js';
import { GetOrLoadHandler, type RunningTier } from './read/get-or-load.js';
import { LeaseReturns } from './read/lease-returns.js';
import { LeaseSession } from './read/lease-session.js';
import { ReadThrough, type RunningReads } from './read/read-through.js';
import { RedisClock } from './redis-clock.js';
import { SingleFlight } from './single-flight.js';
import { EntryWriter } from './write/entry-writer.js';

export type * from './cache-engine.types.js';

interface Started {
  config: ResolvedCacheConfig;
  keys: BookkeepingKeys;
  store: CacheStore;
  failOpen: FailOpenStore;
  returns: LeaseReturns;
  isDown: () => boolean;
  leases: NamespaceSubscription;
  /** The read-through's view of this running cache. */
  reads: RunningReads;
  /** The handler's view of it (made once: every read asks for it). */
  running: RunningTier;
  writer: EntryWriter;
  pending: PendingInvalidations;
  epoch: InvalidationEpoch;
  tags: CacheTags;
  prefixes: PrefixGenerations;
  tier: InProcessTier;
  presence: L1Presence;
  invalidation: CacheInvalidation;
  reader: EntryReader;
}

/**
 * One application's cache, and the composition root of its parts: `start()` wires the read pipeline
 * (GetOrLoadHandler -> ReadThrough -> EntryReader, LeaseSession, EntryWriter), the fail-open
 * boundary, invalidation and L1 over a store; the facade methods (write, delete, clear, reclaim,
 * invalidateTags) keep single-flight's loads from landing after a change. Until `start()` (during
 * `app.init()`) and after `stop()` it holds no store and callers go to the source.
 */
export class CacheEngine {
  private started: Started | undefined;
  /** Kept after stop(), so a call in flight while the app closes still builds its keys. */
  private namespace = '';
  private readonly flights = new SingleFlight<LoadResult<unknown>>();
  /** The items `@Cacheable({ batch })` calls are loading (read/batch-read.ts), superseded like `flights`. */
  readonly batchFlights = new BatchFlights();
  private readonly warnings: OnceWarnings;
  private readonly readThrough: ReadThrough;
  /** Every read's entry point: L1, single-flight, recording (read/get-or-load.ts). */
  readonly reads: GetOrLoadHandler;
  /** What the pipeline tells the built-in metrics and the diagnostics channels. */
  readonly events: CacheEventPublisher;

  constructor(
    readonly metrics: CacheMetrics,
    private readonly codec: CacheCodec,
    warn: (message: string) => void,
    cache: string = DEFAULT_CACHE,
  ) {
    this.events = new CacheEventPublisher(metrics, cache);
    this.warnings = new OnceWarnings(warn);
    this.readThrough = new ReadThrough({
      events: this.events,
      warnOnce: (name, topic, message, err) => this.warnOnce(name, topic, message, err),
      running: () => this.started?.reads,
    });
    this.reads = new GetOrLoadHandler(this.events, this.flights, this.readThrough, () => this.started?.running);
  }

  start(
    config: ResolvedCacheConfig,
    store: CacheStore,
    isDown: () => boolean,
    leases: NamespaceSubscription,
    keys: BookkeepingKeys,
  ): void {
    const pending = new PendingInvalidations(() => void this.replayInvalidations());
    const clock = new RedisClock();
    this.events.namespace = config.namespace;
    const rejected = () => this.events.messageRejected();
    const epoch = new InvalidationEpoch(keys, store, clock);
    const prefixes = new PrefixGenerations(keys, store, clock, rejected);
    // Cleared prefixes are announced to every instance on the subscriber the leases use.
    leases.follow(prefixes);
    prefixes.start();
    const tier = new InProcessTier(keys, prefixes, config.l1, clock, rejected);
    tier.onDrop = (reason, count) => this.events.l1Dropped(reason, count);
    const presence = new L1Presence(keys, store);
    const tagEpochs = new TagEpochs(keys, clock, rejected);
    // Tag invalidations are announced like cleared prefixes: a tagged hit checks its tags in memory.
    leases.follow(tagEpochs);
    const tags = new CacheTags(keys, store, tagEpochs);
    // A change another instance announced detaches this process's loads of it in flight, as one made
    // here does: a call that begins once the change is heard does not join a load that read the
    // source before it. Their writes go on (`false`): a load may have begun after the change (this
    // instance's own message comes back too), and the epochs refuse the value of one that began
    // before (WRITE_ENTRY for a written key, the tag and prefix checks when it is read). A forged
    // message can only cost loads.
    // Tag invalidations are heard on the tags channel, which every instance follows (the tier's copy
    // of one, sent while some instance keeps an L1, would only detach the same loads again).
    tier.onHeard = (message) => {
      if (message.kind === 'keys') for (const key of message.keys) this.supersede(key, false);
      else if (message.kind === 'reclaim') this.supersedePrefix(message.fullPrefix, false);
    };
    prefixes.onCleared = (prefix) => this.supersedePrefix(`${keys.namespace}:${prefix}`, false);
    tagEpochs.onInvalidated = () => this.supersedeTagged(false);
    // Failures of the pipeline's commands are answered in one place (fail-open-store.ts).
    // Leases a failed command may hold go back by token once Redis answers (read/lease-returns.ts).
    const returns = new LeaseReturns((key, token) => store.completeLease(key, token, undefined, 0, leases.channel));
    const failOpen = new FailOpenStore(store, this.events, {
      releaseLater: (redisKey, token, failure) => returns.later(redisKey, token, failure),
    });
    const invalidation = new CacheInvalidation(
      { keys, store, failOpen, leases, pending, tags, prefixes, tier, presence },
      this.events,
    );
    const reader = new EntryReader({
      store: failOpen,
      codec: this.codec,
      events: this.events,
      prefixes,
      tags,
      // Not through delete(): that would mark this very load as superseded and drop its write.
      unlinkGarbage: (redisKey, name) => invalidation.remove(name, (removing) => removing.unlink([redisKey])),
      warnOnce: (name, topic, message, err) => this.warnOnce(name, topic, message, err),
    });
    const writer = new EntryWriter({
      config,
      codec: this.codec,
      store: failOpen,
      events: this.events,
      warnings: this.warnings,
      epoch,
      tags,
      prefixes,
      invalidation,
      evict: (redisKeys, name) => this.delete(redisKeys, name),
      foreignKey: (redisKey, name) => this.foreignKey(redisKey, name),
    });
    const session = new LeaseSession({ store: failOpen, listener: leases });
    const reads: RunningReads = {
      store: failOpen,
      reader,
      leases: session,
      isDown,
      loadEpoch: (redisKey, write) => writer.loadEpoch(redisKey, write),
      prepare: (value, write, name, loadMs, epoch) => writer.prepare(value, write, name, loadMs, epoch),
      foreignKey: (redisKey, name) => this.foreignKey(redisKey, name),
    };
    this.started = {
      running: { tier, freezeShared: config.freezeShared },
      writer,
      reads,
      reader,
      config,
      keys,
      store,
      failOpen,
      returns,
      isDown,
      leases,
      pending,
      epoch,
      tags,
      prefixes,
      tier,
      presence,
      invalidation,
    };
    this.namespace = config.namespace;
  }

  /**
   * Gives back the leases of loads still running in this process, so other processes don't wait
   * for values that will never be written. Called while closing, before `stop()` and the client.
   */
  releaseLeases(): Promise<void> {
    return this.started?.reads.leases.releaseHeld() ?? Promise.resolve();
  }

  stop(): void {
    this.started?.failOpen.stop();
    this.started?.pending.stop();
    this.started?.returns.stop();
    this.started?.prefixes.stop();
    this.started?.presence.stop();
    this.started?.tier.dropAll();
    this.started = undefined;
  }

  /**
   * Reads the prefix markers once Redis is up, at bootstrap: what every read relies on, and a first
   * run of the scripts. Rejects with what Redis refused, for the bootstrap to judge.
   */
  async preflight(): Promise<void> {
    await this.require().prefixes.refresh();
  }

  /**
   * Subscribes the in-process tier to the other instances' invalidations if some method uses it.
   * After every decorated method was compiled (their `l1` options are known), before the subscriber starts.
   */
  followL1(): void {
    const { tier, leases, presence } = this.require();
    if (!tier.wanted) return;
    leases.follow(tier);
    // Writers elsewhere announce their changes only while some instance says it keeps an L1.
    presence.advertise((ready) => tier.presenceSettled(ready));
  }

  /** The in-process memory a read-through uses, from its resolved `l1` option (undefined: none). */
  l1Slot(choice: L1Choice): L1Slot | undefined {
    if (!choice) return undefined;
    const { tier } = this.require();
    return choice.kind === 'own' ? tier.ownSlot(choice.settings) : tier.sharedSlot(choice.ttlMs);
  }

  /** How the cache stands now (CacheService.status()). */
  status(): CacheStatus {
    const started = this.started;
    if (!started) return NOT_RUNNING_STATUS;
    const { tier, leases, pending } = started;
    return {
      running: true,
      redis: started.isDown() ? 'down' : 'up',
      subscribed: leases.listening,
      l1: !tier.wanted ? 'off' : tier.serving ? 'serving' : 'waiting',
      pendingInvalidations: pending.size,
    };
  }

  get isStarted(): boolean {
    return this.started !== undefined;
  }

  get config(): ResolvedCacheConfig {
    return this.require().config;
  }

  get store(): CacheStore {
    return this.require().store;
  }

  get leases(): NamespaceSubscription {
    return this.require().leases;
  }

  /**
   * Remembers keys whose eviction or write failed (with `failure`), to delete them when Redis answers
   * again: see cache-invalidation.ts.
   */
  invalidateLater(redisKeys: readonly string[], failure?: unknown): void {
    this.started?.invalidation.later(redisKeys, failure);
  }

  /** Replays the invalidations an outage held back; on recovery and on a retry timer. Never rejects. */
  private async replayInvalidations(): Promise<void> {
    await this.started?.invalidation.replay();
  }

  /** Redis answers again: what the outage held back is replayed, and the leases it left are given back. Never rejects. */
  async recovered(): Promise<void> {
    await Promise.all([this.replayInvalidations(), this.started?.returns.flush()]);
  }

  /** True during an outage (reads fail at once): no point taking leases or writing. */
  isDown(): boolean {
    return this.started?.isDown() ?? STOPPED_ANSWERS.isDown;
  }

  /** The Redis key of a key the cache built itself (already safe): `${namespace}:${key}`. */
  redisKey(key: string): string {
    return `${this.namespace}:${key}`;
  }

  /** The Redis key of a key a user wrote by hand: unsafe parts hashed as decorators' keys are. */
  userKey(key: string): string {
    return this.redisKey(safeKey(key));
  }

  /** The fresh value of `redisKey` (`found`); stale, absent, leased or failed reads are `found: false`. */
  async read(redisKey: string, name: string): Promise<{ found: boolean; value?: unknown; failed: boolean }> {
    const reader = this.started?.reader;
    if (!reader) return STOPPED_ANSWERS.read;
    const { entry, failed } = await reader.read(redisKey, name);
    if (freshnessOf(entry, FRESH_ONLY) === 'fresh') return { found: true, value: entry!.value, failed };
    return { found: false, failed };
  }

  /**
   * `read` of many keys in one go (MGET per slot), in order: each key's fresh entry, or undefined
   * (stale, absent, leased, garbage or failed); `failed[i]` when the read of key i failed (a failed
   * MGET is counted once, a garbage entry once per key).
   */
  async readMany(
    redisKeys: readonly string[],
    name: string,
  ): Promise<{ fresh: Array<CachedValue | undefined>; failed: boolean[] }> {
    const reader = this.started?.reader;
    if (!reader || redisKeys.length === 0) {
      return { fresh: redisKeys.map(() => undefined), failed: redisKeys.map(() => false) };
    }
    const reads = await reader.readMany(redisKeys, name);
    return {
      fresh: reads.map(({ entry }) => (freshnessOf(entry, FRESH_ONLY) === 'fresh' ? entry : undefined)),
      failed: reads.map((read) => read.failed),
    };
  }

  /** Gets, decodes and checks entries (read/entry-reader.ts). */
  get reader(): EntryReader {
    return this.require().reader;
  }

  /** The invalidation epoch now (read before a write's method runs); undefined when Redis failed or the cache is stopped. */
  readEpoch(): Promise<number | undefined> {
    return this.started?.writer.readEpoch() ?? Promise.resolve(STOPPED_ANSWERS.epoch);
  }

  /**
   * Invalidates every entry under `rawTags` in O(1) (see cache-tags.ts). Loads of tagged values in
   * flight in this process are not joined any more: their values may predate the invalidation. A
   * failure is counted and the invalidation replayed once Redis answers again.
   */
  async invalidateTags(rawTags: unknown, name: string): Promise<{ failed: boolean }> {
    const tags = normalizeTags(rawTags, name);
    const started = this.started;
    if (!started || tags.length === 0) return STOPPED_ANSWERS.invalidation;
    this.supersedeTagged();
    return started.invalidation.invalidateTags(tags, name);
  }

  /** A key that holds something this package did not write (counted, logged once per name): left alone. */
  foreignKey(redisKey: string, name: string): void {
    this.events.failed(name, 'foreign', redisKey);
    this.warnOnce(
      name,
      'foreign',
      `${name}: '${redisKey}' holds something the cache did not write; it is left alone and calls go to the source`,
      'not an entry of this package',
    );
  }

  /**
   * Encodes and stores `value` under the policy (write/entry-writer.ts); never throws for cache
   * failures. Resolves to false when the cache failed (counted), true when the value was stored or
   * deliberately not. A load of the same key already in flight in this process will not overwrite it,
   * and callers from now on do not join it.
   */
  write(
    redisKey: string,
    value: unknown,
    policy: WritePolicy,
    name: string,
    loadMs = 0,
    epoch?: number,
  ): Promise<boolean> {
    this.batchFlights.supersede(redisKey);
    return this.writeBatchItem(redisKey, value, policy, name, loadMs, epoch);
  }

  /**
   * `write` for a value a batch loaded (read/batch-read.ts): the batch's own claim on the key is kept,
   * so the batches waiting on it are answered with this value; a single read in flight is superseded.
   */
  writeBatchItem(
    redisKey: string,
    value: unknown,
    policy: WritePolicy,
    name: string,
    loadMs: number,
    epoch: number | undefined,
  ): Promise<boolean> {
    this.flights.supersede(redisKey);
    return (
      this.started?.writer.write(redisKey, value, policy, name, loadMs, epoch) ??
      Promise.resolve(STOPPED_ANSWERS.written)
    );
  }

  /** Deletes the given Redis keys: how many existed, and whether the cache failed (counted). */
  async delete(redisKeys: readonly string[], name: string): Promise<Removal> {
    for (const key of redisKeys) this.supersede(key);
    return (await this.started?.invalidation.delete(redisKeys, name)) ?? STOPPED_ANSWERS.removal;
  }

  /**
   * Invalidates every entry under `${namespace}:${prefix}` in O(1): a new generation for the prefix
   * (prefix-generations.ts); the entries expire by their TTL. A failure is counted and the clear
   * replayed once Redis answers again.
   */
  async clear(prefix: string, name: string): Promise<{ failed: boolean }> {
    this.supersedePrefix(this.redisKey(prefix));
    return (await this.started?.invalidation.clear(prefix, name)) ?? STOPPED_ANSWERS.invalidation;
  }

  /** Deletes every key under `${namespace}:${prefix}` with SCAN + pipelined UNLINK (memory reclamation). */
  async reclaim(prefix: string, name: string): Promise<Removal> {
    const literalPrefix = this.redisKey(prefix);
    this.supersedePrefix(literalPrefix);
    return (await this.started?.invalidation.reclaim(literalPrefix, name)) ?? STOPPED_ANSWERS.removal;
  }

  /**
   * Detaches the loads of `redisKey` in flight, single and batch: callers from now on load it anew.
   * `skipWrite` (a change made here): the single load does not store its value (SingleFlight.supersede).
   */
  private supersede(redisKey: string, skipWrite = true): void {
    this.flights.supersede(redisKey, skipWrite);
    this.batchFlights.supersede(redisKey);
  }

  /** `supersede` for every load of a tagged value (its tags are only known once it has loaded). */
  private supersedeTagged(skipWrite = true): void {
    this.flights.supersedeTagged(skipWrite);
    this.batchFlights.supersedeTagged();
  }

  /** `supersede` for every key under `prefix`. */
  private supersedePrefix(prefix: string, skipWrite = true): void {
    this.flights.supersedePrefix(prefix, skipWrite);
    this.batchFlights.supersedePrefix(prefix);
  }

  private require(): Started {
    if (!this.started) {
      throw new RedisCacheConfigError('The cache is not started: RedisCacheModule starts it during app.init()');
    }
    return this.started;
  }

  /** Logs advice about what a name caches (`topic`), once per name. */
  adviseOnce(name: string, topic: string, message: string): void {
    this.warnings.adviseOnce(name, topic, message);
  }

  /** Logs the first failure of a kind (`topic`) per name; later ones are only counted in stats. */
  warnOnce(name: string, topic: string, message: string, err: unknown): void {
    this.warnings.warnOnce(name, topic, message, err);
  }
}
