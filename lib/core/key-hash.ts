import { createHash } from 'node:crypto';

/**
 * Marks a hashed key part. No literal part may contain it (see LITERAL_PART), so a hash can never
 * equal text someone typed: the literal `'Xf3k...'` and the hash of `'José Ü'` stay apart.
 */
export const HASH_MARK = '#';
/**
 * Marks a typed scalar in a key part (`~true`, `~null`, `~undefined`, `~7n`, `~d1700000000000`), so
 * `true` and the string `'true'` get different keys. Literal parts never contain it either.
 */
export const TYPE_MARK = '~';
/**
 * Marks the module's own keys (`${namespace}:@...`: the epoch, tag and prefix markers, the L1
 * presence marker). A key built from user input never has it where a bookkeeping key has it: user
 * keys and bookkeeping keys live in disjoint spaces (key-encoding.ts, bookkeeping-keys.ts).
 */
export const BOOKKEEPING_MARK = '@';

/** Longest key part kept as it is; longer parts are hashed. */
export const MAX_KEY_PART_LENGTH = 128;
/**
 * Longest logical key kept as it is: a longer one (many arguments, a long template) is replaced by
 * the hash of the whole key, so no call makes an unbounded Redis key.
 */
export const MAX_KEY_LENGTH = 512;

/** A segment of a key written by hand (a template's text, a key function, `CacheService`): may carry `{}` for hash tags. */
const LITERAL_SEGMENT = /^[A-Za-z0-9_\-.{}]*$/;
/**
 * A value substituted into a key (an argument, a template placeholder): no `:` (`['a:b']` and
 * `['a', 'b']` must differ) and no `{}` (only a template may place a Cluster hash tag).
 */
const LITERAL_VALUE = /^[A-Za-z0-9_\-.]+$/;

/**
 * `#` and 22 base64url characters: 132 bits of SHA-256 of the part's kind and text. The kind keeps a
 * string, a number and an object with the same text apart; collisions are not a practical concern.
 */
export function hashPart(kind: string, text: string): string {
  return HASH_MARK + createHash('sha256').update(kind).update('\0').update(text).digest('base64url').slice(0, 22);
}

/** A string value as it stands in a key: itself when short and made of `[A-Za-z0-9_-.]`, else its hash. */
export function stringPart(value: string): string {
  return value.length <= MAX_KEY_PART_LENGTH && LITERAL_VALUE.test(value) ? value : hashPart('s', value);
}

/** True when `text` may stand in a key as it is (a value: no `:`, no `{}`). */
export function isLiteralValue(text: string): boolean {
  return text.length <= MAX_KEY_PART_LENGTH && LITERAL_VALUE.test(text);
}

/**
 * A segment of a hand-written key: kept when short and made of `[A-Za-z0-9_-.{}]`, otherwise its hash
 * (the same hash a string argument gets, so `del('user:alice@x.org')` reaches what `'user:{0}'` wrote
 * for `'alice@x.org'`).
 */
export function safeKeyPart(part: string): string {
  return part.length <= MAX_KEY_PART_LENGTH && LITERAL_SEGMENT.test(part) ? part : hashPart('s', part);
}

/**
 * Sanitises a whole hand-written logical key segment by segment (segments are separated by `:`), and
 * bounds its length. Hashed segments start with `#` and bookkeeping keys with `@`, neither of which a
 * kept segment contains, so no input reaches a hashed key or a key of the module's own.
 */
export function safeKey(key: string): string {
  const safe =
    key.length <= MAX_KEY_PART_LENGTH && /^[A-Za-z0-9:_\-.{}]*$/.test(key)
      ? key
      : key.split(':').map(safeKeyPart).join(':');
  return boundedKey(safe);
}

/** `key` itself, or the hash of the whole of it when longer than MAX_KEY_LENGTH. */
export function boundedKey(key: string): string {
  return key.length <= MAX_KEY_LENGTH ? key : hashPart('k', key);
}
