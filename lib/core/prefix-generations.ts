import type { SubscriptionFollower } from '../store/lease-release-listener.js';
import type { RedisCacheStore } from '../store/redis-cache.store.js';
import type { InvalidationEpoch } from './invalidation-epoch.js';

/**
 * The longest an entry lives (TTL, jitter and stale windows included; longer ones are cut to it when
 * written), and so how long a prefix marker must be kept: an entry loaded before a clear cannot
 * outlive the clear's marker.
 */
export const MAX_ENTRY_PX_MS = 30 * 24 * 3_600_000;
const MARKER_RETENTION_MS = MAX_ENTRY_PX_MS + 24 * 3_600_000;
/** Epochs are microseconds. */
const MARKER_RETENTION_US = MARKER_RETENTION_MS * 1_000;

/**
 * Clearing a prefix in O(1): a generation bump instead of deleting keys.
 *
 * `clear(prefix)` takes a new invalidation epoch and stores it as the prefix's marker in the
 * namespace's marker hash — "entries under this prefix loaded before this epoch are invalid" — and
 * publishes it. Old entries stay in Redis until their TTL (or a `reclaim`), but are never served:
 * every instance keeps the markers in memory (loaded at start, kept current by the published
 * messages), and each read checks its key against them with one Map lookup per distinct prefix
 * length — no extra round trip. An entry loaded under a marked prefix carries the epoch read before
 * its load, so entries loaded after the clear are served again; one without an epoch predates every
 * marker.
 *
 * The instance that clears sees its marker at once; the others when the message arrives (the same
 * publish reaches all subscribers). While an instance's subscription is down, messages may be
 * missed, so each of its reads re-reads the markers (concurrent reads share one HGETALL) before it
 * trusts an entry.
 */
export class PrefixGenerations implements SubscriptionFollower {
  /** Full Redis-key prefix (`${namespace}:${prefix}`) -> epoch. */
  private readonly markers = new Map<string, number>();
  /** The distinct lengths of the marked prefixes, for the per-read lookups. */
  private lengths: number[] = [];
  private readonly hashKey: string;
  private synced = false;
  /** Counts subscriptions lost, so a catch-up that a newer loss overtook does not mark it synced. */
  private losses = 0;
  /** The read of the markers running now, and when it began. */
  private refreshing: Promise<void> | undefined;
  private refreshingSince = -Infinity;

  constructor(
    private readonly namespace: string,
    private readonly store: RedisCacheStore,
    private readonly epoch: InvalidationEpoch,
    /** The channel the markers are published on (the application's subscriber listens to it). */
    readonly channel: string,
  ) {
    this.hashKey = `${namespace}:__prefixes`;
  }

  /** False when no prefix was ever cleared (the common case: reads pay nothing). */
  get active(): boolean {
    return this.markers.size > 0 || !this.synced;
  }

  /** True when the markers in memory can be trusted (subscribed: every new marker reaches them). */
  get fresh(): boolean {
    return this.synced;
  }

  /** The subscription is up (again): the markers are read, then trusted until it drops. Never rejects. */
  async subscribed(): Promise<void> {
    const losses = this.losses;
    // The subscriber may be up before the command connection: read the markers once that is too.
    if (!(await this.store.whenReady())) return;
    try {
      await this.refresh();
      if (this.losses === losses) this.synced = true;
    } catch {
      // Not synced: reads re-read the markers themselves until the next subscription.
    }
  }

  /** The subscription dropped: markers published from now on may be missed. */
  lost(): void {
    this.losses++;
    this.synced = false;
  }

  /**
   * Re-reads the markers, with a read that begins now or later, so every marker stored before this
   * call is seen (concurrent callers share one read). Rejects when Redis fails.
   */
  refresh(): Promise<void> {
    const now = performance.now();
    if (this.refreshing && this.refreshingSince >= now) return this.refreshing;
    const refreshing = this.store.readPrefixes(this.hashKey).then((markers) => {
      for (const [prefix, epoch] of markers) this.apply(`${this.namespace}:${prefix}`, epoch);
    });
    this.refreshing = refreshing;
    this.refreshingSince = now;
    void refreshing.then(
      () => this.refreshing === refreshing && (this.refreshing = undefined),
      () => this.refreshing === refreshing && (this.refreshing = undefined),
    );
    return refreshing;
  }

  /** A published marker (`${epoch} ${prefix}`, the prefix relative to the namespace). */
  received(message: string): void {
    const space = message.indexOf(' ');
    const epoch = Number(message.slice(0, space));
    if (space > 0 && Number.isFinite(epoch)) this.apply(`${this.namespace}:${message.slice(space + 1)}`, epoch);
  }

  /** True when an entry at `redisKey` loaded in `entryEpoch` (0: unknown) is under a later clear. */
  invalidates(redisKey: string, entryEpoch: number): boolean {
    for (const length of this.lengths) {
      if (length > redisKey.length) break;
      const marker = this.markers.get(redisKey.slice(0, length));
      if (marker !== undefined && marker > entryEpoch) return true;
    }
    return false;
  }

  /** True when a prefix of `redisKey` was cleared: a load of it must carry its epoch to be served. */
  covers(redisKey: string): boolean {
    for (const length of this.lengths) {
      if (length > redisKey.length) break;
      if (this.markers.has(redisKey.slice(0, length))) return true;
    }
    return false;
  }

  /**
   * Invalidates every entry under `${namespace}:${prefix}` loaded before now, in this instance at
   * once and in the others when the marker's message reaches them. Rejects when Redis fails.
   */
  async clear(prefix: string): Promise<void> {
    const epoch = await this.epoch.bump();
    const oldest = epoch - MARKER_RETENTION_US;
    await this.store.markPrefix(
      this.hashKey,
      prefix,
      epoch,
      oldest,
      MARKER_RETENTION_MS,
      this.channel,
      `${epoch} ${prefix}`,
    );
    this.apply(`${this.namespace}:${prefix}`, epoch);
  }

  private apply(fullPrefix: string, epoch: number): void {
    const current = this.markers.get(fullPrefix);
    if (current !== undefined && current >= epoch) return;
    this.markers.set(fullPrefix, epoch);
    // Markers older than any entry they could apply to are dropped (as the hash in Redis drops them).
    for (const [prefix, marked] of this.markers) if (marked < epoch - MARKER_RETENTION_US) this.markers.delete(prefix);
    this.lengths = [...new Set([...this.markers.keys()].map((prefix) => prefix.length))].sort((a, b) => a - b);
  }
}
