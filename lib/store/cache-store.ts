import type { Cluster, Redis } from 'ioredis';
import type { LeaseWake } from './lease-waiters.js';

// What the cache engine (lib/core) asks of a store and of the subscription that wakes lease waiters.
// RedisCacheStore and NamespaceSubscriber are the production implementations (Redis commands and Lua
// scripts, a subscriber connection); RedisCacheTestingModule runs the same engine on an in-process
// keyspace (lib/testing). The semantics of each method are those of the Lua scripts in
// entry-scripts.ts and invalidation-scripts.ts, which the in-process store ports; the contract
// suite (test/contract) runs against both.

/** What an attempt to take a key's lease found. */
export type LeaseAttempt =
  | { status: 'acquired' }
  /**
   * Held by another load, for `remainingMs` more; `holder` is its token (WAITED_BIT clear), when the
   * store tells it: a release that carries a value is taken only from that lease.
   */
  | { status: 'held'; remainingMs: number; holder?: Buffer }
  /** The key no longer holds what the caller saw: read it again. */
  | { status: 'changed' }
  /** The key holds something this package did not write: left alone, load without writing. */
  | { status: 'foreign' };

/** What a write did: see WRITE_ENTRY. */
export type WriteOutcome = 'written' | 'tombstoned' | 'foreign';

/**
 * A message to publish once a change is done, so every instance hears of it after the store took it
 * (see RedisCacheStore for how Redis orders it after the change).
 */
export interface Announcement {
  channel: string;
  message: string;
}

/**
 * The key-level operations of the cache. Keys are Redis keys as the cache names them
 * (`${namespace}:...`); values are entries in the format of core/cache-entry.ts. Every method rejects
 * when the store failed (the engine fails open on it); none throws for what a key holds.
 */
export interface CacheStore {
  /** The raw ioredis client behind the store (`CacheService.client`). */
  readonly client: Redis | Cluster;
  /** Resolves once the store can take commands (at once when it can): true, or false when it ended first. */
  whenReady(): Promise<boolean>;
  /** The stored bytes, or `null` when the key is absent. */
  get(key: string): Promise<Buffer | null>;
  /**
   * `get` of every key, in order (`null` for an absent one): one MGET per Cluster slot, all sent in
   * one go. Rejects when any of them failed.
   */
  getMany(keys: readonly string[]): Promise<Array<Buffer | null>>;
  /** Writes an entry unless a write or eviction landed after `startEpoch` (then a tombstone): WRITE_ENTRY. */
  write(key: string, entry: Buffer, ttlMs: number, startEpoch: number, announce?: Announcement): Promise<WriteOutcome>;
  /** Takes the lease of `key` on an absent key or on the stale entry whose stamp the caller read: ACQUIRE_LEASE. */
  acquireLease(key: string, token: Buffer, ttlMs: number, expectStamp: Buffer | ''): Promise<LeaseAttempt>;
  /** Replaces the key by `entry` (or gives the lease back) if it still carries `token`; publishes the release: COMPLETE_LEASE. */
  completeLease(
    key: string,
    token: Buffer,
    entry: Buffer | undefined,
    ttlMs: number,
    channel: string,
  ): Promise<boolean>;
  /** The invalidation epoch a load starts in: READ_EPOCH. */
  readEpoch(epochKey: string): Promise<number>;
  /** Invalidates `tagKeys` at a new epoch, announcing `head epoch tail` on each announcement's `channel`; resolves to the epoch: INVALIDATE_TAGS. */
  invalidateTags(
    epochKey: string,
    tagKeys: readonly string[],
    markerTtlMs: number,
    announcements?: ReadonlyArray<{ channel: string; head: string; tail: string }>,
  ): Promise<number>;
  /** Keeps the tag keys alive `ttlMs` and answers whether none was invalidated after `loadEpoch`: ADMIT_TAGS. */
  admitTags(epochKey: string, tagKeys: readonly string[], ttlMs: number, loadEpoch: number): Promise<boolean>;
  /** Marks `prefix` invalid before a new epoch and publishes it: MARK_PREFIX. */
  markPrefix(
    epochKey: string,
    markersKey: string,
    prefix: string,
    options: { retentionMs: number; cap: number; channel: string },
  ): Promise<{ epoch: number; prefix: string }>;
  /** The store's clock (µs) and the prefix markers, recreated when missing: READ_PREFIXES. */
  readPrefixes(
    epochKey: string,
    markersKey: string,
    retentionMs: number,
    channel: string,
  ): Promise<{ clock: number; markers: Array<[string, number]> }>;
  /** Publishes `message` on `channel`, after the commands on `routeKey` sent before it. */
  publish(channel: string, message: string, routeKey: string): Promise<void>;
  /** Publishes a message that announces no change (the subscription's heartbeat). */
  publishPlain(channel: string, message: string): Promise<void>;
  /** Whether `key` exists. */
  exists(key: string): Promise<boolean>;
  /**
   * Keeps a marker alive for `ttlMs` more, writing it with `generation` when it is absent. Resolves
   * to the generation it holds: another than the caller saw last means it was gone in between.
   */
  mark(key: string, ttlMs: number, generation: string): Promise<string>;
  /** The epochs of the given tag keys (`undefined` for an absent one, NaN for garbage). */
  readTags(tagKeys: readonly string[]): Promise<Array<number | undefined>>;
  /** Deletes the keys, then publishes `announce`; resolves to how many existed. */
  unlink(keys: readonly string[], announce?: Announcement): Promise<number>;
  /** Evicts entries, each leaving a tombstone kept `tombstoneMs` (EVICT_ENTRY); resolves to how many held a value. */
  evict(keys: readonly string[], tombstoneMs: number, announce?: Announcement): Promise<number>;
  /** Deletes every key starting with `literalPrefix` except those `spare` keeps; resolves to how many. */
  scanAndUnlink(literalPrefix: string, spare?: (key: string) => boolean): Promise<number>;
}

/**
 * Another channel the application's subscription follows (the cleared prefixes, L1's invalidations):
 * its messages, and when its messages can be trusted to arrive (subscribed) or may be missed (lost).
 */
export interface SubscriptionFollower {
  readonly channel: string;
  received(message: string): void;
  /** Subscribed (again): messages arrive from now on; catch up on what was missed. Never rejects. */
  subscribed(): Promise<void>;
  lost(): void;
}

/** The subscription the engine waits on for lease releases, and that carries its followers' channels. */
export interface NamespaceSubscription {
  /** The channel lease releases are published on (COMPLETE_LEASE's). */
  readonly channel: string;
  /** True while a release would reach this process. */
  readonly listening: boolean;
  /** Also subscribes to `follower.channel` and tells it when the subscription is up or lost. Before it starts. */
  follow(follower: SubscriptionFollower): void;
  /** Starts listening for the release of `key`; call before re-reading it, so no release is missed. */
  listen(key: string): LeaseWake;
}
