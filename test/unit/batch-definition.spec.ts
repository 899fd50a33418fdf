// @Cacheable({ batch }) when the class is defined: what a list loader's options may say, and the
// RedisCacheConfigError (naming Class.method) for what they may not.
import 'reflect-metadata';
import { Cacheable, CacheEvict, CachePut, type CacheableOptions } from 'nestjs-redis-cache';
import { configError } from '../support/config-error.js';

/** Defines a class with one list loader `find(ids, extra)` decorated with `options`. */
function defineLoader(options: CacheableOptions): () => unknown {
  return () => {
    class Users {
      @Cacheable(options)
      async find(ids: number[], _extra?: string): Promise<number[]> {
        return ids;
      }
    }
    return Users;
  };
}

describe('@Cacheable({ batch }) when the class is defined', () => {
  it.each<[string, CacheableOptions]>([
    ['a template with {0}', { batch: { key: 'user:{0}' } }],
    ['a path of the item', { batch: { key: 'post:{0.id}:{0.lang}' } }],
    ['a hash tag and {0}', { batch: { key: '{users:}user:{0}' } }],
    ['a key function of the item', { batch: { key: (id: number) => `user:${id}` } }],
    ['the default key', { batch: true }],
    ['no key', { batch: {} }],
    [
      'ttl, cacheNull, condition, unless, tags, name, l1: false',
      {
        batch: { key: 'u:{0}' },
        ttl: '5m',
        cacheNull: false,
        condition: () => true,
        unless: () => false,
        tags: (_user: unknown, id: number) => [`user:${id}`],
        name: 'users',
        l1: false,
      },
    ],
  ])('accepts %s', (_, options) => {
    expect(defineLoader(options)).not.toThrow();
  });

  it.each<[string, CacheableOptions, RegExp]>([
    ['key beside batch', { key: 'user:{0}', batch: true }, /batch reads take the key of one id in batch\.key/],
    ['a load option', { batch: true, staleWhileRevalidate: 30 }, /batch reads do not support staleWhileRevalidate/],
    ['lock', { batch: true, lock: false }, /batch reads do not support lock/],
    ['timeout', { batch: true, timeout: 100 }, /batch reads do not support timeout/],
    ['l1', { batch: true, l1: true }, /batch reads do not use the in-process tier/],
    [
      'batch that is neither true nor an object',
      { batch: 'user:{0}' as unknown as true },
      /batch must be true or \{ key \}/,
    ],
    [
      'a key that is neither a template nor a function',
      { batch: { key: 7 as unknown as string } },
      /batch key must be/,
    ],
    [
      'a placeholder past the item',
      { batch: { key: 'user:{1}' } },
      /batch key 'user:\{1\}' uses \{1\}, but it is rendered for each id: \{0\} is the id/,
    ],
    [
      'a named placeholder',
      { batch: { key: 'user:{ids}' } },
      /named placeholder \{ids\}.*other arguments cannot be referenced.*'\{ids:\}'/,
    ],
    [
      'a template naming no id',
      { batch: { key: 'users' } },
      /batch key 'users' names no id, so every id would share one entry/,
    ],
    ['unsafe template text', { batch: { key: 'user {0}' } }, /characters outside/],
  ])('refuses %s', (_, options, message) => {
    const error = configError(defineLoader(options));
    expect(error.message).toMatch(/^Users\.find @Cacheable: /);
    expect(error.message).toMatch(message);
  });

  it('refuses @CachePut or @CacheEvict on a list loader, in either order', () => {
    const putAfter = configError(() => {
      class A {
        @CachePut({ key: 'x:{0}' })
        @Cacheable({ batch: true })
        async find(ids: number[]): Promise<number[]> {
          return ids;
        }
      }
      return A;
    });
    expect(putAfter.message).toMatch(/A\.find @CachePut: a method with @Cacheable\(\{ batch \}\) takes no @CachePut/);
    const evictBefore = configError(() => {
      class B {
        @Cacheable({ batch: true })
        @CacheEvict({ key: 'x:{0}' })
        async find(ids: number[]): Promise<number[]> {
          return ids;
        }
      }
      return B;
    });
    expect(evictBefore.message).toMatch(/B\.find @Cacheable: batch methods take no @CachePut or @CacheEvict/);
  });

  it('refuses a method without the array of ids as its first parameter', () => {
    const none = configError(() => {
      class C {
        @Cacheable({ batch: true })
        async all(): Promise<number[]> {
          return [];
        }
      }
      return C;
    });
    expect(none.message).toMatch(/C\.all @Cacheable: batch methods take the array of ids as their first parameter/);
    const rest = configError(() => {
      class D {
        @Cacheable({ batch: true })
        async find(...ids: number[]): Promise<number[]> {
          return ids;
        }
      }
      return D;
    });
    expect(rest.message).toMatch(/first parameter/);
  });
});
