import { checkTagsOption, keyBuilder } from '../core/cache-method-plan.js';
import { RedisCacheConfigError } from '../errors.js';
import type { CachePutOptions } from '../options/cache-decorator-options.interface.js';
import {
  addCacheOperation,
  refuseOnBatch,
  templateContext,
  type CacheMethodDecorator,
} from './cache-method-wrapper.js';

/**
 * Write-through: the method always runs; when it resolves, its result is stored under `key`
 * (before the call resolves, so the next read sees it). A method that rejects stores nothing.
 *
 * @example
 * @CachePut({ key: 'user:{0}', ttl: 'user_profile' })
 * async updateUser(id: number, patch: Partial<User>): Promise<User> { ... }
 *
 * @CachePut({ key: { fromResult: (post: Post) => `post:${post.id}` } })
 * async createPost(input: NewPost): Promise<Post> { ... }
 */
export function CachePut(options: CachePutOptions): CacheMethodDecorator {
  return (target, propertyKey, descriptor) =>
    addCacheOperation('CachePut', target, propertyKey, descriptor, options.cache, (plan, where) => {
      refuseOnBatch(plan, where);
      const key = options?.key;
      const valid =
        typeof key === 'string' ||
        typeof key === 'function' ||
        (typeof key === 'object' && key !== null && typeof key.fromResult === 'function');
      if (!valid) {
        throw new RedisCacheConfigError(
          `${where}: key is required: a template, a function of the arguments, or { fromResult }`,
        );
      }
      checkTagsOption(options.tags, where);
      plan.puts.push({ options, key: keyBuilder(key, where, templateContext(plan)) });
    });
}
