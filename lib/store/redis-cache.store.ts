import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { CacheUnavailableError } from '../errors.js';
import type { ConnectionHealth } from './connection-health.js';
import { ACQUIRE_LEASE, COMPLETE_LEASE, LeaseReply } from './lease-scripts.js';
import { BUMP_EPOCH, MARK_TAG, READ_EPOCH, TOUCH_TAG } from './tag-scripts.js';

/** What an attempt to take a key's lease found. */
export type LeaseAttempt =
  | { status: 'acquired' }
  | { status: 'held'; remainingMs: number }
  /** The key no longer holds what the caller saw: read it again. */
  | { status: 'changed' };

/** How many keys one SCAN step asks for and one UNLINK removes. */
const SCAN_BATCH = 500;

/**
 * The Redis side of the cache: a handful of commands, each bounded by `commandTimeout` and refused
 * at once while the connection is not ready, so no caller ever queues behind a dead connection.
 * Every failure surfaces as `CacheUnavailableError` for the caller above to fail open on.
 * Knows nothing of Nest, keys' meaning or encoding.
 */
export class RedisCacheStore {
  private probing = false;
  /**
   * Commands in flight, oldest first, as a doubly linked list through the entries (a reply removes
   * its entry in O(1), in whatever order replies come, as on a Cluster). `commandTimeout` is the
   * same for every command, so the oldest also has the earliest deadline: one timer, armed for the
   * oldest deadline, is enough for all of them.
   */
  private oldest: PendingCommand | undefined;
  private newest: PendingCommand | undefined;
  /** Armed while commands may be pending; unref'd, so it never keeps the process alive. */
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly client: Redis | Cluster,
    private readonly commandTimeoutMs: number,
    private readonly health: ConnectionHealth,
  ) {}

  /** The stored bytes, or `null` when the key is absent. */
  get(key: string): Promise<Buffer | null> {
    return this.run('GET', () => this.client.getBuffer(key));
  }

  /** `SET key value PX ttl` in one command: there is never a write without a TTL. */
  async set(key: string, payload: Buffer, ttlMs: number): Promise<void> {
    await this.run('SET', () => this.client.set(key, payload, 'PX', Math.max(1, Math.round(ttlMs))));
  }

  /**
   * Takes the lease of `key` for `ttlMs`: on an absent key (`expectStamp` empty) by writing a lease
   * placeholder, on the stale entry whose stamp the caller read by marking its header. One script,
   * one key (store/lease-scripts.ts).
   */
  async acquireLease(key: string, token: Buffer, ttlMs: number, expectStamp: Buffer | ''): Promise<LeaseAttempt> {
    const ttl = Math.max(1, Math.round(ttlMs));
    const reply = (await this.run('ACQUIRE_LEASE', () =>
      ACQUIRE_LEASE.run(this.client, key, token, ttl, expectStamp),
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
    const held = await this.run('COMPLETE_LEASE', () =>
      COMPLETE_LEASE.run(this.client, key, token, entry ?? '', px, channel, key),
    );
    return held === 1;
  }

  /** The invalidation epoch a load starts in (store/tag-scripts.ts). */
  async readEpoch(epochKey: string): Promise<number> {
    return Number(await this.run('READ_EPOCH', () => READ_EPOCH.run(this.client, epochKey)));
  }

  /** A new invalidation epoch, above every one `readEpoch` answered before; the key kept `ttlMs`. */
  async bumpEpoch(epochKey: string, ttlMs: number): Promise<number> {
    return Number(await this.run('BUMP_EPOCH', () => BUMP_EPOCH.run(this.client, epochKey, Math.round(ttlMs))));
  }

  /** Marks a tag invalid for every entry loaded before `epoch`; the tag key kept at least `ttlMs`. */
  async markTag(tagKey: string, epoch: number, ttlMs: number): Promise<void> {
    await this.run('MARK_TAG', () => MARK_TAG.run(this.client, tagKey, epochString(epoch), Math.round(ttlMs)));
  }

  /**
   * Before a tagged entry loaded in `epoch` is written: keeps the tag key at least `ttlMs` (creating
   * it at `epoch` when absent) and answers the tag's epoch.
   */
  async touchTag(tagKey: string, ttlMs: number, epoch: number): Promise<number> {
    const reply = await this.run('TOUCH_TAG', () =>
      TOUCH_TAG.run(this.client, tagKey, Math.max(1, Math.round(ttlMs)), epochString(epoch)),
    );
    return Number(reply);
  }

  /**
   * The epochs of the given tag keys (`undefined` for an absent one). One GET each, sent together:
   * the keys live on different Cluster slots, so no MGET.
   */
  readTags(tagKeys: readonly string[]): Promise<Array<number | undefined>> {
    return this.run('GET', () =>
      Promise.all(
        tagKeys.map((key) => this.client.get(key).then((value) => (value === null ? undefined : Number(value)))),
      ),
    );
  }

  /**
   * UNLINK (non-blocking delete) of the given keys, pipelined. A Cluster pipeline must stay on one
   * node, so on a Cluster the keys are grouped by the node that serves their slot: one pipeline per node.
   */
  async unlink(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const client = this.client;
    if (keys.length === 1) return this.run('UNLINK', () => client.unlink(keys[0]));
    if (!isCluster(client)) return this.run('UNLINK', () => unlinkPipelined(client, keys));
    const byNode = new Map<string, string[]>();
    const prefix = this.clientKeyPrefix();
    for (const key of keys) {
      const slot = calculateSlot(prefix + key);
      const node = client.slots[slot]?.[0] ?? `slot ${slot}`;
      const group = byNode.get(node);
      if (group) group.push(key);
      else byNode.set(node, [key]);
    }
    return this.run('UNLINK', async () =>
      sum(await Promise.all([...byNode.values()].map((group) => unlinkPipelined(client, group)))),
    );
  }

  /**
   * Deletes every key that starts with `literalPrefix` (a key as the cache names it, without the
   * client's `keyPrefix`) by SCAN + UNLINK in batches — never KEYS, which blocks Redis. On a
   * Cluster every primary is scanned. Returns the number of keys removed.
   */
  async scanAndUnlink(literalPrefix: string): Promise<number> {
    const nodes = isCluster(this.client) ? this.client.nodes('master') : [this.client];
    const clientPrefix = this.clientKeyPrefix();
    // SCAN's MATCH is not prefixed by ioredis, so the pattern carries the client's keyPrefix itself.
    const pattern = `${escapeGlob(clientPrefix + literalPrefix)}*`;
    let removed = 0;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, found] = await this.run('SCAN', () => node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_BATCH));
        cursor = next;
        // SCAN returns full key names; UNLINK adds the client's keyPrefix again, so strip it.
        const keys = clientPrefix ? found.map((key) => key.slice(clientPrefix.length)) : found;
        removed += await this.unlink(keys);
      } while (cursor !== '0');
    }
    return removed;
  }

  /** ioredis's `keyPrefix`; a Cluster takes it from its own options or from `redisOptions`. */
  private clientKeyPrefix(): string {
    const client = this.client;
    if (isCluster(client)) return client.options.keyPrefix ?? client.options.redisOptions?.keyPrefix ?? '';
    return client.options.keyPrefix ?? '';
  }

  /**
   * Runs one command with the fail-fast rules: refused while the connection is not ready, abandoned
   * after `commandTimeout`. Reports success and failure to the health tracker (which logs once per outage).
   *
   * Not `async`, and no `Promise.race` with a timer per command: the caller's promise is settled
   * straight from the command's reply, and one timer (see {@link sweep}) abandons every command whose
   * deadline has passed. Measured: bench/README.md, "The store's fail-fast timer".
   */
  private run<T>(command: string, execute: () => Promise<T>): Promise<T> {
    if (this.client.status !== 'ready') {
      const error = new CacheUnavailableError(`Redis connection is ${this.client.status}; ${command} skipped`);
      this.health.failed(error);
      return Promise.reject(error);
    }
    // During an outage one command at a time probes Redis; the others fail at once instead of each
    // waiting out commandTimeout against a server that is paused or overloaded.
    const probe = this.health.isDown;
    if (probe) {
      if (this.probing) {
        return Promise.reject(new CacheUnavailableError(`Redis is unavailable; ${command} skipped while a probe runs`));
      }
      this.probing = true;
    }
    let reply: Promise<T>;
    try {
      reply = execute();
    } catch (err) {
      reply = Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      const pending = this.track(command, probe, reject);
      reply.then(
        (value) => {
          if (!this.settle(pending)) return; // abandoned: the caller has moved on
          this.health.succeeded();
          resolve(value);
        },
        (err: unknown) => {
          if (!this.settle(pending)) return;
          const error =
            err instanceof CacheUnavailableError ? err : new CacheUnavailableError(`${command} failed`, { cause: err });
          // An error reply (WRONGTYPE on a key someone else wrote, say) is about that key, not the
          // connection: Redis answered, so it is no outage and other keys keep being served.
          if (isReplyError(err)) this.health.succeeded();
          else this.health.failed(error);
          reject(error);
        },
      );
    });
  }

  private track(command: string, probe: boolean, reject: (error: Error) => void): PendingCommand {
    const pending: PendingCommand = {
      command,
      probe,
      reject,
      deadline: performance.now() + this.commandTimeoutMs,
      older: this.newest,
      newer: undefined,
    };
    if (this.newest) this.newest.newer = pending;
    else this.oldest = pending;
    this.newest = pending;
    // Armed once, not per command: while commands keep coming it fires about once per
    // commandTimeout, finds the commands that were that old already answered, and re-arms.
    if (!this.sweepTimer) this.armSweep(this.commandTimeoutMs);
    return pending;
  }

  /** Takes a command out of the pending list; false when it was already abandoned (or settled). */
  private settle(pending: PendingCommand): boolean {
    if (pending.reject === undefined) return false;
    pending.reject = undefined;
    if (pending.probe) this.probing = false;
    const { older, newer } = pending;
    if (older) older.newer = newer;
    else this.oldest = newer;
    if (newer) newer.older = older;
    else this.newest = older;
    pending.older = pending.newer = undefined;
    return true;
  }

  private armSweep(ms: number): void {
    this.sweepTimer = setTimeout(this.sweep, ms);
    this.sweepTimer.unref();
  }

  /** Abandons every command past its deadline, then re-arms for the oldest one left (if any). */
  private readonly sweep = (): void => {
    this.sweepTimer = undefined;
    const now = performance.now();
    while (this.oldest && this.oldest.deadline <= now) {
      const pending = this.oldest;
      const reject = pending.reject!;
      this.settle(pending);
      const error = new CommandTimeoutError(`${pending.command} exceeded commandTimeout (${this.commandTimeoutMs} ms)`);
      this.health.failed(error);
      reject(error);
    }
    // A timer may fire a little before performance.now() reaches the deadline: never re-arm for 0.
    if (this.oldest) this.armSweep(Math.max(1, Math.ceil(this.oldest.deadline - now)));
  };
}

