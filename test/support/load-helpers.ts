// Helpers of the specs on loads under pressure (stale-while-revalidate, grace, early refresh, leases):
// waiting for a condition instead of sleeping blindly, reading an entry's header, forging a lease,
// and watching the host process for unhandled rejections.
import type { Redis } from 'ioredis';
import { ENTRY_HEADER_LENGTH, FRESH_UNTIL_OFFSET, LEASE_KIND, TOKEN_LENGTH } from '../../lib/core/cache-entry.js';
import { PAYLOAD_MAGIC } from '../../lib/serialization/payload-header.js';

/** Polls `condition` every `everyMs` until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  everyMs = 10,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise<void>((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Waits until the wall clock is past `epochMs` (plus `marginMs`). */
export async function waitUntil(epochMs: number, marginMs = 20): Promise<void> {
  const left = epochMs + marginMs - Date.now();
  if (left > 0) await new Promise<void>((resolve) => setTimeout(resolve, left));
  while (Date.now() < epochMs + marginMs) await new Promise<void>((resolve) => setTimeout(resolve, 2));
}

/** The call's value and how long it took (ms). */
export async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await call();
  return { value, ms: performance.now() - started };
}

/** The raw bytes of `key`, or null. */
export function rawEntry(redis: Redis, key: string): Promise<Buffer | null> {
  return redis.getBuffer(key);
}

/** The fresh-until (ms since the epoch) in the header of the entry at `key`; fails if it holds none. */
export async function freshUntilOf(redis: Redis, key: string): Promise<number> {
  const bytes = await redis.getBuffer(key);
  if (!bytes || bytes.length < FRESH_UNTIL_OFFSET + 8) throw new Error(`no cache entry at ${key}`);
  return bytes.readDoubleBE(FRESH_UNTIL_OFFSET);
}

/** Waits until the entry at `key` is past its TTL (it may still be kept for stale readers). */
export async function waitUntilStale(redis: Redis, key: string): Promise<number> {
  const freshUntil = await freshUntilOf(redis, key);
  await waitUntil(freshUntil);
  return freshUntil;
}

/** Redis's clock in ms since the epoch (what the lease scripts compare deadlines with). */
export async function redisNow(redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * A lease placeholder as ACQUIRE_LEASE writes it on an absent key (see core/cache-entry.ts):
 * magic, LEASE kind, the token, the deadline (float64 BE, Redis clock), then zeros up to the
 * header's length (the landing time is left 0 here).
 */
export function leasePlaceholder(token: Buffer, deadlineMs: number): Buffer {
  if (token.length !== TOKEN_LENGTH) throw new Error(`a lease token has ${TOKEN_LENGTH} bytes`);
  const deadline = Buffer.alloc(8);
  deadline.writeDoubleBE(deadlineMs);
  const head = Buffer.concat([Buffer.from([PAYLOAD_MAGIC, LEASE_KIND]), token, deadline]);
  return Buffer.concat([head, Buffer.alloc(ENTRY_HEADER_LENGTH - head.length)]);
}

/**
 * The host process. Jest gives each test file a copy of `process` whose listeners never hear the
 * host's events; the Function constructor of a host function (`setTimeout` is the host's) evaluates
 * in the host realm, where `process` is the real one.
 */
function hostProcess(): NodeJS.Process {
  return (setTimeout.constructor as FunctionConstructor)('return process')() as NodeJS.Process;
}

/** Records every unhandled rejection of the host process until `stop()`. */
export function watchUnhandledRejections(): { readonly rejections: unknown[]; stop(): void } {
  const host = hostProcess();
  const rejections: unknown[] = [];
  const listener = (reason: unknown) => rejections.push(reason);
  host.on('unhandledRejection', listener);
  return { rejections, stop: () => host.off('unhandledRejection', listener) };
}
