import { Packr, RESERVE_START_SPACE, Unpackr, type Options } from 'msgpackr';
import { CacheSerializationError } from '../errors.js';
import type { CacheCodec } from './cache-codec.js';
import { findCycle } from './find-cycle.js';
import { PAYLOAD_FORMAT_VERSION, PAYLOAD_HEADER_LENGTH, PAYLOAD_MAGIC } from './payload-header.js';

/**
 * msgpackr settings, each chosen for cache fidelity:
 * - records stay on (the default): objects are written as records and `Map`s as MessagePack maps,
 *   which is what lets a `Map` come back as a `Map`. With `useRecords: false` both are maps and a
 *   `Map` decodes as a plain object. Records are also smaller and faster to decode for lists of
 *   same-shaped objects. Without shared `structures` each payload carries its own record
 *   definitions, so any process can decode it.
 * - `moreTypes`: `Set`, typed arrays (a `Uint8Array` stays a `Uint8Array`), `Error`, `RegExp`, and
 *   BigInts beyond 64 bits. BigInts within 64 bits are MessagePack int64/uint64, which decode as
 *   `bigint` (the default `int64AsType`); numbers never become int64, so they stay numbers.
 * - `copyBuffers`: a decoded `Buffer` owns its bytes instead of being a view of the payload, so it
 *   neither pins the whole payload in memory nor changes if the caller reuses the payload buffer.
 * - `writeFunction`: msgpackr would otherwise write a function as `undefined`, silently.
 * - no `structuredClone`: it would store cycles instead of rejecting them, and is slower. The
 *   decoder turns it off explicitly (`false`, not just absent): msgpackr otherwise still honours
 *   its reference extensions when reading, so a payload someone else wrote could decode into a
 *   cyclic value, or one whose shared references make it exponentially large to walk.
 * - `useToJSON` stays on: class instances with `toJSON()` (ORM entities, Decimal, Luxon) are
 *   stored the way they serialise to JSON rather than as their internals.
 */
const PACKR_OPTIONS: Options = {
  moreTypes: true,
  copyBuffers: true,
  writeFunction: rejectFunction,
};

/** `unpack` reads from here to the end, so decoding needs no `subarray` view per call. */
const BODY = { start: PAYLOAD_HEADER_LENGTH } as const;

/** `pack` leaves this many bytes free at the start of its output for the header: no copy. */
const RESERVE_HEADER = RESERVE_START_SPACE | PAYLOAD_HEADER_LENGTH;

/**
 * The default {@link CacheCodec}: a 2-byte header (`0xC1`, format version) followed by one
 * MessagePack value written by msgpackr.
 *
 * What comes back:
 * - `null`, booleans, numbers (including `NaN`, `±Infinity`; `-0` comes back as `0`), strings,
 *   arrays, plain objects, `Date` (ms precision), `bigint` of any size, `Map` (any key type), `Set`,
 *   `Buffer` as `Buffer`, `Uint8Array` and other typed arrays as their own type, `RegExp`, `Error`
 *   (name, message; no stack), and top-level `undefined` as `undefined`.
 * - an object property whose value is `undefined` is kept (`'key' in decoded` is true); array holes
 *   come back as `undefined` items.
 * - class instances come back as plain objects of their enumerable fields, or as what their
 *   `toJSON()` returns; symbol-keyed properties are dropped; an own `__proto__` key comes back as
 *   `__proto_` (msgpackr's guard against prototype pollution).
 *
 * One instance serves any number of calls: msgpackr instances are created once, here.
 *
 * @example
 * const codec = new MsgpackCacheCodec();
 * const payload = codec.encode({ id: 7n, tags: new Set(['a']) }); // <Buffer c1 01 ...>
 * codec.decode(payload); // { id: 7n, tags: Set { 'a' } }
 */
export class MsgpackCacheCodec implements CacheCodec {
  private readonly packr = new Packr(PACKR_OPTIONS);
  // A separate decoder: unpacking through the Packr would share (and trim) its record structures.
  private readonly unpackr = new Unpackr({ ...PACKR_OPTIONS, structuredClone: false });

