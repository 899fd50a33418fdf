// Keys: typed encoding of arguments, hashing of unsafe or long parts, templates and key builders.
// What an attacker or a mistake could do with them is in test/unit/hostile-input/keys.spec.ts.
import { RedisCacheConfigError } from 'nestjs-redis-cache';
import { encodeArgument } from '../../lib/core/argument-encoding.js';
import { defaultKeyBuilder, keyBuilder } from '../../lib/core/cache-method-plan.js';
import { safeKey, safeKeyPart, stringPart } from '../../lib/core/key-hash.js';
import { KeyTemplate } from '../../lib/core/key-template.js';

const SAFE = /^[A-Za-z0-9:_\-.{}#~]*$/;
const HASH = /^#[A-Za-z0-9_-]{22}$/;

describe('encodeArgument', () => {
  it('renders short safe strings and numbers as themselves, other scalars typed', () => {
    expect(encodeArgument('abc')).toBe('abc');
    expect(encodeArgument(42)).toBe('42');
    expect(encodeArgument(-1.5)).toBe('-1.5');
    expect(encodeArgument(true)).toBe('~true');
    expect(encodeArgument(10n)).toBe('~10n');
    expect(encodeArgument(null)).toBe('~null');
    expect(encodeArgument(undefined)).toBe('~undefined');
    expect(encodeArgument(new Date(5))).toBe('~d5');
  });

  it('ignores object key order, at every depth', () => {
    expect(encodeArgument({ a: 1, b: 2 })).toBe(encodeArgument({ b: 2, a: 1 }));
    expect(encodeArgument({ x: { a: 1, b: [1, { d: 1, c: 2 }] } })).toBe(
      encodeArgument({ x: { b: [1, { c: 2, d: 1 }], a: 1 } }),
    );
    expect(encodeArgument({ a: 1 })).toMatch(HASH);
  });

  it('ignores Map and Set insertion order', () => {
    const ab = new Map([
      ['a', 1],
      ['b', 2],
    ]);
    const ba = new Map([
      ['b', 2],
      ['a', 1],
    ]);
    expect(encodeArgument(ab)).toBe(encodeArgument(ba));
    expect(encodeArgument(new Set([1, 2, 3]))).toBe(encodeArgument(new Set([3, 1, 2])));
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
      new Uint8Array([97, 98]),
      { a: 1n },
      new URL('https://example.com/a'),
      new URL('https://example.com/b'),
      /a/g,
      /a/i,
    ].map(encodeArgument);
    expect(new Set(encodings).size).toBe(encodings.length);
  });
});

describe('safe key parts', () => {
  it('keeps short safe parts as they are', () => {
    expect(safeKeyPart('user')).toBe('user');
    expect(stringPart('42')).toBe('42');
    expect(safeKey('post:{7}:comments.v2')).toBe('post:{7}:comments.v2');
  });

  it.each(['has space', 'a@b.c', 'ünïcödé', 'star*', 'x'.repeat(129), 'new\nline', '"quoted"', '#mark', '~mark'])(
    'hashes %p, marked with #',
    (part) => {
      const hashed = safeKeyPart(part);
      expect(hashed).toMatch(HASH);
      expect(safeKeyPart(part)).toBe(hashed);
      expect(stringPart(part)).toBe(hashed);
    },
  );

  it('keeps a part of exactly 128 safe characters and hashes 129', () => {
    expect(safeKeyPart('x'.repeat(128))).toBe('x'.repeat(128));
    expect(safeKeyPart('x'.repeat(129))).toMatch(HASH);
  });

  it('hashes a `:` in a substituted value so ["a:b"] and ["a","b"] differ', () => {
    expect(stringPart('a:b')).toMatch(HASH);
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

  it('hashes the same text the same way as a hand-written segment and as an argument', () => {
    expect(safeKey('user:alice@example.com')).toBe(`user:${encodeArgument('alice@example.com')}`);
  });
});

describe('KeyTemplate', () => {
  it('substitutes positional arguments and property paths', () => {
    const template = KeyTemplate.compile('post:{0.id}:comments:{1}', 'T.m');
    expect(template.render([{ id: 7 }, 3])).toBe('post:7:comments:3');
    expect(KeyTemplate.compile('u:{0.profile.name}', 'T.m').render([{ profile: { name: 'ada' } }])).toBe('u:ada');
    expect(KeyTemplate.compile('{1}:{0}', 'T.m').render(['a', 'b'])).toBe('b:a');
  });

  it('renders a missing property as a typed undefined instead of throwing', () => {
    expect(KeyTemplate.compile('u:{0.id}', 'T.m').render([null])).toBe('u:~undefined');
  });

  it('hashes unsafe substituted values and object arguments stably', () => {
    const template = KeyTemplate.compile('q:{0}', 'T.m');
    expect(template.render(['a b'])).toMatch(/^q:#[A-Za-z0-9_-]{22}$/);
    expect(template.render([{ a: 1, b: 2 }])).toBe(template.render([{ b: 2, a: 1 }]));
  });

  it('keeps literal braces as a Cluster hash tag', () => {
    expect(KeyTemplate.compile('{user:{0}}:profile', 'T.m').render([42])).toBe('{user:42}:profile');
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
    expect(build([42, 'x', true])).toBe('UsersService:find:42:x:~true');
    expect(build([{ a: 1, b: 2 }])).toBe(build([{ b: 2, a: 1 }]));
    expect(build([{ a: 1, b: 2 }])).toMatch(/^UsersService:find:#[A-Za-z0-9_-]{22}$/);
  });

  it('function keys are used as returned when safe, and sanitised when not', () => {
    expect(keyBuilder((id: number) => `user:${id}`, 'T.m')([5])).toBe('user:5');
    expect(keyBuilder((q: string) => `search:${q}`, 'T.m')(['a b'])).toMatch(/^search:#[A-Za-z0-9_-]{22}$/);
  });

  it('fromResult keys read the result and the arguments', () => {
    const build = keyBuilder({ fromResult: (post: { id: number }, tag: string) => `post:${post.id}:${tag}` }, 'T.m');
    expect(build(['x'], { id: 9 })).toBe('post:9:x');
  });
});
