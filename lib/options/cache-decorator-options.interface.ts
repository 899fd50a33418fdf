import type { CacheLoadOptions, CacheRetentionOptions } from './cache-load-options.interface.js';
import type { L1Options, TtlOption } from './redis-cache-options.interface.js';

/**
 * The logical key of an entry (the Redis key is `${namespace}:${key}`):
 * - a function of the method's arguments: `(id: number) => \`user:${id}\``, returning a non-empty
 *   string (anything else, or a throw, makes the call skip the cache, logged once);
 * - a template with placeholders by position or by parameter name: `'user:{0}'`, `'user:{id}'`,
 *   `'post:{0.id}:comments:{1}'`. Checked when the class is defined: an unknown name, a position past
 *   the last parameter, unbalanced braces, two placeholders without a `:` between them, or (for
 *   `@Cacheable`) a template naming no argument of a method that takes some is an error.
 *
 * A substituted value stands as itself only when it is a short `[A-Za-z0-9_-.]` string or a number;
 * other scalars are typed (`~true`, `~null`) and everything else is hashed (`#` and 22 characters),
 * so user input never becomes a raw key name and distinct arguments never share a key. See the
 * README, "Keys".
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CacheKeyOption = string | ((...args: any[]) => string);

/**
 * The tags of a stored value, for invalidating many entries at once (`@CacheEvict({ tags })`,
 * `CacheService.invalidateTags`): a string, strings, or a function of the result and the arguments
 * returning them. Tags that are long or contain characters outside `[A-Za-z0-9:_-.{}]` are hashed.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type TagsOfResult = (result: any, ...args: any[]) => string | readonly string[];
export type CacheTagsOption = string | readonly string[] | TagsOfResult;

/** Tags to invalidate: a string, strings, or a function of the method's arguments returning them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CacheEvictTagsOption = string | readonly string[] | ((...args: any[]) => string | readonly string[]);

/** Options shared by the three decorators. */
export interface CacheDecoratorCommonOptions {
  /** Metrics name of the calls; default `ClassName.methodName`. */
  name?: string;
  /**
   * The cache to use, for an app with several: the `name` of its `RedisCacheModule.forRoot({ name })`.
   * Default: the default cache. The decorators of one method use one cache.
   */
  cache?: string;
  /** When it returns false for a call's arguments, the cache is bypassed entirely for that call. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  condition?: (...args: any[]) => boolean;
}

/**
 * Options of `@Cacheable` (cache-aside / read-through).
 *
 * @example
 * @Cacheable({ key: 'user:{0}', ttl: 'user_profile' })
 * async findUser(id: number): Promise<User | null> { ... }
 */
export interface CacheableOptions extends CacheDecoratorCommonOptions, CacheLoadOptions {
  /** The entry's logical key; default `${ClassName}:${methodName}:${stable encoding of the arguments}`. */
  key?: CacheKeyOption;
  /** Seconds, a duration (`'5m'`) or a `ttlProfiles` name; default the module's `ttl`. */
  ttl?: TtlOption;
  /** When it returns true for a result, the result is returned but not stored. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  unless?: (result: any, ...args: any[]) => boolean;
  /** Store `null`/`undefined` results with the module's `nullTtl` (negative caching). Default `true`. */
  cacheNull?: boolean;
  /**
   * Tags of the stored value (see `CacheTagsOption`). A tagged hit costs one more round trip (its
   * tags are checked), and a tagged load reads the invalidation epoch first.
   */
  tags?: CacheTagsOption;
  /**
   * The in-process tier for this method: `false` to opt out of the module's `l1`; `true` or `{ ttl }`
   * to use the module's memory (with a shorter or longer `ttl`); `{ max, ttl }` for a memory of its
   * own (`ttl` defaults to the module's). Default: the module's `l1`, if any.
   */
  l1?: boolean | Partial<L1Options>;
  /**
   * A list loader: the method's first argument is an array of ids and it returns one result per id,
   * in order (`findUsers(ids: number[]): Promise<Array<User | null>>`). Each id is cached under its
   * own key (`batch.key`, rendered for the id); the hits are read in one round trip (MGET per slot),
   * the method runs once with only the missing ids (in the caller's order, without duplicates), and
   * the caller gets every id's value in its own order. `ttl`, `cacheNull`, `condition` apply as for
   * single reads; `unless` and a `tags` function get `(itemResult, item)`. The load options
   * (`lock`, `staleWhileRevalidate`, `grace`, `earlyRefresh`, `timeout`...), `l1`, `key` and
   * `@CachePut`/`@CacheEvict` on the same method are refused when the class is defined. See the
   * README, "Batch reads".
   *
   * @example
   * @Cacheable({ batch: { key: 'user:{0}' }, ttl: 'user_profile' })
   * async findUsers(ids: number[]): Promise<Array<User | null>> { ... }
   */
  batch?: true | CacheBatchOptions;
}

/** `@Cacheable({ batch })`: how one id of a list loader is keyed. */
export interface CacheBatchOptions {
  /**
   * The logical key of ONE id: a template where `{0}` is the id (`'user:{0}'`, `'post:{0.id}'`), or a
   * function of the id. Other arguments of the method cannot be referenced. Default:
   * `${ClassName}:${methodName}:` followed by the id's encoding.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  key?: string | ((item: any) => string);
}

/** A key computed from the method's result (and arguments): `{ fromResult: (user) => \`user:${user.id}\` }`. */
export interface KeyFromResult {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  fromResult: (result: any, ...args: any[]) => string;
}

/**
 * Options of `@CachePut` (write-through): the method always runs, then its result is stored.
 *
 * @example
 * @CachePut({ key: 'user:{0}', ttl: 'user_profile' })
 * async updateUser(id: number, patch: Partial<User>): Promise<User> { ... }
 */
export interface CachePutOptions extends CacheDecoratorCommonOptions, CacheRetentionOptions {
  /** The entry written: a template, a function of the arguments, or `{ fromResult }`. Required. */
  key: CacheKeyOption | KeyFromResult;
  /** Seconds, a duration or a `ttlProfiles` name; default the module's `ttl`. */
  ttl?: TtlOption;
  /** When it returns true for a result, nothing is stored. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  unless?: (result: any, ...args: any[]) => boolean;
  /** Tags of the stored value (see `CacheTagsOption`). */
  tags?: CacheTagsOption;
}

/**
 * Options of `@CacheEvict`. At least one of `key`, `keys`, `tags` or `allEntries` is required.
 *
 * @example
 * @CacheEvict({ key: 'user:{0}' })
 * async deleteUser(id: number): Promise<void> { ... }
 *
 * @CacheEvict({ allEntries: 'posts:' })   // everything under `${namespace}:posts:`
 * async createPost(input: NewPost): Promise<Post> { ... }
 *
 * @CacheEvict({ tags: (post: Post) => [`author:${post.authorId}`] })   // every entry tagged so, in O(1)
 * async publish(post: Post): Promise<void> { ... }
 */
export interface CacheEvictOptions extends CacheDecoratorCommonOptions {
  /** One entry to evict. */
  key?: CacheKeyOption;
  /** Several entries to evict, from the arguments. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  keys?: (...args: any[]) => string[];
  /** `true`: every entry under the namespace; a string: every entry whose key starts with it. */
  allEntries?: true | string;
  /** Invalidates every entry with one of these tags, whatever their number (O(1) per tag). */
  tags?: CacheEvictTagsOption;
  /** Evict before the method runs (even if it then throws). Default `false`: after it resolved. */
  beforeInvocation?: boolean;
}
