import calculateSlot from 'cluster-key-slot';
import { slotTags } from './slot-tags.js';

/** How a message on a channel is published by a script: the command, and the channel it names. */
export type PublishRoute = readonly ['PUBLISH' | 'SPUBLISH', string];

/**
 * The channels whose messages go by sharded pub/sub (Redis 7+ Cluster): each announced channel maps
 * to a shard channel that hashes to the namespace's slot, so the scripts that announce (run on that
 * slot's node) can `SPUBLISH` it and only that shard relays it. Every other channel stays classic.
 * The engine keeps naming the channels it knows (core/bookkeeping-keys.ts); the store publishes and
 * the subscriber subscribes by what this says. Empty (all classic) unless `add`ed to.
 *
 * A channel whose messages are each about one key (the lease releases) goes per slot instead: a shard
 * channel `before{tag}after` for each hash slot, the message on the key's slot's (`addPerSlot`).
 *
 * A shard channel is named like a key (ioredis adds the client's `keyPrefix` to the shard channel of
 * SPUBLISH and SSUBSCRIBE, as to a key, and so hashes it to the same slot); a script is given the
 * name with the prefix, as Redis knows it.
 */
export class ShardChannels {
  /** channel -> the shard channel as a key (no `keyPrefix`), and a key of its slot to route by. */
  private readonly shards = new Map<string, { shard: string; routeKey: string }>();
  /** The shard channel as Redis names it -> channel. */
  private readonly channels = new Map<string, string>();

  /** The channel that goes per slot, and what its shard channels say around the slot's tag. */
  private perSlot: { channel: string; before: string; after: string; tags: readonly string[] } | undefined;

  constructor(private readonly keyPrefix = '') {}

  /**
   * Carries each message of `channel` on the shard channel of its key's slot, `before{tag}after`
   * (named like a key): the lease releases, published by a script on the key's node. `before` may
   * hold a hash tag of its own only when every key has it (a namespace's): it is the slot then.
   */
  addPerSlot(channel: string, before: string, after: string): void {
    this.perSlot = { channel, before, after, tags: slotTags() };
  }

  /**
   * Carries `channel`'s messages on `shard` (named like a key: without the client's `keyPrefix`).
   * `routeKey` is a key of its slot: a message that announces no change (the heartbeat) is sent by a
   * script on it, so it goes where the changes' announcements go, redirections included.
   */
  add(channel: string, shard: string, routeKey: string): void {
    this.shards.set(channel, { shard, routeKey });
    this.channels.set(this.keyPrefix + shard, channel);
  }

  /** How many channels go by sharded pub/sub (0: all classic). */
  get size(): number {
    return this.shards.size + (this.perSlot ? 1 : 0);
  }

  /** How a script publishes a message on `channel`. */
  route(channel: string): PublishRoute {
    const shard = this.shards.get(channel)?.shard;
    return shard === undefined ? ['PUBLISH', channel] : ['SPUBLISH', this.keyPrefix + shard];
  }

  /** The key a message on shard channel `channel` is routed by (undefined for a classic channel). */
  routeKeyOf(channel: string): string | undefined {
    return this.shards.get(channel)?.routeKey;
  }

  /** How a script publishes a message on `channel` about `key` (a key as the cache names it). */
  routeFor(channel: string, key: string): PublishRoute {
    const shard = this.shardFor(channel, key);
    return shard === undefined ? this.route(channel) : ['SPUBLISH', this.keyPrefix + shard];
  }

  /** The shard channel `channel` goes on, named as ioredis takes it, if it goes by sharded pub/sub. */
  shardOf(channel: string): string | undefined {
    return this.shards.get(channel)?.shard;
  }

  /**
   * The shard channel of `key`'s slot when `channel` goes per slot (named as ioredis takes it). None
   * when the client's `keyPrefix` keeps the tag from deciding the slot (a `{` left open in it).
   */
  shardFor(channel: string, key: string): string | undefined {
    const perSlot = this.perSlot;
    if (perSlot?.channel !== channel) return undefined;
    const slot = calculateSlot(this.keyPrefix + key);
    const shard = `${perSlot.before}{${perSlot.tags[slot]}}${perSlot.after}`;
    return calculateSlot(this.keyPrefix + shard) === slot ? shard : undefined;
  }

  /** The channel a message received on shard channel `received` (as Redis names it) belongs to. */
  channelOf(received: string): string | undefined {
    const channel = this.channels.get(received);
    const perSlot = this.perSlot;
    if (channel !== undefined || !perSlot) return channel;
    // `before{tag}after`, with the client's keyPrefix before it.
    const head = `${this.keyPrefix}${perSlot.before}{`;
    const tail = `}${perSlot.after}`;
    const inside = received.length > head.length + tail.length ? received.slice(head.length, -tail.length) : '}';
    return received.startsWith(head) && received.endsWith(tail) && !/[{}]/.test(inside) ? perSlot.channel : undefined;
  }
}
