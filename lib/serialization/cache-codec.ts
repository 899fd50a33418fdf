import { MsgpackCacheCodec } from './msgpack-cache-codec.js';

/**
 * Turns a cached value into the bytes stored in Redis and back. Internal, and not an option: every
 * instance sharing a namespace must read what the others write, and an entry does not record which
 * codec wrote it.
 *
 * Implementations must round-trip everything the public contract promises (plain data, `Date`,
 * `BigInt`, `Map`, `Set`, `Buffer`/`Uint8Array`, top-level `undefined`) and report every failure as a
 * `CacheSerializationError`: `direction: 'encode'` for values that cannot be stored (a cycle, a
 * function, a symbol), `direction: 'decode'` for payloads that cannot be read (foreign, truncated,
 * garbage). They never throw anything else, so the caller can treat one error type as "not cached"
 * or "miss".
 *
 * @example
 * const codec: CacheCodec = createDefaultCodec();
 * const payload = codec.encode({ id: 1, seenAt: new Date() });
 * await redis.set('cache:user:1', payload, 'PX', 60_000);
 * const value = codec.decode((await redis.getBuffer('cache:user:1'))!);
 */
export interface CacheCodec {
  /** Encodes a value. Throws `CacheSerializationError` (`direction: 'encode'`) if it cannot. */
  encode(value: unknown): Buffer;
  /** Decodes a payload written by `encode`. Throws `CacheSerializationError` (`direction: 'decode'`). */
  decode(payload: Buffer): unknown;
}

/**
 * The codec the module uses: {@link MsgpackCacheCodec}. MessagePack won the
 * measurement in `bench/codec.bench.ts` against tagged JSON on speed and size, and keeps
 * `undefined`, `NaN`, `Infinity` and binary data without extra tagging.
 *
 * @example
 * const codec = createDefaultCodec();
 * codec.decode(codec.encode(new Map([[1, new Set(['a'])]]))); // Map { 1 => Set { 'a' } }
 */
export function createDefaultCodec(): CacheCodec {
  return new MsgpackCacheCodec();
}
