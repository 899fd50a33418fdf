import { compileBatch } from '../core/batch-plan.js';
import { checkTagsOption, keyBuilder } from '../core/cache-method-plan.js';
import { RedisCacheConfigError } from '../errors.js';
import type { CacheableOptions } from '../options/cache-decorator-options.interface.js';
import { addCacheOperation, templateContext, type CacheMethodDecorator } from './cache-method-wrapper.js';

/**
 * Cache-aside / read-through: returns the cached result for the call's key, or runs the method,
 * stores its result (with a TTL, jittered) and returns it. Concurrent calls for one key in a
 * process run the method once. A method that rejects is never cached.
 *
 * Works on methods returning a Promise or an rxjs Observable (declare `: Observable<T>`), on any
 * provider or controller, and composes with `@CachePut` / `@CacheEvict` on the same method.
 *
 * With `batch`, a list loader: each id of the first argument is cached under its own key, the hits
 * read in one round trip and the method called once with the missing ids (see `CacheableOptions.batch`).
 *
 * @example
 * @Cacheable({ key: 'user:{0}', ttl: 'user_profile' })
 * async findUser(id: number): Promise<User | null> {
 *   return this.db.users.findOne(id);
 * }
 *
 * @Cacheable({ batch: { key: 'user:{0}' }, ttl: 'user_profile' })
 * async findUsers(ids: number[]): Promise<Array<User | null>> {
 *   const found = await this.db.users.findByIds(ids);
 *   return ids.map((id) => found.find((user) => user.id === id) ?? null);
 * }
 */
export function Cacheable(options: CacheableOptions = {}): CacheMethodDecorator {
  return (target, propertyKey, descriptor) =>
    addCacheOperation('Cacheable', target, propertyKey, descriptor, options.cache, (plan, where) => {
      if (plan.cacheable) throw new RedisCacheConfigError(`${where}: a method takes one @Cacheable`);
      checkTagsOption(options.tags, where);
      if (options.batch !== undefined) {
        plan.cacheable = { options, batch: compileBatch(options, plan, where) };
        return;
      }
      plan.cacheable = {
        options,
        key: options.key === undefined ? undefined : keyBuilder(options.key, where, templateContext(plan, true)),
      };
    });
}
