/**
 * Why the cache stores MessagePack: msgpackr against JSON with type tags, on payloads shaped like
 * what NestJS services cache. Prints ops/s for encode and decode, payload bytes, and the
 * msgpackr/JSON ratios measured in this same run, then what the codec's extra steps cost.
 *
 * Run: npm run bench:codec   (compiles this file and lib/serialization to .tmp/bench, then runs it)
 * Knobs: BENCH_SAMPLE_MS (default 100) and BENCH_SAMPLES (default 11).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { isNativeAccelerationEnabled, Packr, Unpackr } from 'msgpackr';
import { CacheSerializationError } from '../lib/errors.js';
import type { CacheCodec } from '../lib/serialization/cache-codec.js';
import { findCycle } from '../lib/serialization/find-cycle.js';
import { MsgpackCacheCodec } from '../lib/serialization/msgpack-cache-codec.js';
import { PAYLOAD_FORMAT_VERSION, PAYLOAD_HEADER_LENGTH, PAYLOAD_MAGIC } from '../lib/serialization/payload-header.js';
import { prng } from './support/fixtures.js';

const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_MS ?? 100);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 11);

// ---------------------------------------------------------------------------------------------
// The contender: JSON with type tags, kept lean. It lives here, not in lib/, because it lost.
// A tagged value is an object `{ "\u0000t": kind, "v": data }`; user objects that happen to own
// that key are escaped ('O'). Encoding uses one JSON.stringify replacer (which also gives JSON's
// own cycle check); decoding is a plain JSON.parse followed by one in-place walk reviving tags.
// ---------------------------------------------------------------------------------------------

const TAG = '\u0000t';

type Tagged = { [TAG]: string; v: unknown };

function tagged(kind: string, v: unknown): Tagged {
  return { [TAG]: kind, v };
}

function jsonReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  // `value` has been through toJSON() already (a Date is a string here); `raw` has not.
  const raw = this[key];
  switch (typeof raw) {
    case 'string':
    case 'boolean':
      return raw;
    case 'number':
      return Number.isFinite(raw) ? raw : tagged('n', String(raw));
    case 'object':
      if (raw === null) return null;
      if (raw instanceof Date) return tagged('D', raw.getTime());
      if (raw instanceof Uint8Array) {
        const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.length);
        return tagged(Buffer.isBuffer(raw) ? 'B' : 'U', bytes.toString('base64'));
      }
      if (raw instanceof Map) return tagged('M', Array.from(raw));
      if (raw instanceof Set) return tagged('S', Array.from(raw));
      if ((raw as Record<string, unknown>)[TAG] !== undefined) {
        return tagged('O', Object.entries(raw));
      }
      return value;
    case 'bigint':
      return tagged('N', raw.toString());
    case 'undefined':
      return tagged('u', 0);
    default:
      throw new CacheSerializationError(`Cannot encode a ${typeof raw} for the cache.`, 'encode');
  }
}

function revive(node: unknown): unknown {
  if (typeof node !== 'object' || node === null) return node;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) node[i] = revive(node[i]);
    return node;
  }
  const record = node as Record<string, unknown>;
  const kind = record[TAG];
  if (kind !== undefined) {
    const v = record.v;
    switch (kind) {
      case 'D':
        return new Date(revive(v) as number);
      case 'N':
        return BigInt(v as string);
      case 'M':
        return new Map(revive(v) as [unknown, unknown][]);
      case 'S':
        return new Set(revive(v) as unknown[]);
      case 'B':
        return Buffer.from(v as string, 'base64');
      case 'U':
        return new Uint8Array(Buffer.from(v as string, 'base64'));
      case 'u':
        return undefined;
      case 'n':
        return Number(v);
      case 'O':
        return Object.fromEntries(revive(v) as [string, unknown][]);
    }
  }
  for (const key in record) record[key] = revive(record[key]);
  return record;
}

/** Tagged JSON behind the same 2-byte header, so sizes compare like for like. */
class TaggedJsonCodec implements CacheCodec {
  encode(value: unknown): Buffer {
    let json: string;
    try {
      json = JSON.stringify(value, jsonReplacer);
    } catch (error) {
      if (error instanceof CacheSerializationError) throw error;
      throw new CacheSerializationError(`Cannot encode: ${String(error)}`, 'encode', {
        cause: error,
      });
    }
    const payload = Buffer.allocUnsafe(PAYLOAD_HEADER_LENGTH + Buffer.byteLength(json));
    payload[0] = PAYLOAD_MAGIC;
    payload[1] = PAYLOAD_FORMAT_VERSION;
    payload.write(json, PAYLOAD_HEADER_LENGTH);
    return payload;
  }

