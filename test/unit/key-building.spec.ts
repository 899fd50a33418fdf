// Keys: stable encoding of arguments, hashing of unsafe or long parts, templates and key builders.
import { RedisCacheConfigError } from 'nestjs-redis-cache';
import { defaultKeyBuilder, keyBuilder } from '../../lib/core/cache-method-plan.js';
import { safeKey, safeKeyPart, safeValuePart } from '../../lib/core/key-hash.js';
import { KeyTemplate } from '../../lib/core/key-template.js';
import { stableEncode } from '../../lib/core/stable-encoding.js';

const SAFE = /^[A-Za-z0-9:_\-.{}]*$/;
const HASH = /^[A-Za-z0-9_-]{22}$/;

describe('stableEncode', () => {
  it('renders scalars as themselves', () => {
    expect(stableEncode('abc')).toBe('abc');
    expect(stableEncode(42)).toBe('42');
    expect(stableEncode(true)).toBe('true');
    expect(stableEncode(10n)).toBe('10n');
    expect(stableEncode(null)).toBe('null');
    expect(stableEncode(undefined)).toBe('undefined');
  });

  it('ignores object key order, at every depth', () => {
    expect(stableEncode({ a: 1, b: 2 })).toBe(stableEncode({ b: 2, a: 1 }));
    expect(stableEncode({ x: { a: 1, b: [1, { d: 1, c: 2 }] } })).toBe(
      stableEncode({ x: { b: [1, { c: 2, d: 1 }], a: 1 } }),
    );
  });

  it('ignores Map and Set insertion order', () => {
    expect(
      stableEncode(
        new Map([
          ['a', 1],
          ['b', 2],
        ]),
      ),
    ).toBe(
      stableEncode(
        new Map([
          ['b', 2],
          ['a', 1],
        ]),
      ),
    );
    expect(stableEncode(new Set([1, 2, 3]))).toBe(stableEncode(new Set([3, 1, 2])));
  });

  it('tells different values apart', () => {
    const encodings = [
      { a: 1 },
      { a: '1' },
      { a: 1, b: undefined },
      [1, 2],
      [2, 1],
      new Map([['a', 1]]),
      new Set(['a']),
      new Date(0),
      new Date(1),
      Buffer.from('ab'),
      Buffer.from('ba'),
      { a: 1n },
    ].map(stableEncode);
    expect(new Set(encodings).size).toBe(encodings.length);
  });

  it('terminates on cycles', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(stableEncode(cyclic)).toContain('<cycle>');
  });
});

describe('safe key parts', () => {
  it('keeps short safe parts as they are', () => {
    expect(safeKeyPart('user:42')).toBe('user:42');
    expect(safeValuePart('42')).toBe('42');
    expect(safeKey('post:{7}:comments.v2')).toBe('post:{7}:comments.v2');
  });

  it.each(['has space', 'a@b.c', 'ünïcödé', 'star*', 'x'.repeat(129), 'new\nline', '"quoted"'])('hashes %p', (part) => {
    const hashed = safeKeyPart(part);
    expect(hashed).toMatch(HASH);
    expect(safeKeyPart(part)).toBe(hashed);
    expect(safeValuePart(part)).toBe(hashed);
  });

  it('keeps a part of exactly 128 safe characters and hashes 129', () => {
    expect(safeKeyPart('x'.repeat(128))).toBe('x'.repeat(128));
    expect(safeKeyPart('x'.repeat(129))).toMatch(HASH);
  });

  it('hashes a `:` in a substituted value so ["a:b"] and ["a","b"] differ', () => {
    expect(safeValuePart('a:b')).toMatch(HASH);
    const build = defaultKeyBuilder('S', 'm');
    expect(build(['a:b'])).not.toBe(build(['a', 'b']));
  });

  it('sanitises a whole key segment by segment', () => {
    const key = safeKey('search:hello world:page:2');
    const [head, hashed, page, two] = key.split(':');
    expect([head, page, two]).toEqual(['search', 'page', '2']);
    expect(hashed).toMatch(HASH);
    expect(key).toMatch(SAFE);
  });
});

describe('KeyTemplate', () => {
  it('substitutes positional arguments and property paths', () => {
    const template = KeyTemplate.compile('post:{0.id}:comments:{1}', 'T.m');
    expect(template.render([{ id: 7 }, 3])).toBe('post:7:comments:3');
    expect(KeyTemplate.compile('u:{0.profile.name}', 'T.m').render([{ profile: { name: 'ada' } }])).toBe('u:ada');
    expect(KeyTemplate.compile('{1}-{0}', 'T.m').render(['a', 'b'])).toBe('b-a');
  });

  it('renders a missing property as undefined instead of throwing', () => {
    expect(KeyTemplate.compile('u:{0.id}', 'T.m').render([null])).toBe('u:undefined');
  });

  it('hashes unsafe substituted values and object arguments stably', () => {
    const template = KeyTemplate.compile('q:{0}', 'T.m');
    expect(template.render(['a b'])).toMatch(/^q:[A-Za-z0-9_-]{22}$/);
    expect(template.render([{ a: 1, b: 2 }])).toBe(template.render([{ b: 2, a: 1 }]));
  });

  it('rejects unsafe literal text when the class is defined, naming where', () => {
    expect(() => KeyTemplate.compile('user name:{0}', 'Users.find @Cacheable')).toThrow(RedisCacheConfigError);
    expect(() => KeyTemplate.compile('user name:{0}', 'Users.find @Cacheable')).toThrow(
      /Users\.find @Cacheable: key template 'user name:\{0\}'/,
    );
  });
});

describe('key builders', () => {
  it('default key: ClassName:methodName: then the arguments, colon-separated', () => {
    const build = defaultKeyBuilder('UsersService', 'find');
    expect(build([])).toBe('UsersService:find:');
    expect(build([42])).toBe('UsersService:find:42');
    expect(build([42, 'x', true])).toBe('UsersService:find:42:x:true');
    expect(build([{ a: 1, b: 2 }])).toBe(build([{ b: 2, a: 1 }]));
    expect(build([{ a: 1, b: 2 }])).toMatch(/^UsersService:find:[A-Za-z0-9_-]{22}$/);
  });

  it('function keys are used as returned when safe, and sanitised when not', () => {
    expect(keyBuilder((id: number) => `user:${id}`, 'T.m')([5])).toBe('user:5');
    expect(keyBuilder((q: string) => `search:${q}`, 'T.m')(['a b'])).toMatch(/^search:[A-Za-z0-9_-]{22}$/);
  });

  it('fromResult keys read the result and the arguments', () => {
    const build = keyBuilder({ fromResult: (post: { id: number }, tag: string) => `post:${post.id}:${tag}` }, 'T.m');
    expect(build(['x'], { id: 9 })).toBe('post:9:x');
  });
});
