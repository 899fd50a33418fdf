import calculateSlot from 'cluster-key-slot';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { ANYWHERE, SOME_NODE, type ConnectionHealth } from './connection-health.js';
import { GuardedCommands, isCluster } from './guarded-commands.js';
import {
  ACQUIRE_LEASE,
  CARRIED_VALUE_MAX_BYTES,
  COMPLETE_LEASE,
  EVICT_ENTRY,
  LEASE_TOKEN_BYTES,
  LeaseReply,
  WRITE_ENTRY,
  WriteReply,
} from './entry-scripts.js';
import {
  ADMIT_TAGS,
  INVALIDATE_TAGS,
  MARK_PREFIX,
  PUBLISH_VIA,
  READ_EPOCH,
  READ_PREFIXES,
  SPUBLISH_VIA,
} from './invalidation-scripts.js';
import type { Announcement, CacheStore, LeaseAttempt, WriteOutcome } from './cache-store.js';
import { ShardChannels } from './shard-channels.js';
import { RENEW_MARKER } from './marker-script.js';
import { TickWrites } from './tick-writes.js';

export { CommandTimeoutError, isCluster } from './guarded-commands.js';
export type { Announcement, LeaseAttempt, WriteOutcome } from './cache-store.js';

/** The epoch key's PX: it only keeps epochs increasing within one clock tick or across a clock step back. */
export const EPOCH_PX_MS = 24 * 3_600_000;

/** How many keys one SCAN step asks for and one UNLINK removes. */
const SCAN_BATCH = 500;

/**
 * The Redis side of the cache: a handful of commands, each bounded by `commandTimeout` and refused
 * at once while the connection is not ready, so no caller ever queues behind a dead connection.
 * Every failure surfaces as `CacheUnavailableError` for the caller above to fail open on.
 * Knows nothing of Nest, keys' meaning or encoding.
 *
 * A message to publish once a change is done (`Announcement`) goes in the change's own pipeline (one
 * write, no extra round trip, processed right after the change on the node that made it); for a
 * deletion spanning several Cluster nodes, once every node answered, through the node of its first key.
 */
export class RedisCacheStore implements CacheStore {
  private readonly commands: GuardedCommands;
  private readonly tickWrites: TickWrites;

  constructor(
    readonly client: Redis | Cluster,
    commandTimeoutMs: number,
    health: ConnectionHealth,
    /** The channels announced by sharded pub/sub (none: all classic). */
    private readonly channels: ShardChannels = new ShardChannels(),
  ) {
    this.commands = new GuardedCommands(client, commandTimeoutMs, health);
    this.tickWrites = new TickWrites(client);
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
    this.tickWrites.coalesce();
    return this.commands.run('GET', () => this.client.getBuffer(key), this.commands.nodeOf(key));
  }

  /**
   * The stored bytes of every key, in order (`null` when absent). One MGET on a standalone server; on
   * a Cluster one MGET per hash slot (MGET cannot span slots), the slots of one node in one pipeline
   * and every node's pipeline sent at once, so the read costs one round trip per node in parallel.
   */
  getMany(keys: readonly string[]): Promise<Array<Buffer | null>> {
    if (keys.length === 0) return Promise.resolve([]);
    const client = this.client;
    if (!isCluster(client)) {
      this.tickWrites.coalesce();
      return this.commands.run('MGET', () => client.mgetBuffer(keys as string[]));
    }
    const values = new Array<Buffer | null>(keys.length);
    const reads = this.slotsByNode(client, keys).map((slots) =>
      this.commands.run(
        'MGET',
        async () => {
          const pipeline = client.pipeline();
          for (const slot of slots) pipeline.mgetBuffer(slot.map((at) => keys[at]));
          const replies = (await pipeline.exec()) ?? [];
          slots.forEach((slot, i) => {
            const [error, found] = replies[i] ?? [new Error('MGET: no reply')];
            if (error) throw error;
            slot.forEach((at, j) => (values[at] = (found as Array<Buffer | null>)[j]));
          });
        },
        this.commands.nodeOf(keys[slots[0][0]]),
      ),
    );
    return Promise.all(reads).then(() => values);
  }

  /**
   * The positions of `keys` grouped by hash slot, and the slots grouped by the Cluster node that
   * serves them (as the client knows it now): one pipeline per node, one MGET per slot.
   */
  private slotsByNode(client: Cluster, keys: readonly string[]): number[][][] {
    const bySlot = new Map<number, number[]>();
    const prefix = this.commands.keyPrefix;
    keys.forEach((key, at) => {
      const slot = calculateSlot(prefix + key);
      const positions = bySlot.get(slot);
      if (positions) positions.push(at);
      else bySlot.set(slot, [at]);
    });
    const byNode = new Map<string, number[][]>();
    for (const [slot, positions] of bySlot) {
      const node = client.slots[slot]?.[0] ?? `slot ${slot}`;
      const slots = byNode.get(node);
      if (slots) slots.push(positions);
      else byNode.set(node, [positions]);
    }
    return [...byNode.values()];
  }

