import { RedisCacheConfigError } from '../../errors.js';
import type { CacheStore, SubscriptionFollower } from '../../store/cache-store.js';
import type { BookkeepingKeys } from '../bookkeeping-keys.js';
import type { RedisClock } from '../redis-clock.js';

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
 * How many prefix markers are kept, in Redis and in each instance's memory. Past it the markers
 * collapse into one of the whole namespace: more misses, never a stale entry.
 */
export const MAX_PREFIX_MARKERS = 1_000;
/** How often a running instance re-reads the markers: keeps them alive, and recreates them if lost. */
const KEEPALIVE_MS = 5 * 60_000;
/**
 * How soon a catch-up read that failed is tried again (doubling up to CATCH_UP_RETRY_MAX_MS): the
 * subscription is up, so no later one would catch up, and L1 serves only once one has.
 */
const CATCH_UP_RETRY_MS = 250;
const CATCH_UP_RETRY_MAX_MS = 2_000;
/**
 * A prefix as `clear` takes it (literal text; one with characters keys never contain just matches
 * nothing) and as a marker message may carry it: no control characters, bounded.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
export const PREFIX = /^[^\0-\x1f\x7f]{0,512}$/;

/** Throws a RedisCacheConfigError naming `where` for a prefix `clear` cannot take. */
export function checkPrefix(prefix: unknown, where: string): string {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new RedisCacheConfigError(
      `${where}: a prefix is a string of at most 512 characters without control characters (got ${JSON.stringify(prefix)})`,
    );
  }
  return prefix;
}

/**
 * Clearing a prefix in O(1): a generation bump instead of deleting keys.
 *
 * `clear(prefix)` takes a new invalidation epoch and stores it as the prefix's marker in the
 * namespace's markers — "entries under this prefix loaded before this epoch are invalid" — and
 * publishes it. Old entries stay in Redis until their TTL (or a `reclaim`), but are never served:
 * every instance keeps the markers in memory (read at start, kept current by the published
 * messages), and each read checks its key against them with one Map lookup per distinct prefix
 * length — no extra round trip. A load under a marked prefix records an epoch no later than its
 * start (the newest marker over its key that this instance knows of), so entries loaded after a
 * clear are served again.
 *
 * The markers always hold one for the whole namespace, taken when they were first written: markers
 * that go missing (evicted under `allkeys-lru`, deleted by hand) are indistinguishable from markers
 * never written, so reading them back missing marks the whole namespace again. Losing them costs
 * misses, never a cleared entry served again.
 *
 * The instance that clears sees its marker at once; the others when the message arrives (the same
 * publish reaches all subscribers). While an instance's subscription is down, messages may be
 * missed, so each of its reads re-reads the markers (concurrent reads share one read) before it
 * trusts an entry.
 */
export class PrefixGenerations implements SubscriptionFollower {
  /** Full Redis-key prefix (`${namespace}:${prefix}`) -> epoch. */
  private readonly markers = new Map<string, number>();
  /** The distinct lengths of the marked prefixes, for the per-read lookups. */
  private lengths: number[] = [];
  private synced = false;
  /** True once the markers were read at least once: `floor` means something only then. */
  private read = false;
  /** Counts subscriptions lost, so a catch-up that a newer loss overtook does not mark it synced. */
  private losses = 0;
  /** The read of the markers running now, and when it began. */
  private refreshing: Promise<void> | undefined;
  private refreshingSince = -Infinity;
  private keepalive: NodeJS.Timeout | undefined;
  /** The next try of a catch-up read that failed (see `catchUp`). */
  private catchUpRetry: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly channel: string;

  constructor(
    private readonly keys: BookkeepingKeys,
    private readonly store: CacheStore,
    private readonly clock: RedisClock,
    /** Counts a message that was not a plausible marker (dropped, never acted on). */
    private readonly rejected: () => void,
  ) {
    this.channel = keys.prefixChannel;
  }

  /** False until markers were read, and when none is known (reads pay nothing then). */
  get active(): boolean {
    return this.markers.size > 0 || !this.synced;
  }

  /** True when the markers in memory can be trusted (subscribed: every new marker reaches them). */
  get fresh(): boolean {
    return this.synced;
  }

