import { LRUCache } from 'lru-cache';
import type { SubscriptionFollower } from '../../store/cache-store.js';
import type { BookkeepingKeys } from '../bookkeeping-keys.js';
import type { RedisClock } from '../redis-clock.js';
import type { TagAnnouncement } from './cache-tags.js';

/** A normalised tag as a message may carry it (cache-tags.ts `normalizeTags`). */
const TAG = /^[A-Za-z0-9:_\-.{}#]{1,512}$/;
/** The head of every message on the tags channel: `t epoch tags...`. */
const HEAD = 't';
/**
 * How many tags' epochs an instance keeps. A tag it forgot is read from Redis again on its next
 * tagged hit: a round trip, never a wrong answer.
 */
export const MAX_KNOWN_TAGS = 10_000;

/**
 * The tags' "invalid before" epochs, known in memory so a tagged hit costs no round trip more than
 * an untagged one. Kept coherent like the prefix markers (prefix-generations.ts): every tag
 * invalidation publishes `t epoch tags...` on the namespace's tags channel in the script that takes
 * the epoch, and each instance raises what it knows.
 *
 * An epoch is trusted only when it was read from Redis while the subscription was confirmed, in the
 * same subscription: any invalidation after that read is then heard. A read in flight when a message
 * about its tag arrives keeps the larger of the two. Until subscribed, after the subscription drops or
 * goes silent, and for a tag not known, `known` answers undefined and the caller reads the tag keys
 * from Redis, as every tagged read did before: losing the bus costs round trips, never an entry
 * served under an invalidation.
 */
export class TagEpochs implements SubscriptionFollower {
  readonly channel: string;
  private readonly epochs = new LRUCache<string, number>({ max: MAX_KNOWN_TAGS });
  /** Reads of tag keys in flight, each with the epochs messages brought meanwhile. */
  private readonly reading = new Set<Map<string, number>>();
  private synced = false;
  /** Counts subscriptions lost: a read that began in an earlier one is not kept. */
  private losses = 0;

  constructor(
    keys: BookkeepingKeys,
    private readonly clock: RedisClock,
    /** Counts a message no instance would send (dropped, never acted on). */
    private readonly rejected: () => void,
  ) {
    this.channel = keys.tagChannel;
  }

  /** How an invalidation of `tags` announces its epoch on this channel (CacheTags.invalidate). */
  announcement(tags: readonly string[]): TagAnnouncement {
    return { channel: this.channel, head: HEAD, tail: tags.join(' ') };
  }

  /**
   * True when no tag of an entry loaded in `epoch` was invalidated after, false when one was;
   * undefined when some tag's epoch is not known here (read them, then `learn`).
   */
  valid(tags: readonly string[], epoch: number): boolean | undefined {
    if (!this.synced) return undefined;
    let valid = true;
    for (const tag of tags) {
      const known = this.epochs.get(tag);
      if (known === undefined) return undefined;
      if (known > epoch) valid = false;
    }
    return valid;
  }

  /**
   * Reads `tags`' epochs with `read` (undefined for a missing tag key, NaN for a garbled one), and
   * keeps the ones it may: read while subscribed, in the same subscription. Rejects when `read` does.
   */
  async learn(
    tags: readonly string[],
    read: () => Promise<ReadonlyArray<number | undefined>>,
  ): Promise<ReadonlyArray<number | undefined>> {
    if (!this.synced) return read();
    const losses = this.losses;
    const heard = new Map<string, number>();
    this.reading.add(heard);
    try {
      const epochs = await read();
      if (this.synced && this.losses === losses) {
        tags.forEach((tag, i) => {
          const epoch = epochs[i];
          // A missing or garbled tag key is not an epoch: it reads as invalidated, and again next time.
          if (epoch !== undefined && Number.isSafeInteger(epoch)) this.raise(tag, Math.max(epoch, heard.get(tag) ?? 0));
        });
      }
      return epochs;
    } finally {
      this.reading.delete(heard);
    }
  }

  /** This instance invalidated `tags` at `epoch` (its own message may come later, or not at all). */
  invalidated(tags: readonly string[], epoch: number): void {
    for (const tag of tags) this.heard(tag, epoch);
  }

  /** Told of each tag invalidation announced on the channel (this instance's own too), once applied. */
  onInvalidated: (() => void) | undefined;

  /** A message on the tags channel; anything no instance would send is counted and dropped. */
  received(message: string): void {
    const parts = message.split(' ');
    const epoch = Number(parts[1]);
    const tags = parts.slice(2);
    if (parts[0] !== HEAD || !this.clock.plausible(epoch) || tags.length === 0 || !tags.every((tag) => TAG.test(tag))) {
      this.rejected();
      return;
    }
    for (const tag of tags) this.heard(tag, epoch);
    this.onInvalidated?.();
  }

  /** Subscribed (again): invalidations are heard from now on; epochs are read afresh as tags come up. */
  subscribed(): Promise<void> {
    this.synced = true;
    return Promise.resolve();
  }

  /** The subscription dropped or went silent: what is known may be missing invalidations. */
  lost(): void {
    this.losses++;
    this.synced = false;
    this.epochs.clear();
  }

  private heard(tag: string, epoch: number): void {
    if (this.epochs.has(tag)) this.raise(tag, epoch);
    for (const heard of this.reading) heard.set(tag, Math.max(epoch, heard.get(tag) ?? 0));
  }

  /** Epochs only ever grow: a reply that left Redis before a message that came first changes nothing. */
  private raise(tag: string, epoch: number): void {
    const known = this.epochs.get(tag);
    if (known === undefined || epoch > known) this.epochs.set(tag, epoch);
  }
}
