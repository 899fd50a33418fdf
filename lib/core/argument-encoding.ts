import { hashPart, isLiteralValue, stringPart, TYPE_MARK } from './key-hash.js';

/**
 * An argument that cannot name a call: a function, a symbol, an `Invalid Date`, an object whose
 * enumerable state says nothing about it (an instance with no enumerable fields and no `toJSON`), a
 * value with shared or cyclic references, or one too large to encode (a request passed by mistake).
 * The call bypasses the cache (with a warning) rather than share a key with other calls.
 */
export class UnkeyableValueError extends Error {
  /** Which argument, as the key builder names it (`argument 1`, `{0.when}`), once it knows. */
  argument: string | undefined;

  constructor(readonly reason: string) {
    super(reason);
    this.name = 'UnkeyableValueError';
  }
}

/** `encodeArgument`, naming `argument` in the error when the value cannot name a call. */
export function encodeNamedArgument(value: unknown, argument: string): string {
  try {
    return encodeArgument(value);
  } catch (err) {
    if (err instanceof UnkeyableValueError) err.argument ??= argument;
    throw err;
  }
}

/** Most objects (nodes) one argument's encoding visits: arguments that name a call are small. */
const MAX_NODES = 5_000;
/** Longest encoding of one argument, in characters, before it is hashed. */
const MAX_ENCODED_LENGTH = 64 * 1024;

/**
 * An argument as one part of a key. Typed, so distinct arguments never share a key:
 *
 * - a string made of `[A-Za-z0-9_-.]` (at most 128 characters) and a finite number whose text is
 *   such a string stand as themselves (`42`, `'42'`, `'alice'`: numbers and their decimal text share
 *   an entry on purpose, for route parameters); any other string is hashed (`'', 'a:b', 'José'`);
 * - `true`, `false`, `null`, `undefined`, a bigint and a Date are typed scalars: `~true`, `~null`,
 *   `~undefined`, `~7n`, `~d1700000000000`;
 * - anything else (objects, arrays, Maps, Sets, bytes, URLs, class instances) is hashed from a typed,
 *   order-independent encoding (`{a:1,b:2}` and `{b:2,a:1}` share a key, `{a:1}` and `'{"a":1}'` don't).
 *
 * Throws UnkeyableValueError for a value that cannot name a call (see there).
 */
export function encodeArgument(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return stringPart(value);
    case 'number': {
      if (Number.isSafeInteger(value)) return String(value);
      const text = String(value);
      return isLiteralValue(text) ? text : hashPart('n', text);
    }
    case 'boolean':
      return value ? `${TYPE_MARK}true` : `${TYPE_MARK}false`;
    case 'undefined':
      return `${TYPE_MARK}undefined`;
    case 'bigint':
      return `${TYPE_MARK}${value}n`;
    case 'function':
      throw new UnkeyableValueError('a function');
    case 'symbol':
      throw new UnkeyableValueError('a symbol');
  }
  if (value === null) return `${TYPE_MARK}null`;
  if (value instanceof Date) return `${TYPE_MARK}d${dateTime(value)}`;
  const encoded = new StructuralEncoder().encode(value);
  return hashPart('o', encoded);
}

/**
 * The typed text of a nested value: strings quoted, numbers bare, every container tagged with its
 * kind, object keys and Map/Set members sorted. Visits each object once: a value met twice (a
 * cycle, or shared substructure that could make the walk exponential) is refused, as is one past
 * MAX_NODES or MAX_ENCODED_LENGTH.
 */
class StructuralEncoder {
  private nodes = 0;
  private length = 0;
  private readonly seen = new Set<object>();

  encode(value: unknown): string {
    return this.node(value);
  }

  private node(value: unknown): string {
    if (++this.nodes > MAX_NODES) throw new UnkeyableValueError(`more than ${MAX_NODES} values to encode`);
    const text = this.text(value);
    this.length += text.length;
    if (this.length > MAX_ENCODED_LENGTH) {
      throw new UnkeyableValueError(`an encoding longer than ${MAX_ENCODED_LENGTH} characters`);
    }
    return text;
  }

  private text(value: unknown): string {
    switch (typeof value) {
      case 'string':
        return JSON.stringify(value);
      case 'number':
        return Object.is(value, -0) ? '0' : String(value);
      case 'boolean':
        return value ? 'true' : 'false';
      case 'undefined':
        return 'undefined';
      case 'bigint':
        return `${value}n`;
      case 'function':
        throw new UnkeyableValueError('a function inside it');
      case 'symbol':
        throw new UnkeyableValueError('a symbol inside it');
    }
    if (value === null) return 'null';
    const object = value as object;
    if (this.seen.has(object)) throw new UnkeyableValueError('a value referenced twice (shared or cyclic)');
    this.seen.add(object);
    return this.object(object);
  }

  private object(value: object): string {
    if (Array.isArray(value)) {
      const items: string[] = [];
      for (let i = 0; i < value.length; i++) items.push(this.node(value[i]));
      return `[${items.join(',')}]`;
    }
    if (value instanceof Date) return `Date(${dateTime(value)})`;
    if (value instanceof Map) {
      const entries = [...value].map(([k, v]) => `${this.node(k)}=>${this.node(v)}`).sort();
      return `Map{${entries.join(',')}}`;
    }
    if (value instanceof Set)
      return `Set{${[...value]
        .map((item) => this.node(item))
        .sort()
        .join(',')}}`;
    if (ArrayBuffer.isView(value)) {
      return `${value.constructor.name}(${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')})`;
    }
    if (value instanceof ArrayBuffer) return `ArrayBuffer(${Buffer.from(value).toString('base64')})`;
    if (value instanceof URL) return `URL(${JSON.stringify(value.href)})`;
    if (value instanceof URLSearchParams) return `URLSearchParams(${JSON.stringify(value.toString())})`;
    if (value instanceof RegExp) return `RegExp(${JSON.stringify(value.source)},${value.flags})`;
    if (value instanceof String || value instanceof Number || value instanceof Boolean) {
      return `${value.constructor.name}(${this.node(value.valueOf())})`;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) return `{${this.fields(value)}}`;
    return this.instance(value);
  }

  /**
   * A class instance: what its `toJSON()` says (ORM entities, Decimal, Luxon), else its enumerable
   * fields (a DTO). One with neither says nothing of its state (private `#fields`, a socket, a
   * Promise): encoding it as `{}` would give every instance one key, so it is refused.
   */
  private instance(value: object): string {
    const name = (value.constructor as { name?: unknown } | undefined)?.name;
    const kind = typeof name === 'string' && name ? name : 'Object';
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return `${kind}(${this.node(toJSON.call(value))})`;
    if (Object.keys(value).length === 0) {
      throw new UnkeyableValueError(`an instance of ${kind} with no enumerable state and no toJSON()`);
    }
    return `${kind}{${this.fields(value)}}`;
  }

  private fields(value: object): string {
    return Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${this.node((value as Record<string, unknown>)[key])}`)
      .join(',');
  }
}

function dateTime(date: Date): number {
  const time = date.getTime();
  if (Number.isNaN(time)) throw new UnkeyableValueError('an Invalid Date');
  return time;
}
