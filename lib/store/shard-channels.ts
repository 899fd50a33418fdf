/** How a message on a channel is published by a script: the command, and the channel it names. */
export type PublishRoute = readonly ['PUBLISH' | 'SPUBLISH', string];

/**
 * The channels whose messages go by sharded pub/sub (Redis 7+ Cluster): each announced channel maps
 * to a shard channel that hashes to the namespace's slot, so the scripts that announce (run on that
 * slot's node) can `SPUBLISH` it and only that shard relays it. Every other channel stays classic.
 * The engine keeps naming the channels it knows (core/bookkeeping-keys.ts); the store publishes and
 * the subscriber subscribes by what this says. Empty (all classic) until `add`ed to, and again after
 * `clear` (a Redis without sharded pub/sub).
 *
 * A shard channel is named like a key (ioredis adds the client's `keyPrefix` to the shard channel of
 * SPUBLISH and SSUBSCRIBE, as to a key, and so hashes it to the same slot); a script is given the
 * name with the prefix, as Redis knows it.
 */
export class ShardChannels {
  /** channel -> the shard channel as a key (no `keyPrefix`). */
  private readonly shards = new Map<string, string>();
  /** The shard channel as Redis names it -> channel. */
  private readonly channels = new Map<string, string>();

  constructor(private readonly keyPrefix = '') {}

  /** Carries `channel`'s messages on `shard` (named like a key: without the client's `keyPrefix`). */
  add(channel: string, shard: string): void {
    this.shards.set(channel, shard);
    this.channels.set(this.keyPrefix + shard, channel);
  }

  /** Back to classic pub/sub for every channel. */
  clear(): void {
    this.shards.clear();
    this.channels.clear();
  }

  get size(): number {
    return this.shards.size;
  }

  /** How a script publishes a message on `channel`. */
  route(channel: string): PublishRoute {
    const shard = this.shards.get(channel);
    return shard === undefined ? ['PUBLISH', channel] : ['SPUBLISH', this.keyPrefix + shard];
  }

  /** The shard channel `channel` goes on, named as ioredis takes it, if it goes by sharded pub/sub. */
  shardOf(channel: string): string | undefined {
    return this.shards.get(channel);
  }

  /** The channel a message received on shard channel `received` (as Redis names it) belongs to. */
  channelOf(received: string): string | undefined {
    return this.channels.get(received);
  }
}
