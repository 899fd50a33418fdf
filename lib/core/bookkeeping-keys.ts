import { BOOKKEEPING_MARK } from './key-hash.js';

/**
 * The module's own keys and channels for one namespace.
 *
 * Keys: `${namespace}:@...`. A user's key never has `@` there (a key part made of user input is kept
 * only when made of `[A-Za-z0-9_-.{}]`, and hashed parts start with `#`), so no argument, template
 * or hand-written key can name one of these. They share one Cluster slot (the namespace's own hash
 * tag, or `{namespace}`), so the invalidation scripts can read and write several at once.
 *
 * Channels carry everything that separates two applications' keys on one server: the client's
 * `keyPrefix`, the namespace and the database number (pub/sub ignores databases, and ioredis does not
 * prefix channels), so apps that share a server but not their keys never hear each other.
 */
export class BookkeepingKeys {
  /** The namespace's invalidation epoch. */
  readonly epoch: string;
  /** The prefix markers (prefix-generations.ts). */
  readonly prefixes: string;
  /** Present while some instance keeps an in-process tier (l1-presence.ts). */
  readonly presence: string;
  /** Lease releases: waiters of a key wake up. */
  readonly leaseChannel: string;
  /** Prefix markers, announced to every instance. */
  readonly prefixChannel: string;
  /** What the in-process tiers must drop (in-process-tier.ts). */
  readonly l1Channel: string;
  /** Tag invalidations, announced to every instance's tag epochs (tag-epochs.ts). */
  readonly tagChannel: string;
  private readonly base: string;

  constructor(
    readonly namespace: string,
    /** What separates this application's keys from another's on the same server. */
    scope: { keyPrefix: string; db: number },
  ) {
    // A namespace with a hash tag (`{cache}`) already puts every key of it on one slot.
    this.base = namespace.includes('{')
      ? `${namespace}:${BOOKKEEPING_MARK}`
      : `${namespace}:${BOOKKEEPING_MARK}{${namespace}}:`;
    this.epoch = `${this.base}epoch`;
    this.prefixes = `${this.base}prefixes`;
    this.presence = `${this.base}l1-present`;
    const channels = `${scope.keyPrefix}${namespace}:${BOOKKEEPING_MARK}db${scope.db}:`;
    this.leaseChannel = `${channels}lease`;
    this.prefixChannel = `${channels}prefixes`;
    this.l1Channel = `${channels}l1`;
    this.tagChannel = `${channels}tags`;
  }

  /**
   * A shard channel (sharded pub/sub on a Cluster: store/shard-channels.ts), named like one of these
   * keys so it hashes to their slot: the scripts that announce run on that slot's node.
   */
  shardChannel(name: string): string {
    return `${this.base}ch:${name}`;
  }

  /** The key of a tag (already normalised by `normalizeTags`). */
  tag(tag: string): string {
    return `${this.base}tag:${tag}`;
  }

  /** True when `redisKey` is one of these keys (a SCAN of the namespace leaves them alone). */
  isBookkeeping(redisKey: string): boolean {
    return redisKey.startsWith(`${this.namespace}:${BOOKKEEPING_MARK}`);
  }

  /**
   * True when `redisKey` could be an entry of this namespace (a key in a message from another
   * instance): under the namespace, not a bookkeeping key, no spaces or control characters.
   */
  isEntryKey(redisKey: string): boolean {
    return (
      redisKey.length > this.namespace.length + 1 &&
      redisKey.length <= 1024 &&
      redisKey.startsWith(`${this.namespace}:`) &&
      !this.isBookkeeping(redisKey) &&
      !/[\s\0]/.test(redisKey)
    );
  }
}
