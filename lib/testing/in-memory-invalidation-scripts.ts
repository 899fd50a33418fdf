import { EPOCH_PX_MS } from '../store/redis-cache.store.js';
import type { InProcessBus } from './in-process-bus.js';
import type { InMemoryKeyspace } from './in-memory-keyspace.js';
import type { TestClock } from './test-clock.js';

/**
 * store/invalidation-scripts.ts (READ_EPOCH, INVALIDATE_TAGS, ADMIT_TAGS, MARK_PREFIX, READ_PREFIXES)
 * step by step on an in-process keyspace: the namespace's epoch key, its tag keys and its prefix
 * markers (a sorted set ordered by text, members `prefix NUL epoch`). A missing one is treated as the
 * scripts treat it: "everything before now may have been invalidated".
 */
export class InMemoryInvalidationScripts {
  constructor(
    private readonly keyspace: InMemoryKeyspace,
    private readonly clock: TestClock,
    private readonly bus: InProcessBus,
  ) {}

  /** READ_EPOCH. */
  readEpoch(epochKey: string): number {
    const stored = this.keyspace.get(epochKey);
    const clock = this.clock.micros();
    if (stored === null) {
      this.keyspace.set(epochKey, digits(clock), { px: EPOCH_PX_MS });
      return clock;
    }
    return Math.max(luaNumber(stored) ?? 0, clock);
  }

  /** INVALIDATE_TAGS. */
  invalidateTags(
    epochKey: string,
    tagKeys: readonly string[],
    markerTtlMs: number,
    announcements: ReadonlyArray<{ channel: string; head: string; tail: string }> = [],
  ): number {
    const epoch = digits(this.bump(epochKey));
    const least = Math.round(markerTtlMs);
    for (const tagKey of tagKeys) {
      this.keyspace.set(tagKey, epoch, { px: Math.max(this.keyspace.pttl(tagKey), least) });
    }
    for (const { channel, head, tail } of announcements) this.bus.publish(channel, `${head} ${epoch} ${tail}`);
    return Number(epoch);
  }

  /** ADMIT_TAGS. */
  admitTags(epochKey: string, tagKeys: readonly string[], ttlMs: number, loadEpoch: number): boolean {
    const floor = digits(this.latest(epochKey));
    const px = Math.max(1, Math.round(ttlMs));
    const start = Number(loadEpoch.toFixed(0));
    let admitted = true;
    for (const tagKey of tagKeys) {
      let marker = this.keyspace.get(tagKey)?.toString();
      if (marker === undefined) {
        // Missing: maybe evicted after an invalidation, so recreated at the latest epoch any took.
        marker = floor;
        this.keyspace.set(tagKey, floor, { px });
      } else if (this.keyspace.pttl(tagKey) < px) {
        this.keyspace.pexpire(tagKey, px);
      }
      if ((luaNumber(marker) ?? Infinity) > start) admitted = false;
    }
    return admitted;
  }

  /** MARK_PREFIX. */
  markPrefix(
    epochKey: string,
    markersKey: string,
    prefix: string,
    options: { retentionMs: number; cap: number; channel: string },
  ): { epoch: number; prefix: string } {
    const retentionMs = Math.round(options.retentionMs);
    const created = this.ensureMarkers(epochKey, markersKey, retentionMs);
    if (created !== undefined) this.bus.publish(options.channel, created);
    const epoch = this.bump(epochKey);
    let marked = prefix;
    // The markers under the prefix, itself included (ZREMRANGEBYLEX [prefix [prefix\xff): all older.
    const from = Buffer.from(prefix);
    this.keyspace.zremrangebylex(markersKey, from, Buffer.concat([from, Buffer.from([0xff])]));
    this.keyspace.zadd(markersKey, `${prefix}\0${digits(epoch)}`);
    if (this.keyspace.zcard(markersKey) > options.cap) {
      const oldest = epoch - retentionMs * 1_000;
      for (const member of this.keyspace.zrange(markersKey)) {
        const at = member.indexOf('\0');
        if ((luaNumber(member.slice(at + 1)) ?? 0) < oldest) this.keyspace.zrem(markersKey, member);
      }
      if (this.keyspace.zcard(markersKey) > options.cap) {
        marked = '';
        this.keyspace.del(markersKey);
        this.keyspace.zadd(markersKey, `\0${digits(epoch)}`);
      }
    }
    this.keyspace.pexpire(markersKey, retentionMs);
    this.bus.publish(options.channel, `${digits(epoch)} ${marked}`);
    return { epoch: Number(digits(epoch)), prefix: marked };
  }

  /** READ_PREFIXES, its reply parsed as RedisCacheStore parses it. */
  readPrefixes(
    epochKey: string,
    markersKey: string,
    retentionMs: number,
    channel: string,
  ): { clock: number; markers: Array<[string, number]> } {
    const clock = this.clock.micros();
    const px = Math.round(retentionMs);
    const created = this.ensureMarkers(epochKey, markersKey, px);
    if (created !== undefined) this.bus.publish(channel, created);
    this.keyspace.pexpire(markersKey, px);
    const markers: Array<[string, number]> = [];
    for (const member of this.keyspace.zrange(markersKey)) {
      const at = member.indexOf('\0');
      if (at >= 0) markers.push([member.slice(0, at), Number(member.slice(at + 1))]);
    }
    return { clock, markers };
  }

  /** A new epoch, above every epoch taken or read before (stored, kept EPOCH_PX_MS). */
  private bump(epochKey: string): number {
    const stored = luaNumber(this.keyspace.get(epochKey) ?? '0') ?? 0;
    const epoch = Math.max(stored + 1, this.clock.micros() + 1);
    this.keyspace.set(epochKey, digits(epoch), { px: EPOCH_PX_MS });
    return epoch;
  }

  /** The latest epoch an invalidation took: the stored one, or (lost too) now, stored again. */
  private latest(epochKey: string): number {
    const stored = luaNumber(this.keyspace.get(epochKey) ?? '');
    if (stored !== undefined) return stored;
    const clock = this.clock.micros();
    this.keyspace.set(epochKey, digits(clock), { px: EPOCH_PX_MS });
    return clock;
  }

  /** Missing markers become a marker of the whole namespace at the latest epoch; returns its message. */
  private ensureMarkers(epochKey: string, markersKey: string, markersPx: number): string | undefined {
    if (this.keyspace.exists(markersKey)) return undefined;
    const epoch = digits(this.latest(epochKey));
    this.keyspace.zadd(markersKey, `\0${epoch}`);
    this.keyspace.pexpire(markersKey, markersPx);
    return `${epoch} `;
  }
}

/** A number as the scripts format it for Redis (`%.0f`). */
function digits(value: number): string {
  return value.toFixed(0);
}

/** Lua's `tonumber`: undefined for text that is not a number (empty included). */
function luaNumber(text: Buffer | string): number | undefined {
  const trimmed = text.toString().trim();
  if (trimmed === '') return undefined;
  const value = Number(trimmed);
  return Number.isNaN(value) ? undefined : value;
}
