import { AsyncResource } from 'node:async_hooks';
import { defer, EMPTY, isObservable, lastValueFrom, mergeMap, of } from 'rxjs';
import { resolveLoadPolicy, resolveRetention, type LoadPolicy } from '../options/resolve-load-options.js';
import { resolveL1Choice } from '../options/resolve-l1-options.js';
import { resolveTtl } from '../options/resolve-options.js';
import type { CacheCounters } from '../metrics/cache-counters.js';
import { L1_MISS, type L1Slot } from './l1/l1-slot.js';
import type { CacheEngine, LoadResult, WritePolicy } from './cache-engine.js';
import { UnkeyableValueError } from './argument-encoding.js';
import { AwaitableObservable } from './awaitable-observable.js';
import {
  defaultKeyBuilder,
  learnReturnMode,
  type CacheMethodPlan,
  type KeyBuilder,
  type ReturnMode,
} from './cache-method-plan.js';
import { normalizeTags } from './invalidation/cache-tags.js';
import { KeyMemo } from './key-memo.js';
import { callUncached } from './not-running.js';
import { BatchReads, type BatchSite } from './read/batch-read.js';

type Condition = ((...args: unknown[]) => boolean) | undefined;
type Unless = ((result: unknown, ...args: unknown[]) => boolean) | undefined;
type Tags = string | readonly string[] | ((result: unknown, ...args: unknown[]) => unknown) | undefined;
type EvictTags = string | readonly string[] | ((...args: unknown[]) => unknown) | undefined;

interface CompiledWrite {
  name: string;
  /** `Class.method @Decorator`, for warnings. */
  where: string;
  key: KeyBuilder;
  ttlMs: number;
  /** How long the key outlives the TTL for stale readers. */
  retainMs: number;
  cacheNull: boolean;
  condition: Condition;
  unless: Unless;
  tags: Tags;
  /** The method's mode, stored with what it writes when its return type was not recorded (see WritePolicy). */
  returned?: () => ReturnMode | undefined;
  /** The policy of every call when there is no `unless` nor tags of the call (built once, on first use). */
  sharedPolicy?: WritePolicy;
}

/** `@Cacheable`'s write, with its read-through options and in-process memory (if any). */
interface CompiledCacheable extends CompiledWrite {
  load: LoadPolicy;
  l1: L1Slot | undefined;
  /** For a key template with one plain placeholder (`'user:{0}'`): the Redis keys of recent arguments. */
  keyMemo: KeyMemo | undefined;
  /** The name's counters, looked up on the first L1 hit. */
  counters?: CacheCounters;
  /** Set when the method's mode is still to be learnt: a hit may tell it (see `readThrough`). */
  learner: CacheMethodPlan | undefined;
  /** `batch`: the method is a list loader, served by read/batch-read.ts. */
  batch?: BatchSite;
}

interface CompiledEvict {
  name: string;
  /** `Class.method @CacheEvict`, for warnings. */
  where: string;
  key?: KeyBuilder;
  /** The `keys` option: the logical keys to evict, from the arguments. */
  keysOf?: (...args: unknown[]) => string[];
  allEntries?: true | string;
  tags: EvictTags;
  condition: Condition;
}

/** A method's plan for one concrete class, with TTLs resolved against this application's options. */
interface CompiledPlan {
  /** Metrics name of calls without `@Cacheable` (with one, its own name is used). */
  name: string;
  cacheable?: CompiledCacheable;
  puts: CompiledWrite[];
  evictsBefore: CompiledEvict[];
  evictsAfter: CompiledEvict[];
  /** Only `@Cacheable`: the common case, served by a shorter path (see `execute`). */
  cacheableOnly: boolean;
}

/**
 * What an Observable that completed without a value settles to: nothing is stored for it and the
 * caller's Observable completes empty, as the method's did.
 */
const NO_VALUE: unique symbol = Symbol('nestjs-redis-cache:no-value');

/**
 * Runs the cache operations of one decorated call: evictions before, the read-through or the
 * method, the writes, evictions after — in that order, each awaited, so when the call resolves
 * every write and eviction it caused is done (read-your-writes). One executor per application.
 */
