import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { ANYWHERE, type ConnectionHealth } from './connection-health.js';
import { GuardedCommands, isCluster } from './guarded-commands.js';
import { ACQUIRE_LEASE, COMPLETE_LEASE, LeaseReply } from './lease-scripts.js';
import { BUMP_EPOCH, MARK_PREFIX, MARK_TAG, PUBLISH_VIA, READ_EPOCH, TOUCH_TAG } from './invalidation-scripts.js';

export { CommandTimeoutError, isCluster } from './guarded-commands.js';

/** What an attempt to take a key's lease found. */
export type LeaseAttempt =
  | { status: 'acquired' }
  | { status: 'held'; remainingMs: number }
  /** The key no longer holds what the caller saw: read it again. */
  | { status: 'changed' };

/** How many keys one SCAN step asks for and one UNLINK removes. */
const SCAN_BATCH = 500;

/**
 * A message to publish once a change is done, so every instance hears of it after Redis took it: in
 * the change's own pipeline (one write, no extra round trip, processed right after the change on the
 * node that made it); for a deletion spanning several Cluster nodes, once every node answered,
 * through the node of its first key.
 */
export interface Announcement {
  channel: string;
  message: string;
}

/**
 * The Redis side of the cache: a handful of commands, each bounded by `commandTimeout` and refused
 * at once while the connection is not ready, so no caller ever queues behind a dead connection.
 * Every failure surfaces as `CacheUnavailableError` for the caller above to fail open on.
 * Knows nothing of Nest, keys' meaning or encoding.
 */
export class RedisCacheStore {
  private readonly commands: GuardedCommands;

  constructor(
    readonly client: Redis | Cluster,
    commandTimeoutMs: number,
    health: ConnectionHealth,
  ) {
    this.commands = new GuardedCommands(client, commandTimeoutMs, health);
  }

