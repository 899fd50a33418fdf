import { checkTagsOption, keyBuilder } from '../core/cache-method-plan.js';
import { checkPrefix } from '../core/invalidation/prefix-generations.js';
import { RedisCacheConfigError } from '../errors.js';
import type { CacheEvictOptions } from '../options/cache-decorator-options.interface.js';
import {
  addCacheOperation,
  refuseOnBatch,
  templateContext,
  type CacheMethodDecorator,
} from './cache-method-wrapper.js';

/**
 * Eviction: removes `key`, every key of `keys(...args)`, or everything under a prefix
 * (`allEntries`), after the method resolved — or before it runs with `beforeInvocation: true`.
 * A method that throws evicts nothing unless the eviction ran before it.
 *
 * @example
 * @CacheEvict({ key: 'user:{0}' })
 * async deleteUser(id: number): Promise<void> { ... }
 *
 * @CacheEvict({ keys: (postId: number) => [`post:${postId}`, `post:${postId}:comments`] })
 * async deletePost(postId: number): Promise<void> { ... }
 */
export function CacheEvict(options: CacheEvictOptions): CacheMethodDecorator {
  return (target, propertyKey, descriptor) =>
    addCacheOperation('CacheEvict', target, propertyKey, descriptor, options.cache, (plan, where) => {
      refuseOnBatch(plan, where);
      const { key, keys, allEntries, tags } = options ?? {};
      if (key === undefined && keys === undefined && allEntries === undefined && tags === undefined) {
        throw new RedisCacheConfigError(`${where}: say what to evict with key, keys, tags or allEntries`);
      }
      checkTagsOption(tags, where);
      if (keys !== undefined && typeof keys !== 'function') {
        throw new RedisCacheConfigError(`${where}: keys must be a function of the arguments returning logical keys`);
      }
      if (allEntries !== undefined && allEntries !== true && typeof allEntries !== 'string') {
        throw new RedisCacheConfigError(`${where}: allEntries must be true or a key prefix string`);
      }
      if (typeof allEntries === 'string') checkPrefix(allEntries, `${where} allEntries`);
      plan.evicts.push({ options, key: key === undefined ? undefined : keyBuilder(key, where, templateContext(plan)) });
    });
}
