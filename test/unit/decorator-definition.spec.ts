// What the cache decorators do when a class is defined: reject what cannot be cached (naming
// Class.method), and keep every other decorator's metadata whichever order they are written in.
import 'reflect-metadata';
import { Controller, Get, SetMetadata, UseGuards, type CanActivate } from '@nestjs/common';
import { GUARDS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { Observable, of } from 'rxjs';
import { Cacheable, CacheEvict, CachePut, RedisCacheConfigError } from 'nestjs-redis-cache';

class AllowGuard implements CanActivate {
  canActivate(): boolean {
    return true;
  }
}

describe('decorating a method', () => {
  it('rejects a method whose declared return type is a plain Number when the class is defined', () => {
    const define = () => {
      class PriceService {
        // @ts-expect-error -- the decorator type refuses synchronous methods; this checks the runtime guard too
        @Cacheable()
        price(): number {
          return 1;
        }
      }
      return PriceService;
    };
    expect(define).toThrow(RedisCacheConfigError);
    expect(define).toThrow(/PriceService\.price @Cacheable: the method returns a plain Number/);
  });

  it('rejects the other synchronous return types too', () => {
    const define = () => {
      class Names {
        // @ts-expect-error -- synchronous
        @CacheEvict({ key: 'k' })
        all(): string[] {
          return [];
        }
      }
      return Names;
    };
    expect(define).toThrow(/Names\.all @CacheEvict: the method returns a plain Array/);
  });

  it('accepts Promise and Observable methods', () => {
    class Fine {
      @Cacheable()
      async a(): Promise<number> {
        return 1;
      }
      @Cacheable()
      b(): Observable<number> {
        return of(1);
      }
    }
    expect(new Fine()).toBeDefined();
  });

  it('rejects options that cannot work, naming Class.method and the decorator', () => {
    expect(() => {
      class A {
        @CacheEvict({})
        async x(): Promise<void> {}
      }
      return A;
    }).toThrow(/A\.x @CacheEvict: say what to evict with key, keys, tags or allEntries/);
    expect(() => {
      class B {
        @CachePut({} as never)
        async x(): Promise<number> {
          return 1;
        }
      }
      return B;
    }).toThrow(/B\.x @CachePut: key is required/);
    expect(() => {
      class C {
        @Cacheable()
        @Cacheable()
        async x(): Promise<number> {
          return 1;
        }
      }
      return C;
    }).toThrow(/C\.x @Cacheable: a method takes one @Cacheable/);
    expect(() => {
      class D {
        @Cacheable()
        static async x(): Promise<number> {
          return 1;
        }
      }
      return D;
    }).toThrow(/D\.x @Cacheable: static methods/);
    expect(() => {
      class E {
        @Cacheable({ key: 'user name:{0}' })
        async x(_id: number): Promise<number> {
          return 1;
        }
      }
      return E;
    }).toThrow(RedisCacheConfigError);
  });

  it('runs an instance Nest did not create as the plain method', async () => {
    class Plain {
      calls = 0;
      @Cacheable()
      async x(n: number): Promise<number> {
        this.calls++;
        return n * 2;
      }
    }
    const plain = new Plain();
    expect(await plain.x(2)).toBe(4);
    expect(await plain.x(2)).toBe(4);
    expect(plain.calls).toBe(2);
  });
});

describe('other decorators on a cached method', () => {
  @Controller('items')
  class ItemsController {
    // cache decorator below (applied first)
    @Get('above')
    @UseGuards(AllowGuard)
    @SetMetadata('role', 'admin')
    @Cacheable()
    async above(): Promise<string> {
      return 'a';
    }

    // cache decorator above (applied last)
    @Cacheable()
    @Get('below')
    @UseGuards(AllowGuard)
    @SetMetadata('role', 'user')
    async below(): Promise<string> {
      return 'b';
    }

    // between two cache decorators
    @CacheEvict({ key: 'x' })
    @SetMetadata('role', 'mixed')
    @Cacheable()
    @Get('mixed')
    async mixed(): Promise<string> {
      return 'm';
    }
  }

  it.each([
    ['above', 'above', 'admin'],
    ['below', 'below', 'user'],
    ['mixed', 'mixed', 'mixed'],
  ] as const)('%s: route, method, guards and custom metadata are on the handler', (method, path, role) => {
    const handler = ItemsController.prototype[method];
    expect(Reflect.getMetadata(PATH_METADATA, handler)).toBe(path);
    expect(Reflect.getMetadata(METHOD_METADATA, handler)).toBe(0); // RequestMethod.GET
    expect(Reflect.getMetadata('role', handler)).toBe(role);
    if (method !== 'mixed') expect(Reflect.getMetadata(GUARDS_METADATA, handler)).toEqual([AllowGuard]);
  });

  it('keeps the method name on the wrapper', () => {
    expect(ItemsController.prototype.above.name).toBe('above');
    expect(ItemsController.prototype.below.name).toBe('below');
  });
});
