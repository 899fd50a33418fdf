import * as zlib from 'node:zlib';
import { CacheSerializationError } from '../errors.js';

/** How a payload may be compressed: `node:zlib`'s gzip, brotli, and zstd where the running Node has it. */
export type CompressionAlgorithm = 'gzip' | 'brotli' | 'zstd';

/** The module's `compression` option after defaults and validation (options/resolve-options.ts). */
export interface CompressionSettings {
  readonly algorithm: CompressionAlgorithm;
  /** Payloads of at least this many bytes are compressed. */
  readonly threshold: number;
  /** The algorithm's level (gzip 1-9, brotli quality 0-11, zstd 1-19). */
  readonly level: number;
}

/**
 * No stored payload inflates past this: a garbled or hostile entry cannot make a reader allocate
 * more, and a payload larger than this is stored uncompressed, so every compressed entry stays readable.
 */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

/** Bytes in front of the compressed stream: the payload's length before compression (uint32 BE). */
const LENGTH_PREFIX = 4;

/** Output chunks are no larger than this, so a hostile stated length cannot reserve it all up front. */
const MAX_CHUNK = 1024 * 1024;

interface Algorithm {
  /** Its code in the entry's flags byte (core/cache-entry.ts): written to Redis, so never changed. */
  readonly code: number;
  readonly levels: { readonly min: number; readonly max: number; readonly default: number };
  compress(payload: Buffer, level: number): Buffer;
  /** Throws (a RangeError, a zlib error) for a stream that is garbled or inflates past `maxOutputLength`. */
  decompress(compressed: Buffer, options: zlib.ZlibOptions): Buffer;
}

/** zstd entered node:zlib in Node 22.15 / 23.8 (experimental there); the types here are Node 20's. */
interface ZstdZlib {
  zstdCompressSync?: (payload: Buffer, options: { params: Record<number, number> }) => Buffer;
  zstdDecompressSync?: (compressed: Buffer, options: zlib.ZlibOptions) => Buffer;
}
const zstd = zlib as ZstdZlib;
const zstdConstants = zlib.constants as unknown as Record<string, number>;

/**
 * Every algorithm this release knows, by name. A reader decodes each of them whatever its own
 * configuration: instances of one namespace may be configured differently while a deploy rolls.
 */
export const COMPRESSION_ALGORITHMS: Readonly<Record<CompressionAlgorithm, Algorithm>> = Object.freeze({
  gzip: {
    code: 1,
    // Level 4: on 50 KB values half the time of zlib's default 6 for one point of size more, and
    // much of level 1's speed (bench/compression.bench.ts). Inflating costs the same at every level.
    levels: { min: 1, max: 9, default: 4 },
    compress: (payload, level) => zlib.gzipSync(payload, { level }),
    decompress: (compressed, options) => zlib.gunzipSync(compressed, options),
  },
  brotli: {
    code: 2,
    // Brotli's default quality, 11, compresses a 50 KB value about 50x slower than quality 5 for a
    // value 7% smaller: far too slow for a cache write (bench/compression.bench.ts).
    levels: { min: 0, max: 11, default: 5 },
    compress: (payload, level) =>
      zlib.brotliCompressSync(payload, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: level,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: payload.length,
        },
      }),
    decompress: (compressed, options) => zlib.brotliDecompressSync(compressed, options),
  },
  zstd: {
    code: 3,
    levels: { min: 1, max: 19, default: 3 },
    // gzip and brotli streams end in a check the decoder verifies; zstd's is opt-in.
    compress: (payload, level) =>
      zstdSync('zstdCompressSync')(payload, {
        params: {
          [zstdConstants.ZSTD_c_compressionLevel]: level,
          [zstdConstants.ZSTD_c_checksumFlag]: 1,
        },
      }),
    decompress: (compressed, options) => zstdSync('zstdDecompressSync')(compressed, options),
  },
});