/** One command awaiting its reply (see `RedisCacheStore.track`). */
interface PendingCommand {
  readonly command: string;
  /** The one command allowed through during an outage: its end lets the next one probe. */
  readonly probe: boolean;
  /** Rejects the caller's promise; cleared once the command is settled or abandoned. */
  reject: ((error: Error) => void) | undefined;
  /** `performance.now()` after which the command is abandoned. */
  readonly deadline: number;
  older: PendingCommand | undefined;
  newer: PendingCommand | undefined;
}

/**
 * A command abandoned after `commandTimeout`: unlike one refused or skipped, it was sent and may
 * still run on Redis (a lease it took, a write it made), so what it did may need undoing later.
 */
export class CommandTimeoutError extends CacheUnavailableError {}

export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/** An epoch as the tag scripts take it: an integer in decimal, all 16 digits. */
function epochString(epoch: number): string {
  return epoch.toFixed(0);
}

/** By name, so a reply error from another copy of ioredis is recognised too. */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

/** UNLINK of each key in one pipeline; the number deleted. */
async function unlinkPipelined(client: Redis | Cluster, keys: readonly string[]): Promise<number> {
  const pipeline = client.pipeline();
  for (const key of keys) pipeline.unlink(key);
  return countDeleted(await pipeline.exec());
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