  /** Resolves once the client is ready (at once when it is): true, or false when it ended first. */
  whenReady(): Promise<boolean> {
    const client = this.client;
    if (client.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const ready = () => {
        client.off('end', end);
        resolve(true);
      };
      const end = () => {
        client.off('ready', ready);
        resolve(false);
      };
      client.once('ready', ready);
      client.once('end', end);
    });
  }

  /** The stored bytes, or `null` when the key is absent. */
  get(key: string): Promise<Buffer | null> {
    return this.commands.run('GET', () => this.client.getBuffer(key), this.commands.nodeOf(key));
  }

  /**
   * `SET key value PX ttl` in one command: there is never a write without a TTL. With `announce`,
   * its message rides in the same pipeline (see {@link Announcement}).
   */
  async set(key: string, payload: Buffer, ttlMs: number, announce?: Announcement): Promise<void> {
    const client = this.client;
    const px = Math.max(1, Math.round(ttlMs));
    const node = this.commands.nodeOf(key);
    if (!announce) {
      await this.commands.run('SET', () => client.set(key, payload, 'PX', px), node);
      return;
    }
    await this.commands.run(
      'SET',
      () =>
        client
          .pipeline()
          .set(key, payload, 'PX', px)
          .publish(announce.channel, announce.message)
          .exec()
          .then(throwFirstError),
      node,
    );
  }

  /**
   * Takes the lease of `key` for `ttlMs`: on an absent key (`expectStamp` empty) by writing a lease
   * placeholder, on the stale entry whose stamp the caller read by marking its header. One script,
   * one key (store/lease-scripts.ts).
   */
  async acquireLease(key: string, token: Buffer, ttlMs: number, expectStamp: Buffer | ''): Promise<LeaseAttempt> {
    const ttl = Math.max(1, Math.round(ttlMs));
    const reply = (await this.commands.run(
      'ACQUIRE_LEASE',
      () => ACQUIRE_LEASE.run(this.client, key, token, ttl, expectStamp),
      this.commands.nodeOf(key),
    )) as [number, number];
    if (reply[0] === LeaseReply.ACQUIRED) return { status: 'acquired' };
    if (reply[0] === LeaseReply.HELD) return { status: 'held', remainingMs: reply[1] };
    return { status: 'changed' };
  }

  /**
   * Replaces `key` by `entry` (with PX `ttlMs`) if it still carries `token`, or just gives the lease
   * back when `entry` is undefined; then publishes the release on `channel` to wake waiters (marked
   * when the lease was given back without a value). Resolves to whether the token still held: false means a write or
   * eviction revoked the lease, so nothing was written.
   */
  async completeLease(
    key: string,
    token: Buffer,
    entry: Buffer | undefined,
    ttlMs: number,
    channel: string,
  ): Promise<boolean> {
    const px = Math.max(1, Math.round(ttlMs));
    const held = await this.commands.run(
      'COMPLETE_LEASE',
      () => COMPLETE_LEASE.run(this.client, key, token, entry ?? '', px, channel, key),
      this.commands.nodeOf(key),
    );
    return held === 1;
  }

  /** The invalidation epoch a load starts in (store/invalidation-scripts.ts). */
  async readEpoch(epochKey: string): Promise<number> {
    return Number(
      await this.commands.run(
        'READ_EPOCH',
        () => READ_EPOCH.run(this.client, epochKey),
        this.commands.nodeOf(epochKey),
      ),
    );
  }

  /** A new invalidation epoch, above every one `readEpoch` answered before; the key kept `ttlMs`. */
  async bumpEpoch(epochKey: string, ttlMs: number): Promise<number> {
    return Number(
      await this.commands.run(
        'BUMP_EPOCH',
        () => BUMP_EPOCH.run(this.client, epochKey, Math.round(ttlMs)),
        this.commands.nodeOf(epochKey),
      ),
    );
  }

  /** Marks a tag invalid for every entry loaded before `epoch`; the tag key kept at least `ttlMs`. */
  async markTag(tagKey: string, epoch: number, ttlMs: number): Promise<void> {
    await this.commands.run(
      'MARK_TAG',
      () => MARK_TAG.run(this.client, tagKey, epochString(epoch), Math.round(ttlMs)),
      this.commands.nodeOf(tagKey),
    );
  }

  /**
   * Before a tagged entry loaded in `epoch` is written: keeps the tag key at least `ttlMs` (creating
   * it at `epoch` when absent) and answers the tag's epoch.
   */
  async touchTag(tagKey: string, ttlMs: number, epoch: number): Promise<number> {
    const reply = await this.commands.run(
      'TOUCH_TAG',
      () => TOUCH_TAG.run(this.client, tagKey, Math.max(1, Math.round(ttlMs)), epochString(epoch)),
      this.commands.nodeOf(tagKey),
    );
    return Number(reply);
  }

  /**
   * Stores a prefix marker in the namespace's marker hash (dropping those older than `oldestEpoch`),
   * keeps the hash `ttlMs`, and publishes `message` on `channel` (store/invalidation-scripts.ts).
   */
  async markPrefix(
    hashKey: string,
    prefix: string,
    epoch: number,
    oldestEpoch: number,
    ttlMs: number,
    channel: string,
    message: string,
  ): Promise<void> {
    await this.commands.run(
      'MARK_PREFIX',
      () =>
        MARK_PREFIX.run(
          this.client,
          hashKey,
          prefix,
          epochString(epoch),
          epochString(oldestEpoch),
          Math.round(ttlMs),
          channel,
          message,
        ),
      this.commands.nodeOf(hashKey),
    );
  }

  /**
   * Publishes `message` on `channel` through the node of `routeKey` (on a Cluster; a plain PUBLISH
   * would go to any node): after the commands on that key sent before it.
   */
  async publish(channel: string, message: string, routeKey: string): Promise<void> {
    await this.commands.run(
      'PUBLISH',
      () => PUBLISH_VIA.run(this.client, routeKey, channel, message),
      this.commands.nodeOf(routeKey),
    );
  }

  /** Whether `key` exists. */
  async exists(key: string): Promise<boolean> {
    return (await this.commands.run('EXISTS', () => this.client.exists(key), this.commands.nodeOf(key))) === 1;
  }

  /** `SET key 1 PX ttl`: a marker whose presence is all it says. */
  async mark(key: string, ttlMs: number): Promise<void> {
    await this.commands.run('SET', () => this.client.set(key, '1', 'PX', Math.round(ttlMs)), this.commands.nodeOf(key));
  }

  /** The namespace's prefix markers: literal prefix -> epoch. */
  async readPrefixes(hashKey: string): Promise<Map<string, number>> {
    const fields = await this.commands.run(
      'HGETALL',
      () => this.client.hgetall(hashKey),
      this.commands.nodeOf(hashKey),
    );
    return new Map(Object.entries(fields).map(([prefix, epoch]) => [prefix, Number(epoch)]));
  }

  /**
   * The epochs of the given tag keys (`undefined` for an absent one). One GET each, sent together:
   * the keys live on different Cluster slots, so no MGET.
   */
  readTags(tagKeys: readonly string[]): Promise<Array<number | undefined>> {
    return this.commands.run('GET', () =>
      Promise.all(
        tagKeys.map((key) => this.client.get(key).then((value) => (value === null ? undefined : Number(value)))),
      ),
    );
  }

  /**
   * UNLINK (non-blocking delete) of the given keys, pipelined, with `announce` in the same pipeline.
   * A Cluster pipeline must stay on one node, so on a Cluster the keys are grouped by the node that
   * serves their slot, one pipeline per node; with keys on several nodes the announcement is sent
   * once every node has deleted its own.
   */
  async unlink(keys: readonly string[], announce?: Announcement): Promise<number> {
    if (keys.length === 0) return 0;
    const client = this.client;
    if (!isCluster(client)) {
      if (keys.length === 1 && !announce) return this.commands.run('UNLINK', () => client.unlink(keys[0]));
      return this.commands.run('UNLINK', () => unlinkPipelined(client, keys, announce));
    }
    const groups = this.groupByNode(client, keys);
    if (groups.length === 1) {
      return this.commands.run('UNLINK', () => unlinkPipelined(client, keys, announce), this.commands.nodeOf(keys[0]));
    }
    const removed = await this.commands.run('UNLINK', async () =>
      sum(await Promise.all(groups.map((group) => unlinkPipelined(client, group)))),
    );
    if (announce) await this.publish(announce.channel, announce.message, keys[0]);
    return removed;
  }

  /** `keys` grouped by the Cluster node that serves their slot (as the client knows it now). */
  private groupByNode(client: Cluster, keys: readonly string[]): string[][] {
    const byNode = new Map<string, string[]>();
    const prefix = this.commands.keyPrefix;
    for (const key of keys) {
      const slot = calculateSlot(prefix + key);
      const node = client.slots[slot]?.[0] ?? `slot ${slot}`;
      const group = byNode.get(node);
      if (group) group.push(key);
      else byNode.set(node, [key]);
    }
    return [...byNode.values()];
  }

  /**
   * Deletes every key that starts with `literalPrefix` (a key as the cache names it, without the
   * client's `keyPrefix`) by SCAN + UNLINK in batches — never KEYS, which blocks Redis. On a
   * Cluster every primary is scanned. Returns the number of keys removed.
   */
  async scanAndUnlink(literalPrefix: string): Promise<number> {
    const nodes = isCluster(this.client) ? this.client.nodes('master') : [this.client];
    const clientPrefix = this.commands.keyPrefix;
    // SCAN's MATCH is not prefixed by ioredis, so the pattern carries the client's keyPrefix itself.
    const pattern = `${escapeGlob(clientPrefix + literalPrefix)}*`;
    let removed = 0;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, found] = await this.commands.run(
          'SCAN',
          () => node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_BATCH),
          isCluster(this.client) ? `${node.options.host}:${node.options.port}` : ANYWHERE,
        );
        cursor = next;
        // SCAN returns full key names; UNLINK adds the client's keyPrefix again, so strip it.
        const keys = clientPrefix ? found.map((key) => key.slice(clientPrefix.length)) : found;
        removed += await this.unlink(keys);
      } while (cursor !== '0');
    }
    return removed;
  }
}

/** An epoch as the tag scripts take it: an integer in decimal, all 16 digits. */
function epochString(epoch: number): string {
  return epoch.toFixed(0);
}

/** UNLINKs `keys` in one pipeline (on a Cluster: keys of one node), and publishes `announce` at its end. */
async function unlinkPipelined(
  client: Redis | Cluster,
  keys: readonly string[],
  announce?: Announcement,
): Promise<number> {
  const pipeline = client.pipeline();
  for (const key of keys) pipeline.unlink(key);
  if (announce) pipeline.publish(announce.channel, announce.message);
  const results = await pipeline.exec();
  throwFirstError(results);
  return countDeleted(announce ? results!.slice(0, -1) : results);
}

function throwFirstError(results: [Error | null, unknown][] | null): void {
  for (const [error] of results ?? []) if (error) throw error;
}

function sum(counts: number[]): number {
  return counts.reduce((total, count) => total + count, 0);
}

function countDeleted(results: [Error | null, unknown][] | null): number {
  let deleted = 0;
  for (const [error, value] of results ?? []) {
    if (error) throw error;
    deleted += Number(value) || 0;
  }
  return deleted;
}

/** Escapes glob metacharacters so a literal prefix matches only itself in SCAN MATCH. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}