  /**
   * Writes an entry (`@CachePut`, `CacheService.set`) with its TTL, unless a write or eviction of the
   * key landed after `startEpoch` (when the write began): then the key becomes a tombstone (see
   * WRITE_ENTRY). With
   * `announce`, its message is published by the same script, once the change is made.
   */
  async write(
    key: string,
    entry: Buffer,
    ttlMs: number,
    startEpoch: number,
    announce?: Announcement,
  ): Promise<WriteOutcome> {
    const px = Math.max(1, Math.round(ttlMs));
    // The writes of one tick (a batch's loaded ids) go out in one socket write, as reads do.
    this.tickWrites.coalesce();
    const reply = await this.commands.run(
      'WRITE_ENTRY',
      () =>
        WRITE_ENTRY.run(
          this.client,
          key,
          entry,
          px,
          epochString(startEpoch),
          announce?.channel ?? '',
          announce?.message ?? '',
        ),
      this.commands.nodeOf(key),
    );
    if (reply === WriteReply.WRITTEN) return 'written';
    return reply === WriteReply.TOMBSTONED ? 'tombstoned' : 'foreign';
  }

  /**
   * Takes the lease of `key` for `ttlMs`: on an absent key (`expectStamp` empty) by writing a lease
   * placeholder, on the stale entry whose stamp the caller read by marking its header. One script,
   * one key (store/entry-scripts.ts).
   */
  async acquireLease(key: string, token: Buffer, ttlMs: number, expectStamp: Buffer | ''): Promise<LeaseAttempt> {
    const ttl = Math.max(1, Math.round(ttlMs));
    const reply = (await this.commands.run(
      'ACQUIRE_LEASE',
      () => ACQUIRE_LEASE.runBinary(this.client, key, token, ttl, expectStamp),
      this.commands.nodeOf(key),
    )) as [number, number, Buffer?];
    if (reply[0] === LeaseReply.ACQUIRED) return { status: 'acquired' };
    if (reply[0] === LeaseReply.HELD) {
      const holder = reply[2];
      return Buffer.isBuffer(holder) && holder.length === LEASE_TOKEN_BYTES
        ? { status: 'held', remainingMs: reply[1], holder }
        : { status: 'held', remainingMs: reply[1] };
    }
    if (reply[0] === LeaseReply.FOREIGN) return { status: 'foreign' };
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
      () => {
        const [command, published] = this.channels.routeFor(channel, key);
        return COMPLETE_LEASE.run(
          this.client,
          key,
          token,
          entry ?? '',
          px,
          published,
          key,
          command,
          CARRIED_VALUE_MAX_BYTES,
        );
      },
      this.commands.nodeOf(key),
    );
    return held === 1;
  }

  /** The invalidation epoch a load starts in (store/invalidation-scripts.ts). */
  async readEpoch(epochKey: string): Promise<number> {
    return Number(
      await this.commands.run(
        'READ_EPOCH',
        () => READ_EPOCH.run(this.client, epochKey, EPOCH_PX_MS),
        this.commands.nodeOf(epochKey),
      ),
    );
  }

  /**
   * Invalidates `tagKeys` (in the epoch key's slot) at a new epoch, publishing `head epoch tail` on
   * each announcement's `channel`; resolves to the epoch. Each tag key is kept at least `markerTtlMs`.
   */
  async invalidateTags(
    epochKey: string,
    tagKeys: readonly string[],
    markerTtlMs: number,
    announcements: ReadonlyArray<{ channel: string; head: string; tail: string }> = [],
  ): Promise<number> {
    const announced = announcements.flatMap(({ channel, head, tail }) => [...this.channels.route(channel), head, tail]);
    const reply = await this.commands.run(
      'INVALIDATE_TAGS',
      () =>
        INVALIDATE_TAGS.runOn(
          this.client,
          [epochKey, ...tagKeys],
          [EPOCH_PX_MS, Math.round(markerTtlMs), ...announced],
        ),
      this.commands.nodeOf(epochKey),
    );
    return Number(reply);
  }

  /**
   * Before a tagged entry loaded in `loadEpoch` is written: keeps its tag keys at least `ttlMs` and
   * answers whether none was invalidated since (a missing one counts as invalidated: ADMIT_TAGS).
   */
  async admitTags(epochKey: string, tagKeys: readonly string[], ttlMs: number, loadEpoch: number): Promise<boolean> {
    const reply = await this.commands.run(
      'ADMIT_TAGS',
      () =>
        ADMIT_TAGS.runOn(
          this.client,
          [epochKey, ...tagKeys],
          [EPOCH_PX_MS, Math.max(1, Math.round(ttlMs)), epochString(loadEpoch)],
        ),
      this.commands.nodeOf(epochKey),
    );
    return reply === 1;
  }

  /**
   * Marks `prefix` invalid for everything loaded before a new epoch in the prefix markers (see
   * MARK_PREFIX), and publishes it on `channel`. Resolves to what it marked: the epoch, and the
   * prefix (`''` when it had to mark the whole namespace instead).
   */
  async markPrefix(
    epochKey: string,
    markersKey: string,
    prefix: string,
    options: { retentionMs: number; cap: number; channel: string },
  ): Promise<{ epoch: number; prefix: string }> {
    const message = (await this.commands.run(
      'MARK_PREFIX',
      () =>
        MARK_PREFIX.runOn(
          this.client,
          [epochKey, markersKey],
          [EPOCH_PX_MS, prefix, Math.round(options.retentionMs), options.cap, ...this.channels.route(options.channel)],
        ),
      this.commands.nodeOf(epochKey),
    )) as string;
    const space = message.indexOf(' ');
    return { epoch: Number(message.slice(0, space)), prefix: message.slice(space + 1) };
  }

  /**
   * Redis's clock (µs) and the prefix markers (prefix -> epoch), kept another `retentionMs`; missing
   * markers are recreated as a whole-namespace marker, announced on `channel` (READ_PREFIXES).
   */
  async readPrefixes(
    epochKey: string,
    markersKey: string,
    retentionMs: number,
    channel: string,
  ): Promise<{ clock: number; markers: Array<[string, number]> }> {
    const reply = (await this.commands.run(
      'READ_PREFIXES',
      () =>
        READ_PREFIXES.runOn(
          this.client,
          [epochKey, markersKey],
          [EPOCH_PX_MS, Math.round(retentionMs), ...this.channels.route(channel)],
        ),
      this.commands.nodeOf(epochKey),
    )) as string[];
    const markers: Array<[string, number]> = [];
    for (const member of reply.slice(1)) {
      const at = member.indexOf('\0');
      if (at >= 0) markers.push([member.slice(0, at), Number(member.slice(at + 1))]);
    }
    return { clock: Number(reply[0]), markers };
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

  /** A plain PUBLISH (any Cluster node may take it): for a message that announces no change. */
  async publishPlain(channel: string, message: string): Promise<void> {
    const routeKey = this.channels.routeKeyOf(channel);
    if (routeKey !== undefined) {
      const [, shard] = this.channels.route(channel);
      await this.commands.run(
        'SPUBLISH',
        () => SPUBLISH_VIA.run(this.client, routeKey, shard, message),
        this.commands.nodeOf(routeKey),
      );
      return;
    }
    // On a Cluster any node takes a PUBLISH (ioredis picks one): it tells nothing of any node's health.
    const node = isCluster(this.client) ? SOME_NODE : ANYWHERE;
    await this.commands.run('PUBLISH', () => this.client.publish(channel, message), node);
  }

  /** Whether `key` exists. */
  async exists(key: string): Promise<boolean> {
    return (await this.commands.run('EXISTS', () => this.client.exists(key), this.commands.nodeOf(key))) === 1;
  }

  /** `SET key 1 PX ttl`: a marker whose presence is all it says. */
  async mark(key: string, ttlMs: number, generation: string): Promise<string> {
    const reply = await this.commands.run(
      'RENEW_MARKER',
      () => RENEW_MARKER.run(this.client, key, Math.max(1, Math.round(ttlMs)), generation),
      this.commands.nodeOf(key),
    );
    return String(reply);
  }

  /**
   * The epochs of the given tag keys (`undefined` for an absent one, NaN for garbage): one MGET, the
   * tag keys sharing a Cluster slot.
   */
  async readTags(tagKeys: readonly string[]): Promise<Array<number | undefined>> {
    const values = await this.commands.run(
      'MGET',
      () => this.client.mget(...tagKeys),
      this.commands.nodeOf(tagKeys[0]),
    );
    return values.map((value) => (value === null ? undefined : Number(value)));
  }

  /**
   * UNLINK (non-blocking delete) of the given keys, pipelined, with `announce` in the same pipeline.
   * A Cluster pipeline must stay on one node, so on a Cluster the keys are grouped by the node that
   * serves their slot, one pipeline per node; with keys on several nodes the announcement is sent
   * once every node has deleted its own.
   */
  async unlink(keys: readonly string[], announce?: Announcement): Promise<number> {
    return this.removeKeys('UNLINK', keys, (pipeline, key) => pipeline.unlink(key), announce);
  }

  /**
   * Evicts the given entries: each becomes a tombstone kept `tombstoneMs` (EVICT_ENTRY), so a write
   * that began before the eviction and lands after it is not kept. Pipelined like `unlink`; resolves
   * to how many held a value.
   */
  async evict(keys: readonly string[], tombstoneMs: number, announce?: Announcement): Promise<number> {
    const px = Math.max(1, Math.round(tombstoneMs));
    return this.removeKeys(
      'EVICT',
      keys,
      (pipeline, key, whole) => EVICT_ENTRY.addTo(pipeline, key, [px], whole),
      announce,
    );
  }

  /**
   * Runs `add` for every key in one pipeline (on a Cluster one per node: a pipeline stays on one
   * node), with `announce` at its end. Resolves to the sum of the replies.
   */
  private async removeKeys(
    command: string,
    keys: readonly string[],
    add: AddRemoval,
    announce?: Announcement,
  ): Promise<number> {
    if (keys.length === 0) return 0;
    const client = this.client;
    const run = (group: readonly string[], withAnnouncement?: Announcement) =>
      removePipelined(client, group, add, withAnnouncement);
    if (!isCluster(client)) return this.commands.run(command, () => run(keys, announce));
    const groups = this.groupByNode(client, keys);
    if (groups.length === 1)
      return this.commands.run(command, () => run(keys, announce), this.commands.nodeOf(keys[0]));
    const removed = await this.commands.run(command, async () =>
      sum(await Promise.all(groups.map((group) => run(group)))),
    );
    if (announce) await this.publish(announce.channel, announce.message, keys[0]);
    return removed;
  }

  /** `keys` grouped by the Cluster node that serves their slot (as the client knows it now). */
  private groupByNode(client: Cluster, keys: readonly string[]): string[][] {
    return this.slotsByNode(client, keys).map((slots) => slots.flat().map((at) => keys[at]));
  }

  /**
   * Deletes every key that starts with `literalPrefix` (a key as the cache names it, without the
   * client's `keyPrefix`), except those `spare` keeps, by SCAN + UNLINK in batches — never KEYS, which blocks Redis. On a
   * Cluster every primary is scanned. Returns the number of keys removed.
   */
  async scanAndUnlink(literalPrefix: string, spare: (key: string) => boolean = () => false): Promise<number> {
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
        const keys = (clientPrefix ? found.map((key) => key.slice(clientPrefix.length)) : found).filter(
          (key) => !spare(key),
        );
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
/**
 * Adds one key's removal to a pipeline; `whole`: a script is sent itself rather than by SHA (it
 * loads it for the commands behind it).
 */
type AddRemoval = (pipeline: ChainableCommander, key: string, whole: boolean) => void;

/**
 * One pipeline of removals, `announce` at its end. Keys a script could not run on because the server
 * did not know it (NOSCRIPT: a restart, a failover) go again in one more pipeline, the first sent
 * whole, and the announcement with them: the first one went out before those keys were removed, so
 * an instance could have re-read their old values in between.
 */
async function removePipelined(
  client: Redis | Cluster,
  keys: readonly string[],
  add: AddRemoval,
  announce: Announcement | undefined,
): Promise<number> {
  const { removed, unknownScript } = await runRemovals(client, keys, add, false, announce);
  if (unknownScript.length === 0) return removed;
  const again = await runRemovals(client, unknownScript, add, true, announce);
  if (again.unknownScript.length > 0) throw new Error('NOSCRIPT after the script was sent whole');
  return removed + again.removed;
}

async function runRemovals(
  client: Redis | Cluster,
  keys: readonly string[],
  add: AddRemoval,
  whole: boolean,
  announce: Announcement | undefined,
): Promise<{ removed: number; unknownScript: string[] }> {
  const pipeline = client.pipeline();
  keys.forEach((key, i) => add(pipeline, key, whole && i === 0));
  if (announce) pipeline.publish(announce.channel, announce.message);
  const results = (await pipeline.exec()) ?? [];
  let removed = 0;
  const unknownScript: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const [error, value] = results[i] ?? [null, 0];
    if (error?.message.startsWith('NOSCRIPT')) unknownScript.push(keys[i]);
    else if (error) throw error;
    else removed += Number(value) || 0;
  }
  if (announce) throwFirstError(results.slice(keys.length));
  return { removed, unknownScript };
}

function throwFirstError(results: [Error | null, unknown][] | null): void {
  for (const [error] of results ?? []) if (error) throw error;
}

function sum(counts: number[]): number {
  return counts.reduce((total, count) => total + count, 0);
}

/** Escapes glob metacharacters so a literal prefix matches only itself in SCAN MATCH. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}