const BY_CODE = new Map(Object.entries(COMPRESSION_ALGORITHMS).map(([name, algorithm]) => [algorithm.code, name]));

/** Whether this Node's `node:zlib` can compress with `algorithm`. */
export function isCompressionAvailable(algorithm: CompressionAlgorithm): boolean {
  return algorithm !== 'zstd' || typeof zstd.zstdCompressSync === 'function';
}

/**
 * The bytes to store for a codec payload and the algorithm's code (0: stored as it is). A payload
 * below the threshold, past MAX_INFLATED_BYTES, or that compression would not make smaller, is
 * stored as it is. A compressed payload is its length before compression (uint32 BE), then the stream.
 */
export function compressPayload(
  payload: Buffer,
  settings: CompressionSettings | undefined,
): { bytes: Buffer; code: number } {
  if (settings === undefined || payload.length < settings.threshold || payload.length > MAX_INFLATED_BYTES) {
    return { bytes: payload, code: 0 };
  }
  const algorithm = COMPRESSION_ALGORITHMS[settings.algorithm];
  const stream = algorithm.compress(payload, settings.level);
  if (LENGTH_PREFIX + stream.length >= payload.length) return { bytes: payload, code: 0 };
  const bytes = Buffer.allocUnsafe(LENGTH_PREFIX + stream.length);
  bytes.writeUInt32BE(payload.length, 0);
  stream.copy(bytes, LENGTH_PREFIX);
  return { bytes, code: algorithm.code };
}

/**
 * The codec payload that `compressPayload` turned into `bytes` with the algorithm of `code`.
 * Inflates no more than the length the entry states, itself at most MAX_INFLATED_BYTES, so a
 * decompression bomb is refused before it is allocated.
 *
 * @throws CacheSerializationError (`direction: 'decode'`) for an unknown code, an algorithm this
 * Node lacks, a stated length past the bound, or a stream that is garbled or inflates to another length.
 */
export function decompressPayload(bytes: Buffer, code: number): Buffer {
  const name = BY_CODE.get(code) as CompressionAlgorithm | undefined;
  if (name === undefined) throw decodeError(`unknown compression code ${code}`);
  if (!isCompressionAvailable(name)) {
    throw decodeError(`${name} compression, which node:zlib of Node ${process.version} lacks`);
  }
  if (bytes.length <= LENGTH_PREFIX) throw decodeError(`a ${name} payload of ${bytes.length} bytes`);
  const length = bytes.readUInt32BE(0);
  if (length > MAX_INFLATED_BYTES) {
    throw decodeError(`a ${name} payload stating ${length} bytes, past the ${MAX_INFLATED_BYTES}-byte bound`);
  }
  let payload: Buffer;
  try {
    // One output chunk for the usual payload; no more than the stated length, whatever the stream says.
    payload = COMPRESSION_ALGORITHMS[name].decompress(bytes.subarray(LENGTH_PREFIX), {
      maxOutputLength: Math.max(length, 1),
      chunkSize: Math.min(Math.max(length, zlib.constants.Z_MIN_CHUNK), MAX_CHUNK),
    });
  } catch (err) {
    throw decodeError(`a ${name} payload that does not inflate to its stated ${length} bytes`, err);
  }
  if (payload.length !== length) {
    throw decodeError(`a ${name} payload inflating to ${payload.length} bytes, not its stated ${length}`);
  }
  return payload;
}

function zstdSync<K extends keyof ZstdZlib>(name: K): NonNullable<ZstdZlib[K]> {
  const fn = zstd[name];
  if (fn === undefined) throw new Error(`node:zlib of Node ${process.version} has no ${name}`);
  return fn;
}

function decodeError(what: string, cause?: unknown): CacheSerializationError {
  const reason = cause instanceof Error ? `: ${cause.message}` : '';
  return new CacheSerializationError(`Cannot decode ${what}${reason}`, 'decode', { cause });
}