  /**
   * Encodes `value`. The returned Buffer is a view of msgpackr's write slab, valid for as long as it
   * is referenced; it is never overwritten by later calls.
   *
   * @throws CacheSerializationError (`direction: 'encode'`) for a circular reference, a function or
   * a symbol anywhere in the value, or nesting too deep for the stack.
   */
  encode(value: unknown): Buffer {
    try {
      if (typeof value === 'object' && value !== null) {
        const cyclePath = findCycle(value);
        if (cyclePath !== undefined) {
          throw new CacheSerializationError(
            `Cannot encode a value with a circular reference (at ${cyclePath}) for the cache. ` +
              'Cache a plain tree of data: shared references are fine, cycles are not.',
            'encode',
          );
        }
      }
      const payload = this.packr.pack(value, RESERVE_HEADER);
      payload[0] = PAYLOAD_MAGIC;
      payload[1] = PAYLOAD_FORMAT_VERSION;
      return payload;
    } catch (error) {
      throw asEncodeError(error);
    }
  }

  /**
   * Decodes a payload written by {@link MsgpackCacheCodec.encode}.
   *
   * @throws CacheSerializationError (`direction: 'decode'`) when the payload is not a Buffer, is
   * empty or truncated, lacks the header (written by another client), has another format version,
   * or its body is not one complete MessagePack value. A body of random bytes that happens to be a
   * valid MessagePack value cannot be told apart from a real one; the header is what keeps foreign
   * writers out.
   */
  decode(payload: Buffer): unknown {
    checkHeader(payload);
    try {
      return this.unpackr.unpack(payload, BODY);
    } catch (error) {
      throw new CacheSerializationError(`Cannot decode a cache payload: ${messageOf(error)}`, 'decode', {
        cause: error,
      });
    }
  }
}

function checkHeader(payload: Buffer): void {
  if (!(payload instanceof Uint8Array)) {
    const got = payload === null ? 'null' : typeof payload;
    throw new CacheSerializationError(
      `Cannot decode a cache payload: expected a Buffer, got ${got} (read it with getBuffer, not get).`,
      'decode',
    );
  }
  // The magic byte first: a 1- or 2-byte value from another client ("7", "é") is foreign, not short.
  if (payload.length > 0 && payload[0] !== PAYLOAD_MAGIC) {
    throw new CacheSerializationError(
      `Cannot decode a cache payload starting with byte 0x${hex(payload[0])}: it lacks the ` +
        `0x${hex(PAYLOAD_MAGIC)} header, so another client wrote it.`,
      'decode',
    );
  }
  if (payload.length <= PAYLOAD_HEADER_LENGTH) {
    throw new CacheSerializationError(
      `Cannot decode a cache payload of ${payload.length} bytes: too short to hold the header and a value.`,
      'decode',
    );
  }
  if (payload[1] !== PAYLOAD_FORMAT_VERSION) {
    throw new CacheSerializationError(
      `Cannot decode a cache payload in format version ${payload[1]}: this version of ` +
        `nestjs-redis-cache reads format version ${PAYLOAD_FORMAT_VERSION}.`,
      'decode',
    );
  }
}

/** msgpackr's `writeFunction` hook: a function in the value is an error, not a silent `undefined`. */
function rejectFunction(...args: unknown[]): never {
  const fn = args[0] as { name?: string } | undefined;
  const name = fn?.name ? ` (${fn.name})` : '';
  throw new CacheSerializationError(
    `Cannot encode a function${name} for the cache. Cache data only: return plain objects, not ` +
      'instances with function-valued properties.',
    'encode',
  );
}

function asEncodeError(error: unknown): CacheSerializationError {
  if (error instanceof CacheSerializationError) return error;
  const message = messageOf(error);
  let reason: string;
  if (message.startsWith('Unknown type: symbol')) reason = 'it contains a symbol value';
  else if (error instanceof RangeError && message.includes('call stack')) {
    reason = 'it is nested too deeply';
  } else reason = message;
  return new CacheSerializationError(`Cannot encode a value for the cache: ${reason}.`, 'encode', {
    cause: error,
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, '0');
}
