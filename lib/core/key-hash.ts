import { createHash } from 'node:crypto';
import { MAX_KEY_PART_LENGTH, SAFE_KEY_PART } from '../options/cache-defaults.js';

/** 22 base64url characters = 132 bits of SHA-256: collisions are not a practical concern. */
function hashPart(part: string): string {
  return createHash('sha256').update(part).digest('base64url').slice(0, 22);
}

/**
 * A part of a key as it may stand in Redis: kept when short and made of `[A-Za-z0-9:_-.{}]`,
 * otherwise replaced by its hash, so user input never becomes a raw key name.
 */
export function safeKeyPart(part: string): string {
  return part.length <= MAX_KEY_PART_LENGTH && SAFE_KEY_PART.test(part) ? part : hashPart(part);
}

const SAFE_VALUE = /^[A-Za-z0-9_\-.{}]*$/;

/**
 * A value substituted into a key (an argument, a template placeholder): like `safeKeyPart`, but a
 * `:` is hashed too, so `['a:b']` and `['a', 'b']` can never produce the same key.
 */
export function safeValuePart(part: string): string {
  return part.length <= MAX_KEY_PART_LENGTH && SAFE_VALUE.test(part) ? part : hashPart(part);
}

/** Sanitises a whole logical key segment by segment (segments are separated by `:`). */
export function safeKey(key: string): string {
  if (key.length <= MAX_KEY_PART_LENGTH && SAFE_KEY_PART.test(key)) return key;
  return key.split(':').map(safeKeyPart).join(':');
}