  /** Re-reads the markers every few minutes while the application runs (see KEEPALIVE_MS). */
  start(): void {
    this.keepalive = setInterval(() => void this.refresh().catch(() => undefined), KEEPALIVE_MS);
    this.keepalive.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.keepalive);
    clearTimeout(this.catchUpRetry);
  }

  /**
   * The subscription is up (again): the markers are read, then trusted until it drops. Resolves after
   * the first read, whatever it answered; never rejects.
   */
  async subscribed(): Promise<void> {
    const losses = this.losses;
    // The subscriber may be up before the command connection: read the markers once that is too.
    if (!(await this.store.whenReady())) return;
    await this.catchUp(losses, CATCH_UP_RETRY_MS);
  }

  /**
   * Reads the markers and trusts them from then on, unless the subscription dropped meanwhile. A read
   * that fails (the command connection still in an outage, a command timed out) is tried again after
   * `retryMs` for as long as this subscription lasts: nothing else would mark the markers fresh, and
   * until something does, reads re-read them themselves and L1 serves nothing.
   */
  private async catchUp(losses: number, retryMs: number): Promise<void> {
    try {
      await this.refresh();
      if (this.losses === losses) this.synced = true;
    } catch {
      if (this.stopped || this.losses !== losses) return;
      clearTimeout(this.catchUpRetry);
      this.catchUpRetry = setTimeout(
        () => void this.catchUp(losses, Math.min(2 * retryMs, CATCH_UP_RETRY_MAX_MS)),
        retryMs,
      );
      this.catchUpRetry.unref();
    }
  }

  /** The subscription dropped (or went silent): markers published from now on may be missed. */
  lost(): void {
    this.losses++;
    this.synced = false;
    // A retry of the lost subscription's catch-up: the next subscription makes its own.
    clearTimeout(this.catchUpRetry);
  }

  /**
   * Re-reads the markers, with a read that begins now or later, so every marker stored before this
   * call is seen (concurrent callers share one read). Rejects when Redis fails.
   */
  refresh(): Promise<void> {
    const now = performance.now();
    if (this.refreshing && this.refreshingSince >= now) return this.refreshing;
    const { keys } = this;
    const refreshing = this.store
      .readPrefixes(keys.epoch, keys.prefixes, MARKER_RETENTION_MS, this.channel)
      .then(({ clock, markers }) => {
        this.clock.observe(clock);
        for (const [prefix, epoch] of markers) this.apply(prefix, epoch);
        this.read = true;
      });
    this.refreshing = refreshing;
    this.refreshingSince = now;
    void refreshing.then(
      () => this.refreshing === refreshing && (this.refreshing = undefined),
      () => this.refreshing === refreshing && (this.refreshing = undefined),
    );
    return refreshing;
  }

  /** Told of each clear announced that was news here (`prefix` relative to the namespace), once applied. */
  onCleared: ((prefix: string) => void) | undefined;

  /**
   * A published marker (`${epoch} ${prefix}`, the prefix relative to the namespace). Anything else, a
   * prefix no clear could mark, or an epoch Redis's clock cannot have reached yet (`1e300`) is
   * dropped and counted: acting on it could hide entries forever.
   */
  received(message: string): void {
    const space = message.indexOf(' ');
    const epoch = Number(message.slice(0, space));
    const prefix = message.slice(space + 1);
    if (space <= 0 || !PREFIX.test(prefix) || !this.clock.plausible(epoch)) {
      this.rejected();
      return;
    }
    // Kept as it is, even ahead of Redis's clock as estimated here (a clock that jumped, or a forged
    // message): at worst entries count as cleared too early. What keeps such a marker from clearing
    // too late is `floor`, which never hands it to a load.
    if (this.apply(prefix, epoch)) this.onCleared?.(prefix);
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

  /**
   * An epoch no later than the one a load of `redisKey` starting now begins in, without a round trip:
   * the newest marker over the key this instance knows of. An entry recorded with it is served until
   * a later clear of its prefixes; a marker this instance has not heard of yet only makes it count as
   * cleared too early. Undefined until the markers were read once (the load then reads the epoch).
   */
  floor(redisKey: string): number | undefined {
    if (!this.read) return undefined;
    let floor = 0;
    for (const length of this.lengths) {
      if (length > redisKey.length) break;
      const marker = this.markers.get(redisKey.slice(0, length));
      if (marker !== undefined && marker > floor) floor = marker;
    }
    // Never past Redis's clock as estimated here: an entry recorded with a marker from the future (a
    // forged message, a clock that jumped) would outlive the real clears until then. Lower is always
    // safe: at worst the entry counts as cleared too early.
    const now = this.clock.now();
    return now !== undefined && floor > now ? now : floor;
  }

  /**
   * Invalidates every entry under `${namespace}:${prefix}` loaded before now, in this instance at
   * once and in the others when the marker's message reaches them. Rejects when Redis fails.
   */
  async clear(prefix: string): Promise<void> {
    const { keys } = this;
    const marked = await this.store.markPrefix(keys.epoch, keys.prefixes, prefix, {
      retentionMs: MARKER_RETENTION_MS,
      cap: MAX_PREFIX_MARKERS,
      channel: this.channel,
    });
    this.clock.observe(marked.epoch);
    this.apply(marked.prefix, marked.epoch);
  }

  /**
   * Keeps a marker (`prefix` relative to the namespace), dropping the narrower ones it supersedes;
   * false when one as recent was known already (this instance's own clear, say).
   */
  private apply(prefix: string, epoch: number): boolean {
    const fullPrefix = `${this.keys.namespace}:${prefix}`;
    const current = this.markers.get(fullPrefix);
    if (current !== undefined && current >= epoch) return false;
    for (const [marked, at] of this.markers) {
      // Superseded (under this prefix, and older), or older than any entry it could apply to.
      if ((at <= epoch && marked.startsWith(fullPrefix)) || at < epoch - MARKER_RETENTION_US) {
        this.markers.delete(marked);
      }
    }
    this.markers.set(fullPrefix, epoch);
    if (this.markers.size > MAX_PREFIX_MARKERS) {
      // Too many to keep: one marker of the whole namespace at the newest epoch covers them all.
      const newest = Math.max(...this.markers.values());
      this.markers.clear();
      this.markers.set(`${this.keys.namespace}:`, newest);
    }
    this.lengths = [...new Set([...this.markers.keys()].map((marked) => marked.length))].sort((a, b) => a - b);
    return true;
  }
}