  decode(payload: Buffer): unknown {
    if (payload[0] !== PAYLOAD_MAGIC || payload[1] !== PAYLOAD_FORMAT_VERSION) {
      throw new CacheSerializationError('Not a cache payload.', 'decode');
    }
    try {
      return revive(JSON.parse(payload.toString('utf8', PAYLOAD_HEADER_LENGTH)));
    } catch (error) {
      throw new CacheSerializationError(`Cannot decode: ${String(error)}`, 'decode', {
        cause: error,
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Payloads. Deterministic (seeded) so runs compare.
// ---------------------------------------------------------------------------------------------

const random = prng(42);
const WORDS = (
  'cache redis nest module service value key ttl jitter stampede lock metric latency hit miss ' +
  'profile feed trending session user post comment tag author draft publish archive über café ' +
  'naïve 東京 данные'
).split(' ');

function words(n: number): string {
  let text = '';
  for (let i = 0; i < n; i++) text += (i ? ' ' : '') + WORDS[Math.floor(random() * WORDS.length)];
  return text;
}

function dateNear(i: number): Date {
  return new Date(1_735_689_600_000 + i * 3_600_123 + Math.floor(random() * 1000));
}

function user(id: number) {
  return {
    id,
    email: `user${id}@example.com`,
    name: `User ${id} ${words(1)}`,
    role: id % 3 === 0 ? 'admin' : 'member',
    active: true,
    emailVerified: id % 2 === 0,
    karma: Math.round(random() * 100_000) / 100,
    locale: 'en-GB',
    avatarUrl: `https://cdn.example.com/avatars/${id}.png`,
    createdAt: dateNear(id),
  };
}

function post(id: number) {
  return {
    id,
    authorId: 1000 + (id % 17),
    title: words(6),
    slug: `post-${id}-${words(2).replace(/\s/g, '-')}`,
    excerpt: words(30),
    tags: [words(1), words(1), words(1)],
    likes: Math.floor(random() * 5000),
    publishedAt: dateNear(id),
  };
}

function mapSetHeavy() {
  const permissions = new Map<number, Set<string>>();
  for (let userId = 1; userId <= 100; userId++) {
    permissions.set(userId, new Set(['read', words(1), words(1), userId % 5 ? 'write' : 'admin']));
  }
  const counters = new Map<string, number>();
  for (let i = 0; i < 100; i++) counters.set(`route:/api/${words(1)}/${i}`, Math.floor(random() * 1e6));
  const featureFlags = new Map<string, Map<string, boolean>>();
  for (let i = 0; i < 20; i++) {
    featureFlags.set(
      `tenant-${i}`,
      new Map([
        ['beta', i % 2 === 0],
        ['newFeed', i % 3 === 0],
      ]),
    );
  }
  return {
    permissions,
    counters,
    featureFlags,
    onlineUserIds: new Set(Array.from({ length: 200 }, (_, i) => i * 7)),
  };
}

function textHeavy() {
  const sections = [];
  let size = 0;
  for (let i = 0; size < 100_000; i++) {
    const paragraphs = [words(80), words(120), words(60)];
    size += paragraphs.reduce((n, p) => n + p.length, 0);
    sections.push({ heading: words(5), anchor: `section-${i}`, paragraphs });
  }
  return { id: 99, title: words(8), author: user(7), updatedAt: dateNear(1), sections };
}

const bytes10k = Buffer.alloc(10 * 1024);
for (let i = 0; i < bytes10k.length; i++) bytes10k[i] = Math.floor(random() * 256);

const payloads: Array<{ name: string; value: unknown }> = [
  { name: 'user object (10 fields, a Date)', value: user(1) },
  {
    name: '50 posts (8 fields, a Date each)',
    value: Array.from({ length: 50 }, (_, i) => post(i)),
  },
  { name: 'Map/Set-heavy structure', value: mapSetHeavy() },
  { name: '10 KB Buffer', value: bytes10k },
  { name: '100 KB text-heavy object', value: textHeavy() },
];

// ---------------------------------------------------------------------------------------------
// Harness. The machine this runs on is shared and noisy, so contenders are measured interleaved:
// one sample of each in turn, SAMPLES rounds. Each reports its median ops/s, and a ratio is the
// median of the per-round ratios, so a slow moment hits both sides of a ratio alike.
// ---------------------------------------------------------------------------------------------

let sink = 0;

/** Keeps results observable so nothing is optimised away. */
function touch(result: unknown): number {
  return result instanceof Uint8Array ? result.length : result === undefined ? 0 : 1;
}

/** Runs `fn` in batches for about `ms` milliseconds; returns ops/s. */
function sample(fn: () => unknown, batch: number, ms: number): number {
  let ops = 0;
  let elapsed = 0;
  const start = process.hrtime.bigint();
  while (elapsed < ms * 1e6) {
    for (let i = 0; i < batch; i++) sink ^= touch(fn());
    ops += batch;
    elapsed = Number(process.hrtime.bigint() - start);
  }
  return (ops * 1e9) / elapsed;
}

/** A batch size that takes about 1 ms, found while warming the JIT up. */
function calibrate(fn: () => unknown): number {
  let batch = 1;
  for (;;) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink ^= touch(fn());
    if (Number(process.hrtime.bigint() - start) > 1e6) return batch;
    batch *= 2;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Interleaved measurement of `a` and `b`: median ops/s of each and median ratio a/b. */
function compare(a: () => unknown, b: () => unknown): { a: number; b: number; ratio: number } {
  const batchA = calibrate(a);
  const batchB = calibrate(b);
  sample(a, batchA, SAMPLE_MS);
  sample(b, batchB, SAMPLE_MS);
  const opsA: number[] = [];
  const opsB: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < SAMPLES; round++) {
    const x = sample(a, batchA, SAMPLE_MS);
    const y = sample(b, batchB, SAMPLE_MS);
    opsA.push(x);
    opsB.push(y);
    ratios.push(x / y);
  }
  return { a: median(opsA), b: median(opsB), ratio: median(ratios) };
}

function fmtOps(n: number): string {
  return Math.round(n).toLocaleString('en-US').padStart(11);
}

function fmtRatio(n: number): string {
  return `${n.toFixed(2)}x`;
}

function geomean(values: number[]): number {
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}

function row(cells: Array<string | number>, widths: number[]): string {
  return cells
    .map((cell, i) => (i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i])))
    .join(' ');
}

// ---------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------

const msgpack = new MsgpackCacheCodec();
const json = new TaggedJsonCodec();

// msgpackr's `exports` hides its package.json; find it next to the resolved entry point.
const msgpackrEntry = createRequire(import.meta.url).resolve('msgpackr');
const msgpackrRoot = msgpackrEntry.slice(0, msgpackrEntry.lastIndexOf('msgpackr') + 'msgpackr'.length);
const msgpackrVersion = (JSON.parse(readFileSync(join(msgpackrRoot, 'package.json'), 'utf8')) as { version: string })
  .version;
console.log(
  `node ${process.version}, msgpackr ${msgpackrVersion} (native string decoding: ` +
    `${isNativeAccelerationEnabled}); ${SAMPLES} interleaved samples of ${SAMPLE_MS} ms, median\n`,
);

const W = [34, 12, 12, 12, 12, 9, 9];
console.log('msgpackr (MsgpackCacheCodec) vs tagged JSON, both with the 2-byte header');
console.log(row(['payload', 'encode/s mp', 'encode/s js', 'decode/s mp', 'decode/s js', 'bytes mp', 'bytes js'], W));
const ratios = { encode: [] as number[], decode: [] as number[], size: [] as number[] };
const ratioRows: string[] = [];
for (const { name, value } of payloads) {
  const mpPayload = msgpack.encode(value);
  const jsPayload = json.encode(value);
  for (const [codecName, codec, payload] of [
    ['msgpackr', msgpack, mpPayload],
    ['json', json, jsPayload],
  ] as const) {
    if (!isDeepStrictEqual(codec.decode(payload), value)) {
      throw new Error(`${codecName} does not round-trip "${name}"`);
    }
  }
  const encode = compare(
    () => msgpack.encode(value),
    () => json.encode(value),
  );
  const decode = compare(
    () => msgpack.decode(mpPayload),
    () => json.decode(jsPayload),
  );
  const size = mpPayload.length / jsPayload.length;
  ratios.encode.push(encode.ratio);
  ratios.decode.push(decode.ratio);
  ratios.size.push(size);
  console.log(
    row(
      [
        name,
        fmtOps(encode.a),
        fmtOps(encode.b),
        fmtOps(decode.a),
        fmtOps(decode.b),
        mpPayload.length,
        jsPayload.length,
      ],
      W,
    ),
  );
  ratioRows.push(row([name, fmtRatio(encode.ratio), fmtRatio(decode.ratio), fmtRatio(size)], [34, 14, 14, 12]));
}
console.log('\nmsgpackr/JSON ratios (speed: above 1 means msgpackr is faster; size: below 1 means smaller)');
console.log(row(['payload', 'encode speed', 'decode speed', 'size'], [34, 14, 14, 12]));
for (const line of ratioRows) console.log(line);
console.log(
  row(
    [
      'geometric mean',
      fmtRatio(geomean(ratios.encode)),
      fmtRatio(geomean(ratios.decode)),
      fmtRatio(geomean(ratios.size)),
    ],
    [34, 14, 14, 12],
  ),
);

// What MsgpackCacheCodec adds around a bare msgpackr call: the header (free: msgpackr reserves the
// space) and the cycle walk on encode, and `copyBuffers` on decode.
console.log('\nCost of the cycle walk: codec.encode vs bare packr.pack, and the walk on its own');
console.log(row(['payload', 'codec enc/s', 'bare pack/s', 'walk/s', 'walk share'], [34, 12, 12, 12, 11]));
const bare = new Packr({ moreTypes: true, copyBuffers: true });
for (const { name, value } of payloads) {
  const encode = compare(
    () => msgpack.encode(value),
    () => bare.pack(value),
  );
  const walk = compare(
    () => (typeof value === 'object' && value ? findCycle(value) : undefined),
    () => msgpack.encode(value),
  );
  // Share of one codec.encode spent walking = (1 / walk ops) / (1 / encode ops).
  console.log(
    row(
      [name, fmtOps(encode.a), fmtOps(encode.b), fmtOps(walk.a), `${((1 / walk.ratio) * 100).toFixed(1)}%`],
      [34, 12, 12, 12, 11],
    ),
  );
}
{
  const body = bare.pack(bytes10k);
  const copyDecoder = new Unpackr({ moreTypes: true, copyBuffers: true });
  const viewDecoder = new Unpackr({ moreTypes: true });
  const decode = compare(
    () => copyDecoder.unpack(body),
    () => viewDecoder.unpack(body),
  );
  console.log(
    `\ncopyBuffers, 10 KB Buffer decode: ${fmtOps(decode.a).trim()}/s copying vs ` +
      `${fmtOps(decode.b).trim()}/s as a view of the payload ` +
      `(+${((1 / decode.a - 1 / decode.b) * 1e6).toFixed(2)} µs per decode)`,
  );
}

// Why there is a cycle walk at all: without it msgpackr recurses until the stack overflows,
// writing the cycle's contents once per level.
{
  const wide: Record<string, unknown> = {
    data: Array.from({ length: 1000 }, (_, i) => `item ${i}`),
  };
  wide.self = wide;
  let start = process.hrtime.bigint();
  try {
    bare.pack(wide);
  } catch {
    // RangeError: Maximum call stack size exceeded
  }
  const packMs = Number(process.hrtime.bigint() - start) / 1e6;
  start = process.hrtime.bigint();
  try {
    msgpack.encode(wide);
  } catch {
    // CacheSerializationError
  }
  const codecMs = Number(process.hrtime.bigint() - start) / 1e6;
  console.log(
    `A cycle through a 1000-item object: bare packr.pack gives up after ${packMs.toFixed(0)} ms ` +
      `(stack overflow); codec.encode rejects it in ${codecMs.toFixed(2)} ms.`,
  );
}

if (sink === 0.5) console.log(sink); // never true; keeps `sink` alive
