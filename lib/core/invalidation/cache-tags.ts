import { RedisCacheConfigError } from '../../errors.js';
import type { CacheStore } from '../../store/cache-store.js';
import { MAX_TAGS, NO_TAGS, type DecodedEntry } from '../cache-entry.js';
import type { BookkeepingKeys } from '../bookkeeping-keys.js';
import { safeKey } from '../key-hash.js';
import type { TagEpochs } from './tag-epochs.js';

/**
 * How long a tag's invalidation marker is kept at least (longer when entries of the tag live
 * longer). A tagged load that takes longer than MAX_TAGGED_LOAD_MS is not stored: its start could
 * predate a marker that has expired since.
 */
const MARKER_TTL_MS = 10 * 60_000;
/** A tag key outlives each entry of the tag by this much (the entry is written just after the touch). */
const TOUCH_MARGIN_MS = 60_000;
export const MAX_TAGGED_LOAD_MS = MARKER_TTL_MS - TOUCH_MARGIN_MS;

/** How a tag invalidation is announced to the in-process tiers: `head epoch tail` on `channel`. */
export interface TagAnnouncement {
  channel: string;
  head: string;
  tail: string;
}

/**
 * Tags, invalidated in O(1) whatever the number of entries under them.
 *
 * An invalidation does not touch the entries: it takes a new epoch and stores it in each tag's key,
 * meaning "entries of this tag loaded before this epoch are invalid" (one script: the tag keys and
 * the epoch key share a slot, bookkeeping-keys.ts), and announces it. A tagged entry carries the
 * epoch read *before* its value was loaded and its tags; each read checks the tags' epochs and
 * treats the entry as absent — for hits, stale serving and grace alike — if any tag was invalidated
 * after the load began, or if a tag key is missing or garbled (its bookkeeping was evicted or
 * overwritten). The epochs are known in memory while the subscription hears every announcement
 * (tag-epochs.ts), so a tagged hit costs no more round trips than an untagged one; otherwise the
 * tag keys are read (one MGET).
 *
 * Before a tagged entry is written, each tag key is kept alive at least as long as the entry (so an
 * invalidation marker can never expire under a live entry) and checked: a tag invalidated while the
 * value was loading means the value is not written at all. A tag key found missing then is
 * recreated at the latest epoch any invalidation took, never at the writer's: an invalidation whose
 * marker was evicted still holds for every entry loaded before it.
 */
export class CacheTags {
  constructor(
    private readonly keys: BookkeepingKeys,
    private readonly store: CacheStore,
    private readonly epochs: TagEpochs,
  ) {}

  /**
   * True when no tag of `entry` was invalidated after its load began, false when one was, undefined
   * when that is not known in memory (then ask `isValid`).
   */
  knownValid(entry: DecodedEntry): boolean | undefined {
    return this.epochs.valid(entry.tags, entry.epoch);
  }

  /** True when no tag of `entry` was invalidated after its load began. Rejects when Redis fails. */
  async isValid(entry: DecodedEntry): Promise<boolean> {
    const markers = await this.epochs.learn(entry.tags, () =>
      this.store.readTags(entry.tags.map((tag) => this.keys.tag(tag))),
    );
    return markers.every((marker) => marker !== undefined && marker <= entry.epoch);
  }

  /**
   * Readies the tag keys for an entry loaded in `epoch` that will live `pxMs`: false when a tag was
   * invalidated meanwhile (or the load took too long to tell), and the entry must not be written.
   */
  async admit(tags: readonly string[], epoch: number, pxMs: number, loadMs: number): Promise<boolean> {
    if (loadMs > MAX_TAGGED_LOAD_MS) return false;
    return this.store.admitTags(
      this.keys.epoch,
      tags.map((tag) => this.keys.tag(tag)),
      pxMs + TOUCH_MARGIN_MS,
      epoch,
    );
  }

  /**
   * Invalidates every entry of `tags` loaded before now, announcing it to every instance's tag epochs
   * and, with `l1`, to the in-process tiers, in the same script. Resolves to the invalidation's epoch.
   * Rejects when Redis fails.
   */
  async invalidate(tags: readonly string[], l1?: TagAnnouncement): Promise<number> {
    const announcements = [this.epochs.announcement(tags)];
    if (l1) announcements.push(l1);
    const epoch = await this.store.invalidateTags(
      this.keys.epoch,
      tags.map((tag) => this.keys.tag(tag)),
      MARKER_TTL_MS,
      announcements,
    );
    this.epochs.invalidated(tags, epoch);
    return epoch;
  }
}

/**
 * A `tags` value (a string or strings) as stored: unique, each made safe as a key part (hashed
 * when long or unusual, like keys). Throws a RedisCacheConfigError naming `where` for anything else.
 */
export function normalizeTags(raw: unknown, where: string): readonly string[] {
  if (raw === undefined || raw === null) return NO_TAGS;
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list)) {
    throw new RedisCacheConfigError(`${where}: tags must be a string or an array of strings, got ${typeof raw}`);
  }
  if (list.length === 0) return NO_TAGS;
  const tags = new Set<string>();
  for (const tag of list) {
    if (typeof tag !== 'string' || tag.length === 0) {
      throw new RedisCacheConfigError(`${where}: every tag must be a non-empty string, got ${JSON.stringify(tag)}`);
    }
    tags.add(safeKey(tag));
  }
  if (tags.size > MAX_TAGS) {
    throw new RedisCacheConfigError(`${where}: at most ${MAX_TAGS} tags per entry, got ${tags.size}`);
  }
  return [...tags];
}
