// Hostile input, keys (issue "Hostile input and lost state", items 1 and 6): no argument can steer a
// call onto another call's key, and no template silently names every call alike. What these keys
// then do on Redis is in test/integration/hostile-input/.
import { createHash } from 'node:crypto';
import { Cacheable, CacheEvict, CachePut, RedisCacheConfigError } from 'nestjs-redis-cache';
import { encodeArgument, UnkeyableValueError } from '../../../lib/core/argument-encoding.js';
import { defaultKeyBuilder, keyBuilder } from '../../../lib/core/cache-method-plan.js';
import { MAX_KEY_LENGTH, safeKey } from '../../../lib/core/key-hash.js';
import { KeyTemplate } from '../../../lib/core/key-template.js';
import { methodParameters } from '../../../lib/core/method-parameters.js';

/** What a key part may be: a literal of `[A-Za-z0-9_-.]`, a `#` hash, or a `~` typed scalar. */
const PART = /^([A-Za-z0-9_\-.]+|#[A-Za-z0-9_-]{22}|~[A-Za-z0-9_\-.]+)$/;

describe('hashed key parts can never equal literal parts', () => {
  const victim = 'José Ü';
  // What the previous key scheme stored for the victim: 22 bare base64url characters, which are also
  // a valid literal. An attacker who registered that text as a handle got the victim's key.
  const forged = createHash('sha256').update(victim).digest('base64url').slice(0, 22);
  const template = KeyTemplate.compile('user:{0}', 'T.m');

  it("the victim's key and the forged literal's key differ", () => {
    expect(forged).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(template.render([victim])).not.toBe(template.render([forged]));
    expect(template.render([victim])).toMatch(/^user:#/);
    expect(template.render([forged])).toBe(`user:${forged}`);
  });

  it('an input that looks like a hash (with the mark) is itself hashed', () => {
    const hashed = template.render([victim]).slice('user:'.length);
    expect(template.render([hashed])).not.toBe(template.render([victim]));
  });

  it('every part of a generated key is a literal, a marked hash or a marked typed scalar', () => {
    const inputs: unknown[] = [
      'a',
      '',
      ' ',
      'a:b',
      '{tag}',
      '#x',
      '~true',
      '@epoch',
      'x'.repeat(200),
      0,
      -0,
      1.5,
      1e21,
      NaN,
      true,
      null,
      undefined,
      7n,
      { a: 1 },
      [1],
      new Date(0),
    ];
    const build = defaultKeyBuilder('Svc', 'm');
    for (const input of inputs) {
      const part = build([input]).slice('Svc:m:'.length);
      expect(part).toMatch(PART);
    }
  });
});

describe('distinct arguments never share a key', () => {
  const build = defaultKeyBuilder('Svc', 'm');
  const template = KeyTemplate.compile('k:{0}', 'T.m');

  it.each<[string, unknown, unknown]>([
    ['undefined / "undefined"', undefined, 'undefined'],
    ['null / "null"', null, 'null'],
    ['true / "true"', true, 'true'],
    ['false / "false"', false, 'false'],
    ['{a:1} / \'{"a":1}\'', { a: 1 }, '{"a":1}'],
    ['7n / "7n"', 7n, '7n'],
    ['a Date / its ISO text', new Date(0), new Date(0).toISOString()],
    ['[1] / "[1]"', [1], '[1]'],
    ['{a:"1"} / {a:1}', { a: '1' }, { a: 1 }],
    ['a Buffer / a Uint8Array of the same bytes', Buffer.from('ab'), new Uint8Array([97, 98])],
  ])('%s', (_label, a, b) => {
    expect(build([a])).not.toBe(build([b]));
    expect(template.render([a])).not.toBe(template.render([b]));
  });

  it("f() and f('') differ, and so do f(undefined) and f()", () => {
    expect(build([])).not.toBe(build(['']));
    expect(build([])).not.toBe(build([undefined]));
  });

  it('a number and its decimal text share an entry on purpose (route parameters), nothing else does', () => {
    expect(build([42])).toBe(build(['42']));
    expect(build([1.5])).toBe(build(['1.5']));
    expect(build([1e21])).not.toBe(build(['1e+21']));
  });

  it('URLs and RegExps are encoded by what they say', () => {
    expect(encodeArgument(new URL('https://a.example/x'))).not.toBe(encodeArgument(new URL('https://a.example/y')));
    expect(encodeArgument(new URL('https://a.example/x'))).toBe(encodeArgument(new URL('https://a.example/x')));
    expect(encodeArgument(/a+/g)).not.toBe(encodeArgument(/a+/));
  });

  it('class instances: by toJSON(), else by their enumerable fields and class', () => {
    class Money {
      constructor(private readonly cents: number) {}
      toJSON() {
        return `${this.cents}c`;
      }
    }
    class Query {
      constructor(
        public page: number,
        public size: number,
      ) {}
    }
    class Other {
      constructor(
        public page: number,
        public size: number,
      ) {}
    }
    expect(encodeArgument(new Money(1))).not.toBe(encodeArgument(new Money(2)));
    expect(encodeArgument(new Query(1, 10))).toBe(encodeArgument(new Query(1, 10)));
    expect(encodeArgument(new Query(1, 10))).not.toBe(encodeArgument(new Query(2, 10)));
    expect(encodeArgument(new Query(1, 10))).not.toBe(encodeArgument(new Other(1, 10)));
  });

  it.each<[string, () => unknown]>([
    [
      'an instance whose state is private (#fields)',
      () => {
        class Secret {
          #id: number;
          constructor(id: number) {
            this.#id = id;
          }
          get id() {
            return this.#id;
          }
        }
        return new Secret(1);
      },
    ],
    ['an Invalid Date', () => new Date('nope')],
    ['a function', () => () => 1],
    ['a symbol', () => Symbol('s')],
    ['a Promise', () => Promise.resolve(1)],
    ['a function inside an object', () => ({ callback: () => 1 })],
  ])('%s cannot name a call: refused (the call then bypasses the cache), never a shared key', (_label, make) => {
    expect(() => encodeArgument(make())).toThrow(UnkeyableValueError);
    expect(() => build([make()])).toThrow(UnkeyableValueError);
  });

  it('names the argument that cannot name the call', () => {
    try {
      build([1, new Date('nope')]);
      throw new Error('expected an UnkeyableValueError');
    } catch (err) {
      expect(err).toBeInstanceOf(UnkeyableValueError);
      expect((err as UnkeyableValueError).argument).toBe('argument 1');
      expect((err as UnkeyableValueError).reason).toBe('an Invalid Date');
    }
  });
});

describe('encoding an argument is bounded in time and size', () => {
  it('shared substructure is refused at once, however deep (no exponential walk)', () => {
    // 2^40 paths through 40 objects: walked naively, this never finishes.
    let node: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 40; i++) node = { left: node, right: node };
    const started = performance.now();
    expect(() => encodeArgument(node)).toThrow(/referenced twice/);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('a cycle is refused', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeArgument(cyclic)).toThrow(UnkeyableValueError);
  });

  it('a huge object (a request passed by mistake) is refused, not walked to the end', () => {
    const huge = Array.from({ length: 1_000_000 }, (_, i) => ({ i }));
    const started = performance.now();
    expect(() => encodeArgument(huge)).toThrow(/more than 5000 values/);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(() => encodeArgument({ text: 'x'.repeat(100_000) })).toThrow(/longer than/);
  });

  it('a whole key has a bounded length: past it, the key is its hash', () => {
    const build = defaultKeyBuilder('Svc', 'm');
    const key = build(Array.from({ length: 200 }, (_, i) => `arg${i}`));
    expect(key).toMatch(/^#[A-Za-z0-9_-]{22}$/);
    expect(build(Array.from({ length: 200 }, (_, i) => `arg${i}`))).toBe(key);
    expect(safeKey('a:'.repeat(MAX_KEY_LENGTH))).toMatch(/^#/);
  });
});

describe('braces from argument values are hashed: only templates place hash tags', () => {
  it.each(['{user}', 'a{b}c', '}', '{'])('%p', (value) => {
    const key = KeyTemplate.compile('{user:{0}}:profile', 'T.m').render([value]);
    expect(key.startsWith('{user:#')).toBe(true);
    expect(encodeArgument(value)).toMatch(/^#/);
  });
});

describe('a template that cannot name the call fails when the class is defined', () => {
  it("a named placeholder that is not a parameter ('user:{id}' on find(userId))", () => {
    expect(() => {
      class Users {
        @Cacheable({ key: 'user:{id}' })
        async find(userId: number): Promise<number> {
          return userId;
        }
      }
      return Users;
    }).toThrow(/Users\.find @Cacheable: key template 'user:\{id\}' uses \{id\}, but 'id' is not a parameter/);
  });

  it('a named placeholder that is a parameter resolves from the parameter names', () => {
    class Users {
      @Cacheable({ key: 'user:{id}:{opts.lang}' })
      async find(id: number, opts: { lang: string }): Promise<number> {
        return id + opts.lang.length;
      }
    }
    expect(Users).toBeDefined();
    const build = keyBuilder('user:{id}:{opts.lang}', 'T.m', {
      parameters: { names: ['id', 'opts'], restIndex: undefined },
    });
    expect(build([7, { lang: 'en' }])).toBe('user:7:en');
  });

  it("a position past the last parameter ('user:{3}' on a one-parameter method)", () => {
    expect(() => {
      class Users {
        @Cacheable({ key: 'user:{3}' })
        async find(id: number): Promise<number> {
          return id;
        }
      }
      return Users;
    }).toThrow(/uses \{3\}, but the method has 1 parameter/);
  });

  it('a position past the rest parameter is allowed', () => {
    class Users {
      @Cacheable({ key: 'pair:{0}:{1}' })
      async find(...ids: number[]): Promise<number> {
        return ids.length;
      }
    }
    expect(Users).toBeDefined();
  });

  it("unbalanced braces ('user:{0')", () => {
    expect(() => {
      class Users {
        @Cacheable({ key: 'user:{0' })
        async find(id: number): Promise<number> {
          return id;
        }
      }
      return Users;
    }).toThrow(/has unbalanced braces/);
  });

  it('a @Cacheable template naming no argument of a method that takes some', () => {
    expect(() => {
      class Users {
        @Cacheable({ key: 'users' })
        async find(id: number): Promise<number> {
          return id;
        }
      }
      return Users;
    }).toThrow(/names none of the arguments, so every call would share one entry/);
  });

  it('a constant key is fine where it is meant: an eviction or a put, or a method without parameters', () => {
    class Config {
      @Cacheable({ key: 'config' })
      async get(): Promise<number> {
        return 1;
      }
      @CacheEvict({ key: 'config' })
      @CachePut({ key: 'config:last' })
      async set(value: number): Promise<number> {
        return value;
      }
    }
    expect(Config).toBeDefined();
  });

  it("two placeholders without a ':' between them ('a-b' + 'c' and 'a' + 'b-c' would meet)", () => {
    expect(() => KeyTemplate.compile('{0}-{1}', 'T.m')).toThrow(/two placeholders without a ':' between them/);
    expect(() => KeyTemplate.compile('{0}{1}', 'T.m')).toThrow(RedisCacheConfigError);
    expect(KeyTemplate.compile('{0}:{1}', 'T.m').render(['a-b', 'c'])).not.toBe(
      KeyTemplate.compile('{0}:{1}', 'T.m').render(['a', 'b-c']),
    );
  });
});

describe('methodParameters', () => {
  it('reads names, defaults, destructuring and rest parameters from the source', () => {
    class S {
      async a(id: number, options = { x: ')', y: [1, 2] }, { z }: { z: number } = { z: 1 }, ...rest: number[]) {
        return [id, options, z, rest];
      }
    }
    expect(methodParameters(S.prototype.a)).toEqual({ names: ['id', 'options', undefined, 'rest'], restIndex: 3 });
    expect(methodParameters(Math.max)).toBeUndefined();
  });
});
