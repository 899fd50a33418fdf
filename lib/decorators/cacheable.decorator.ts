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
 * @example
 * @Cacheable({ key: 'user:{0}', ttl: 'user_profile' })
 * async findUser(id: number): Promise<User | null> {
 *   return this.db.users.findOne(id);
 * }
 */
export function Cacheable(options: CacheableOptions = {}): CacheMethodDecorator {
  return (target, propertyKey, descriptor) =>
    addCacheOperation('Cacheable', target, propertyKey, descriptor, options.cache, (plan, where) => {
      if (plan.cacheable) throw new RedisCacheConfigError(`${where}: a method takes one @Cacheable`);
      checkTagsOption(options.tags, where);
      plan.cacheable = {
        options,
        key: options.key === undefined ? undefined : keyBuilder(options.key, where, templateContext(plan, true)),
      };
    });
}