export class CacheOperationExecutor {
  /** Per plan, per concrete class: default keys and names follow the class the instance is of. */
  private readonly compiled = new WeakMap<CacheMethodPlan, Map<object, CompiledPlan>>();
  private readonly batches: BatchReads;

  constructor(private readonly engine: CacheEngine) {
    this.batches = new BatchReads(engine, (site, err) =>
      this.keyFailure(site, err) === UNKEYABLE ? 'bypass' : 'error',
    );
  }

  /**
   * Resolves a plan's TTLs (numbers, durations, profile names) and default keys for `owner`, the
   * concrete class. Called for every decorated method of every provider during `app.init()`, so an
   * unknown profile fails the bootstrap with `Class.method` in the message.
   */
  compile(plan: CacheMethodPlan, owner: { name: string }): CompiledPlan {
    // Every call asks: the last answer is kept on the plan (one application and class at a time),
    // the maps are only searched when the caller is another one.
    const last = plan.lastCompiled;
    if (last !== undefined && last.executor === this && last.owner === owner) return last.compiled as CompiledPlan;
    const compiled = this.compileFor(plan, owner);
    plan.lastCompiled = { executor: this, owner, compiled };
    return compiled;
  }

  private compileFor(plan: CacheMethodPlan, owner: { name: string }): CompiledPlan {
    let byOwner = this.compiled.get(plan);
    const cached = byOwner?.get(owner);
    if (cached) return cached;
    const method = `${owner.name}.${plan.methodName}`;
    const config = this.engine.config;
    const cacheable = plan.cacheable && this.compileCacheable(plan, plan.cacheable, owner);
    const puts = plan.puts.map(({ options, key }) => ({
      name: options.name ?? method,
      where: `${method} @CachePut`,
      key,
      ttlMs: resolveTtl(options.ttl, config, `${method} @CachePut`),
      retainMs: retainOf(resolveRetention(options, `${method} @CachePut`)),
      cacheNull: true,
      condition: options.condition,
      unless: options.unless,
      tags: options.tags as Tags,
    }));
    const evicts = plan.evicts.map(({ options, key }) => ({
      name: options.name ?? method,
      where: `${method} @CacheEvict`,
      key,
      keysOf: options.keys,
      allEntries: options.allEntries,
      tags: options.tags as EvictTags,
      condition: options.condition,
      before: options.beforeInvocation === true,
    }));
    const compiled: CompiledPlan = {
      name: cacheable?.name ?? puts[0]?.name ?? evicts[0]?.name ?? method,
      cacheable,
      puts,
      evictsBefore: evicts.filter((evict) => evict.before),
      evictsAfter: evicts.filter((evict) => !evict.before),
      cacheableOnly: cacheable !== undefined && puts.length === 0 && evicts.length === 0,
    };
    if (!byOwner) this.compiled.set(plan, (byOwner = new Map()));
    byOwner.set(owner, compiled);
    return compiled;
  }

  private compileCacheable(
    plan: CacheMethodPlan,
    { options, key, batch }: NonNullable<CacheMethodPlan['cacheable']>,
    owner: { name: string },
  ): CompiledCacheable {
    const { methodName } = plan;
    const where = `${owner.name}.${methodName} @Cacheable`;
    const load = resolveLoadPolicy(options, this.engine.config, where);
    const compiled: CompiledCacheable = {
      name: options.name ?? `${owner.name}.${methodName}`,
      where,
      key: key ?? defaultKeyBuilder(owner.name, methodName),
      ttlMs: resolveTtl(options.ttl, this.engine.config, where),
      retainMs: retainOf(load),
      cacheNull: options.cacheNull ?? true,
      condition: options.condition,
      unless: options.unless,
      tags: options.tags as Tags,
      load,
      keyMemo: key?.argIndex !== undefined ? new KeyMemo() : undefined,
      // A batch reads Redis only (batch-plan.ts refuses an l1 option on it).
      l1: batch
        ? undefined
        : this.engine.l1Slot(resolveL1Choice(options.l1, this.engine.config.l1, where, { ownAllowed: true })),
      // What the method loads carries its mode only when that mode is learnt: a reader of a declared
      // one knows it already (and a release without the flags byte could not read it).
      returned: plan.modeDeclared ? undefined : () => plan.mode,
      learner: plan.modeDeclared ? undefined : plan,
    };
    if (batch) {
      const itemKey = batch.key ?? defaultKeyBuilder(owner.name, methodName);
      compiled.batch = {
        name: compiled.name,
        where,
        itemKey,
        ttlMs: compiled.ttlMs,
        cacheNull: compiled.cacheNull,
        condition: compiled.condition,
        unless: compiled.unless,
        tags: compiled.tags as BatchSite['tags'],
        returned: compiled.returned,
        learner: compiled.learner,
        keyMemo: itemKey.argIndex === 0 ? new KeyMemo() : undefined,
      };
    }
    return compiled;
  }

