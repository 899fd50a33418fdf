import { AsyncResource } from 'node:async_hooks';
import { defer, EMPTY, isObservable, lastValueFrom, mergeMap, of } from 'rxjs';
import { resolveLoadPolicy, resolveRetention, type LoadPolicy } from '../options/resolve-load-options.js';
import { resolveL1Choice } from '../options/resolve-l1-options.js';
import { resolveTtl } from '../options/resolve-options.js';
import type { CacheCounters } from '../metrics/cache-counters.js';
import { L1_MISS, type L1Slot } from './in-process-tier.js';
import type { CacheEngine, LoadResult, WritePolicy } from './cache-engine.js';
import { defaultKeyBuilder, type CacheMethodPlan, type KeyBuilder } from './cache-method-plan.js';

type Condition = ((...args: unknown[]) => boolean) | undefined;
type Unless = ((result: unknown, ...args: unknown[]) => boolean) | undefined;
type Tags = string | readonly string[] | ((result: unknown, ...args: unknown[]) => unknown) | undefined;
type EvictTags = string | readonly string[] | ((...args: unknown[]) => unknown) | undefined;

interface CompiledWrite {
  name: string;
  key: KeyBuilder;
  ttlMs: number;
  /** How long the key outlives the TTL for stale readers. */
  retainMs: number;
  cacheNull: boolean;
  condition: Condition;
  unless: Unless;
  tags: Tags;
  /** The policy of every call when there is no `unless` nor tags of the call (built once, on first use). */
  sharedPolicy?: WritePolicy;
}

/** `@Cacheable`'s write, with its read-through options and in-process memory (if any). */
interface CompiledCacheable extends CompiledWrite {
  load: LoadPolicy;
  l1: L1Slot | undefined;
  /**
   * For a key template with one plain placeholder (`'user:{0}'`): the Redis keys of recent argument
   * values (short strings and numbers), so a hit builds no string and L1 looks up the very string it
   * stored. Bounded: emptied past MEMOIZED_KEYS.
   */
  keyMemo: Map<unknown, string> | undefined;
  /** The name's counters, looked up on the first L1 hit. */
  counters?: CacheCounters;
}

/** How many argument -> key pairs a method remembers (see `keyMemo`). */
const MEMOIZED_KEYS = 10_000;
/** Longer string arguments are not remembered: the memo would keep them alive. */
const MEMOIZED_STRING_LENGTH = 128;

interface CompiledEvict {
  name: string;
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

  constructor(private readonly engine: CacheEngine) {}

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
    const cacheable = plan.cacheable && this.compileCacheable(plan.cacheable, owner, plan.methodName);
    const puts = plan.puts.map(({ options, key }) => ({
      name: options.name ?? method,
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
    { options, key }: NonNullable<CacheMethodPlan['cacheable']>,
    owner: { name: string },
    methodName: string,
  ): CompiledCacheable {
    const where = `${owner.name}.${methodName} @Cacheable`;
    const load = resolveLoadPolicy(options, this.engine.config, where);
    return {
      name: options.name ?? `${owner.name}.${methodName}`,
      key: key ?? defaultKeyBuilder(owner.name, methodName),
      ttlMs: resolveTtl(options.ttl, this.engine.config, where),
      retainMs: retainOf(load),
      cacheNull: options.cacheNull ?? true,
      condition: options.condition,
      unless: options.unless,
      tags: options.tags as Tags,
      load,
      keyMemo: key?.argIndex !== undefined ? new Map<unknown, string>() : undefined,
      l1: this.engine.l1Slot(resolveL1Choice(options.l1, this.engine.config.l1, where, { ownAllowed: true })),
    };
  }

  /** The wrapper's entry point: returns what the method would (a Promise, or an Observable). */
  execute(
    plan: CacheMethodPlan,
    instance: object,
    original: (...args: unknown[]) => unknown,
    args: unknown[],
  ): unknown {
    if (!this.engine.isStarted) return original.apply(instance, args);
    const compiled = this.compile(plan, instance.constructor);
    if (plan.mode === 'promise' && compiled.cacheableOnly) {
      return this.readThroughOnly(compiled.cacheable!, instance, original, args);
    }
    const invoke = invokerOf(instance, original, args);
    if (plan.mode === 'promise') {
      return this.run(compiled, invoke, args).then(unwrap);
    }
    // An Observable method gets a cold Observable back: nothing runs until it is subscribed. The
    // work runs in the async context of this call, not of the subscriber (Nest subscribes to a
    // handler's Observable outside the interceptor's scope), so the call is counted for the request
    // that made it.
    const callContext = new AsyncResource('nestjs-redis-cache:observable');
    return defer(() => callContext.runInAsyncScope(() => this.run(compiled, invoke, args))).pipe(
      mergeMap((value) => (value === NO_VALUE ? EMPTY : of(value))),
    );
  }

  /**
   * A Promise method with only `@Cacheable`, which is most calls: the read-through with one `.then`
   * that records the outcome and unwraps the value, no async frames (every hit goes through here;
   * measured in bench/README.md).
   */
  private readThroughOnly(
    cacheable: CompiledCacheable,
    instance: object,
    original: (...args: unknown[]) => unknown,
    args: unknown[],
  ): Promise<unknown> {
    // The method's invoker is only made on a miss (an L1 hit allocates nothing but its latency sample).
    if (cacheable.condition) {
      return this.readThrough(cacheable, false, invokerOf(instance, original, args), args).then(unwrap);
    }
    const { metrics } = this.engine;
    const { name } = cacheable;
    let started = 0;
    let loading: Promise<LoadResult<unknown>>;
    try {
      const redisKey = this.redisKeyOf(cacheable, args);
      const { l1 } = cacheable;
      if (l1 !== undefined) {
        // An L1 hit takes well under a microsecond: recorded without reading the clock (latency 0).
        const kept = l1.getResolved(redisKey);
        if (kept !== undefined) {
          metrics.recordL1Hit((cacheable.counters ??= metrics.countersOf(name)));
          return kept;
        }
      }
      started = performance.now();
      loading = this.engine.getOrLoad(
        redisKey,
        invokerOf(instance, original, args),
        policy(cacheable, args),
        cacheable.load,
        name,
        l1,
      );
    } catch (err) {
      return Promise.reject(err); // a key function that threw: as the async path would
    }
    return loading.then(
      ({ value, outcome, fallback }) => {
        metrics.record(name, outcome, performance.now() - started, fallback);
        return value === NO_VALUE ? undefined : value;
      },
      (err: unknown) => {
        // The method itself failed: the call counts as a miss and the error reaches the caller unchanged.
        metrics.record(name, 'miss', performance.now() - started);
        throw err;
      },
    );
  }

  /** The Redis key of a `@Cacheable` call, from `keyMemo` when it can be. */
  private redisKeyOf(cacheable: CompiledCacheable, args: unknown[]): string {
    const memo = cacheable.keyMemo;
    if (memo !== undefined) {
      const arg = args[cacheable.key.argIndex!];
      if (typeof arg === 'number' || (typeof arg === 'string' && arg.length <= MEMOIZED_STRING_LENGTH)) {
        let redisKey = memo.get(arg);
        if (redisKey === undefined) {
          redisKey = this.engine.redisKey(cacheable.key(args));
          if (memo.size >= MEMOIZED_KEYS) memo.clear();
          memo.set(arg, redisKey);
        }
        return redisKey;
      }
    }
    return this.engine.redisKey(cacheable.key(args));
  }

  private async run(plan: CompiledPlan, invoke: () => Promise<unknown>, args: unknown[]): Promise<unknown> {
    if (plan.cacheableOnly) return this.readThrough(plan.cacheable!, false, invoke, args); // Observable methods
    const started = performance.now();
    let cacheFailed = false;
    for (const evict of plan.evictsBefore) if (!(await this.evict(evict, args))) cacheFailed = true;
    let result: unknown;
    // Tagged writes store the invalidation epoch read before the method runs.
    const needsEpoch =
      plan.puts.length > 0 && (plan.puts.some((put) => put.tags !== undefined) || this.engine.prefixesCleared);
    const epoch = needsEpoch ? await this.engine.readEpoch() : undefined;
    const invoked = performance.now();
    if (plan.cacheable) {
      result = await this.readThrough(plan.cacheable, plan.puts.length > 0, invoke, args);
    } else {
      // A call without @Cacheable never reads the cache: it is recorded as a bypass, or as an
      // error when a write or eviction it asked for failed.
      try {
        result = await invoke();
      } catch (err) {
        this.engine.metrics.record(plan.name, cacheFailed ? 'error' : 'bypass', performance.now() - started);
        throw err;
      }
    }
    if (result !== NO_VALUE) {
      const loadMs = performance.now() - invoked;
      for (const put of plan.puts) {
        if (put.condition && !put.condition(...args)) continue;
        const key = this.engine.redisKey(put.key(args, result));
        const written = await this.engine.write(key, result, policy(put, args), put.name, loadMs, epoch);
        if (!written) cacheFailed = true;
      }
    }
    for (const evict of plan.evictsAfter) if (!(await this.evict(evict, args))) cacheFailed = true;
    if (!plan.cacheable) {
      this.engine.metrics.record(plan.name, cacheFailed ? 'error' : 'bypass', performance.now() - started);
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
    const { metrics } = this.engine;
    const started = performance.now();
    if (cacheable.condition && !cacheable.condition(...args)) {
      const result = await invoke();
      metrics.record(cacheable.name, 'bypass', performance.now() - started);
      return result;
    }
    const redisKey = this.redisKeyOf(cacheable, args);
    try {
      if (alwaysRun) {
        const writePolicy = policy(cacheable, args);
        const needsEpoch = this.engine.needsEpoch(redisKey, writePolicy);
        const epoch = needsEpoch ? await this.engine.readEpoch() : undefined;
        const invoked = performance.now();
        const result = await invoke();
        const loadMs = performance.now() - invoked;
        if (result !== NO_VALUE) {
          await this.engine.write(redisKey, result, writePolicy, cacheable.name, loadMs, epoch);
        }
        metrics.record(cacheable.name, 'miss', performance.now() - started);
        return result;
      }
      const { l1 } = cacheable;
      if (l1 !== undefined) {
        const kept = l1.get(redisKey);
        if (kept !== L1_MISS) {
          metrics.recordL1Hit((cacheable.counters ??= metrics.countersOf(cacheable.name)));
          return kept;
        }
      }
      const { value, outcome, fallback } = await this.engine.getOrLoad(
        redisKey,
        invoke,
        policy(cacheable, args),
        cacheable.load,
        cacheable.name,
        l1,
      );
      metrics.record(cacheable.name, outcome, performance.now() - started, fallback);
      return value;
    } catch (err) {
      // The method itself failed: the call counts as a miss and the error reaches the caller unchanged.
      metrics.record(cacheable.name, 'miss', performance.now() - started);
      throw err;
    }
  }

  /** Runs one eviction if its condition holds; false when the cache failed. */
  private async evict(evict: CompiledEvict, args: unknown[]): Promise<boolean> {
    if (evict.condition && !evict.condition(...args)) return true;
    let failed = false;
    if (evict.allEntries !== undefined) {
      failed = (await this.engine.clear(evict.allEntries === true ? '' : evict.allEntries, evict.name)).failed;
    }
    if (evict.tags !== undefined) {
      const tags = typeof evict.tags === 'function' ? evict.tags(...args) : evict.tags;
      if ((await this.engine.invalidateTags(tags, evict.name)).failed) failed = true;
    }
    const keys: string[] = [];
    if (evict.key) keys.push(this.engine.redisKey(evict.key(args)));
    if (evict.keysOf) for (const key of evict.keysOf(...args)) keys.push(this.engine.userKey(key));
    if (keys.length > 0 && (await this.engine.delete(keys, evict.name)).failed) failed = true;
    return !failed;
  }
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
    });
  }
  return {
    ttlMs: write.ttlMs,
    retainMs: write.retainMs,
    cacheNull: write.cacheNull,
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

/** How long past its TTL a value is kept: long enough for the longer of the two stale windows. */
function retainOf({ staleWhileRevalidateMs, graceMs }: { staleWhileRevalidateMs: number; graceMs: number }): number {
  return Math.max(staleWhileRevalidateMs, graceMs);
}

/** Runs the decorated method for one call, its value (or error) as a Promise (see `settle`). */
function invokerOf(
  instance: object,
  original: (...args: unknown[]) => unknown,
  args: unknown[],
): () => Promise<unknown> {
  return () => {
    try {
      return settle(original.apply(instance, args));
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

/** A method's return value as a Promise: an Observable contributes its last value, or NO_VALUE. */
function settle(value: unknown): Promise<unknown> {
  return isObservable(value) ? lastValueFrom(value, { defaultValue: NO_VALUE }) : Promise.resolve(value);
}