  /** The wrapper's entry point: returns what the method would (a Promise, or an Observable). */
  execute(
    plan: CacheMethodPlan,
    instance: object,
    original: (...args: unknown[]) => unknown,
    args: unknown[],
  ): unknown {
    if (!this.engine.isStarted) return callUncached(instance, original, args);
    const compiled = this.compile(plan, instance.constructor);
    const { mode } = plan;
    const batch = compiled.cacheable?.batch;
    if (batch !== undefined) {
      // A list loader: the method runs with the missing ids in place of the first argument.
      const load = (items: unknown[]) => invokerOf(instance, original, [items, ...args.slice(1)], plan)();
      return this.deliver(mode, () => this.batches.read(batch, load, args));
    }
    if (mode === 'promise' && compiled.cacheableOnly) {
      return this.readThroughOnly(compiled.cacheable!, plan, instance, original, args);
    }
    const invoke = invokerOf(instance, original, args, plan);
    return this.deliver(mode, () => this.run(compiled, invoke, args));
  }

  /** What the caller gets for a call whose work `work` runs: a Promise, an Observable, or (mode unknown) both. */
  private deliver(mode: ReturnMode | undefined, work: () => Promise<unknown>): unknown {
    if (mode === 'promise') return work().then(unwrap);
    // The work of an Observable call runs in the async context of this call, not of the subscriber
    // (Nest subscribes to a handler's Observable outside the interceptor's scope), so the call is
    // counted for the request that made it.
    const callContext = new AsyncResource('nestjs-redis-cache:observable');
    const start = () => callContext.runInAsyncScope(work);
    if (mode === undefined) {
      // Not known yet whether the method returns a Promise or an Observable (its return type was
      // not recorded): an answer that is both, and the call learns the mode for the next ones.
      return new AwaitableObservable(start(), start, NO_VALUE);
    }
    // An Observable method gets a cold Observable back: nothing runs until it is subscribed.
    return defer(start).pipe(mergeMap((value) => (value === NO_VALUE ? EMPTY : of(value))));
  }

  /**
   * A Promise method with only `@Cacheable`, which is most calls: the read-through with one `.then`
   * that records the outcome and unwraps the value, no async frames (every hit goes through here;
   * measured in bench/README.md). A call that joins a read in flight shares the `.then` of the
   * callers that joined before it (GetOrLoadHandler.join).
   */
  private readThroughOnly(
    cacheable: CompiledCacheable,
    plan: CacheMethodPlan,
    instance: object,
    original: (...args: unknown[]) => unknown,
    args: unknown[],
  ): Promise<unknown> {
    // The method's invoker is only made on a miss (an L1 hit allocates nothing but its latency sample).
    if (cacheable.condition) {
      return this.readThrough(cacheable, false, invokerOf(instance, original, args, plan), args).then(unwrap);
    }
    let redisKey: string;
    try {
      redisKey = this.redisKeyOf(cacheable, args);
    } catch (err) {
      return this.withoutKey(cacheable, invokerOf(instance, original, args, plan), err).then(unwrap);
    }
    try {
      const { reads } = this.engine;
      const kept = reads.fromL1Resolved(cacheable, redisKey);
      if (kept !== undefined) return kept;
      // A stampede's later callers from this method: the read in flight answers them with one Promise.
      const joined = reads.join(cacheable, redisKey, valueOf);
      if (joined !== undefined) return joined;
      return reads.load(
        cacheable,
        redisKey,
        invokerOf(instance, original, args, plan),
        policy(cacheable, args),
        valueOf,
      );
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The Redis key of a `@Cacheable` call, from `keyMemo` when it can be. */
  private redisKeyOf(cacheable: CompiledCacheable, args: unknown[]): string {
    const memo = cacheable.keyMemo;
    const arg = memo && args[cacheable.key.argIndex!];
    let redisKey = memo?.get(arg);
    if (redisKey === undefined) {
      redisKey = this.engine.redisKey(cacheable.key(args));
      memo?.remember(arg, redisKey);
    }
    return redisKey;
  }

  private async run(plan: CompiledPlan, invoke: () => Promise<unknown>, args: unknown[]): Promise<unknown> {
    if (plan.cacheableOnly) return this.readThrough(plan.cacheable!, false, invoke, args); // Observable methods
    const started = performance.now();
    let cacheFailed = false;
    for (const evict of plan.evictsBefore) if (!(await this.evict(evict, args))) cacheFailed = true;
    let result: unknown;
    // Writes read the invalidation epoch before the method runs: when they began (it orders them
    // against other writes of their keys), and the epoch their tags are checked against.
    const epoch = plan.puts.length > 0 ? await this.engine.readEpoch() : undefined;
    const invoked = performance.now();
    if (plan.cacheable) {
      result = await this.readThrough(plan.cacheable, plan.puts.length > 0, invoke, args);
    } else {
      // A call without @Cacheable never reads the cache: it is recorded as a bypass, or as an
      // error when a write or eviction it asked for failed.
      try {
        result = await invoke();
      } catch (err) {
        this.engine.events.called(plan.name, 'write', cacheFailed ? 'error' : 'bypass', 'source', started, undefined);
        throw err;
      }
    }
    if (result !== NO_VALUE) {
      const loadMs = performance.now() - invoked;
      for (const put of plan.puts) {
        if (put.condition && !put.condition(...args)) continue;
        const logical = this.keyAfter(put.key, put, args, result);
        if (typeof logical !== 'string') {
          if (logical === KEY_FAILED) cacheFailed = true;
          continue;
        }
        const key = this.engine.redisKey(logical);
        const written = await this.engine.write(key, result, policy(put, args), put.name, loadMs, epoch);
        if (!written) cacheFailed = true;
      }
    }
    for (const evict of plan.evictsAfter) if (!(await this.evict(evict, args))) cacheFailed = true;
    if (!plan.cacheable) {
      this.engine.events.called(plan.name, 'write', cacheFailed ? 'error' : 'bypass', 'source', started, undefined);
    }
    return result;
  }

  /**
   * The `@Cacheable` part. With a `@CachePut` on the same method the method always runs (as in
   * Spring): the result is then written under the `@Cacheable` key as well.
   */
  private async readThrough(
    cacheable: CompiledCacheable,
    alwaysRun: boolean,
    invoke: () => Promise<unknown>,
    args: unknown[],
  ): Promise<unknown> {
    const { events } = this.engine;
    const started = performance.now();
    if (cacheable.condition && !cacheable.condition(...args)) {
      const result = await invoke();
      events.called(cacheable.name, 'read', 'bypass', 'source', started, undefined);
      return result;
    }
    let redisKey: string;
    try {
      redisKey = this.redisKeyOf(cacheable, args);
    } catch (err) {
      return this.withoutKey(cacheable, invoke, err);
    }
    if (alwaysRun) {
      try {
        const writePolicy = policy(cacheable, args);
        const epoch = await this.engine.readEpoch();
        const invoked = performance.now();
        const result = await invoke();
        const loadMs = performance.now() - invoked;
        if (result !== NO_VALUE) {
          await this.engine.write(redisKey, result, writePolicy, cacheable.name, loadMs, epoch);
        }
        events.called(cacheable.name, 'read', 'miss', 'redis', started, redisKey);
        return result;
      } catch (err) {
        // The method itself failed: the call counts as a miss and the error reaches the caller unchanged.
        events.called(cacheable.name, 'read', 'miss', 'redis', started, redisKey);
        throw err;
      }
    }
    const { reads } = this.engine;
    const kept = reads.fromL1(cacheable, redisKey);
    if (kept !== L1_MISS) return kept;
    const { value, fresh } = await reads.load(cacheable, redisKey, invoke, policy(cacheable, args));
    // A hit on what another process (or application) loaded: its entry may say what the method returned.
    const { learner } = cacheable;
    if (learner !== undefined && fresh?.returned !== undefined) learnReturnMode(learner, fresh.returned, 'stored');
    return value;
  }

  /** Runs one eviction if its condition holds; false when the cache failed. */
  private async evict(evict: CompiledEvict, args: unknown[]): Promise<boolean> {
    if (evict.condition && !evict.condition(...args)) return true;
    let failed = false;
    if (evict.allEntries !== undefined) {
      failed = (await this.engine.clear(evict.allEntries === true ? '' : evict.allEntries, evict.name)).failed;
    }
    if (evict.tags !== undefined) {
      const tags = this.afterMethod(evict, 'tags', () =>
        normalizeTags(typeof evict.tags === 'function' ? evict.tags(...args) : evict.tags, `${evict.where}: tags`),
      );
      if (tags === KEY_FAILED || (await this.engine.invalidateTags(tags, evict.name)).failed) failed = true;
    }
    const keys: string[] = [];
    if (evict.key) {
      const logical = this.keyAfter(evict.key, evict, args);
      if (logical === KEY_FAILED) failed = true;
      else if (logical !== UNKEYABLE) keys.push(this.engine.redisKey(logical));
    }
    if (evict.keysOf) {
      const listed = this.afterMethod(evict, 'keys', () => keyList(evict.keysOf!(...args)));
      if (listed === KEY_FAILED) failed = true;
      else for (const key of listed) keys.push(this.engine.userKey(key));
    }
    if (keys.length > 0 && (await this.engine.delete(keys, evict.name)).failed) failed = true;
    return !failed;
  }

  /**
   * A `@Cacheable` call whose key cannot be built runs the method without the cache: an argument
   * that cannot name a call (a bypass), or a key function that threw or returned no key (an error).
   * Either is logged once per method and argument, never thrown at the caller.
   */
  private async withoutKey(
    cacheable: CompiledCacheable,
    invoke: () => Promise<unknown>,
    err: unknown,
  ): Promise<unknown> {
    const outcome = this.keyFailure(cacheable, err) === UNKEYABLE ? 'bypass' : 'error';
    const started = performance.now();
    try {
      return await invoke();
    } finally {
      this.engine.events.called(cacheable.name, 'read', outcome, 'source', started, undefined);
    }
  }

  /** The logical key of a write or eviction, or why there is none (see `keyFailure`). */
  private keyAfter(
    build: KeyBuilder,
    operation: { name: string; where: string },
    args: unknown[],
    result?: unknown,
  ): string | typeof UNKEYABLE | typeof KEY_FAILED {
    try {
      return build(args, result);
    } catch (err) {
      return this.keyFailure(operation, err);
    }
  }

  /** Runs the user's `compute` (a tags or keys function) after the method: its failure is counted and logged once. */
  private afterMethod<T>(
    operation: { name: string; where: string },
    what: string,
    compute: () => T,
  ): T | typeof KEY_FAILED {
    try {
      return compute();
    } catch (err) {
      this.engine.events.failed(operation.name, 'key', undefined, err);
      this.engine.warnOnce(
        operation.name,
        what,
        `${operation.where}: ${what} could not be computed, so nothing was evicted by it`,
        err,
      );
      return KEY_FAILED;
    }
  }

  /**
   * Why a key could not be built, logged once per method and argument: UNKEYABLE for an argument
   * that cannot name a call (nothing is ever cached under such a call, so nothing needs evicting),
   * KEY_FAILED (and counted as an error) for a key function that threw or returned no key.
   */
  private keyFailure(
    { name, where }: { name: string; where: string },
    err: unknown,
  ): typeof UNKEYABLE | typeof KEY_FAILED {
    if (err instanceof UnkeyableValueError) {
      const argument = err.argument ?? 'an argument';
      this.engine.warnOnce(
        name,
        `unkeyable ${argument}`,
        `${where}: ${argument} is ${err.reason}, which cannot name a call; such calls bypass the cache`,
        err,
      );
      return UNKEYABLE;
    }
    this.engine.events.failed(name, 'key', undefined, err);
    this.engine.warnOnce(name, 'key', `${where}: the key could not be built, so the cache was skipped`, err);
    return KEY_FAILED;
  }
}

/** An argument cannot name the call: the cache is bypassed for it. */
const UNKEYABLE: unique symbol = Symbol('nestjs-redis-cache:unkeyable');
/** A key, keys or tags function failed (counted as an error). */
const KEY_FAILED: unique symbol = Symbol('nestjs-redis-cache:key-failed');

/** What a `keys` function returned, checked: an array of non-empty strings. */
function keyList(returned: unknown): string[] {
  if (!Array.isArray(returned) || !returned.every((key) => typeof key === 'string' && key.length > 0)) {
    throw new TypeError('keys must return an array of non-empty strings');
  }
  return returned as string[];
}

/**
 * The write policy of one call: shared by every call of a write without `unless` and without tags
 * of the call's own, so a hit allocates none.
 */
function policy(write: CompiledWrite, args: unknown[]): WritePolicy {
  const { unless, tags } = write;
  if (!unless && typeof tags !== 'function') {
    return (write.sharedPolicy ??= {
      ttlMs: write.ttlMs,
      retainMs: write.retainMs,
      cacheNull: write.cacheNull,
      unless: isNoValue,
      tagsOf: tags === undefined ? undefined : () => tags,
      returned: write.returned,
    });
  }
  return {
    ttlMs: write.ttlMs,
    retainMs: write.retainMs,
    cacheNull: write.cacheNull,
    returned: write.returned,
    unless: unless ? (value: unknown) => value === NO_VALUE || unless(value, ...args) : isNoValue,
    tagsOf:
      typeof tags === 'function'
        ? (value: unknown) => tags(value, ...args)
        : tags === undefined
          ? undefined
          : () => tags,
  };
}

function isNoValue(value: unknown): boolean {
  return value === NO_VALUE;
}

function unwrap(value: unknown): unknown {
  return value === NO_VALUE ? undefined : value;
}

/** A read's value as the caller's Promise gets it. */
function valueOf({ value }: LoadResult<unknown>): unknown {
  return value === NO_VALUE ? undefined : value;
}

/** How long past its TTL a value is kept: long enough for the longer of the two stale windows. */
function retainOf({ staleWhileRevalidateMs, graceMs }: { staleWhileRevalidateMs: number; graceMs: number }): number {
  return Math.max(staleWhileRevalidateMs, graceMs);
}

/**
 * Runs the decorated method for one call, its value (or error) as a Promise (see `settle`). What it
 * returned tells `plan` its mode, if the return type was not recorded.
 */
function invokerOf(
  instance: object,
  original: (...args: unknown[]) => unknown,
  args: unknown[],
  plan: CacheMethodPlan,
): () => Promise<unknown> {
  return () => {
    try {
      const returned = original.apply(instance, args);
      if (!plan.modeDeclared && !plan.modeReturned) {
        learnReturnMode(plan, isObservable(returned) ? 'observable' : 'promise', 'returned');
      }
      return settle(returned);
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

/** A method's return value as a Promise: an Observable contributes its last value, or NO_VALUE. */
function settle(value: unknown): Promise<unknown> {
  return isObservable(value) ? lastValueFrom(value, { defaultValue: NO_VALUE }) : Promise.resolve(value);
}
