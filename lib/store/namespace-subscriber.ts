import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { NamespaceSubscription, SubscriptionFollower } from './cache-store.js';
import { within } from '../core/within.js';
import { closeClient } from './close-client.js';
import type { HealthLogger } from './connection-health.js';
import { configurationProblem } from './connection-problems.js';
import { LeaseWaiters, type LeaseWake } from './lease-waiters.js';
import { isCluster } from './redis-cache.store.js';
import { ShardChannels } from './shard-channels.js';

export type { SubscriptionFollower } from './cache-store.js';
export type { LeaseWake, WakeReason } from './lease-waiters.js';

/** How long after a Cluster node left the subscriber is taken to be subscribed on another one. */
const CLUSTER_RESUBSCRIBED_MS = 2_000;
/** How long after a failed sharded subscription a new subscriber replaces the one that failed. */
const REPLACE_AFTER_MS = 1_000;
/**
 * How soon a SUBSCRIBE that failed on a connection that stays up is sent again, doubling up to
 * RESUBSCRIBE_MAX_MS: no 'ready' comes to subscribe again, and a refusal (an ACL changed while the
 * application runs) ends only when the rules do, which nothing but asking again shows.
 */
const RESUBSCRIBE_MS = 1_000;
const RESUBSCRIBE_MAX_MS = 30_000;
/** How often the subscription's own heartbeat is published (see `NamespaceSubscriber.beat`). */
export const HEARTBEAT_MS = 1_000;
/**
 * How many heartbeats may be on their way at a beat: one more not heard back means the subscription
 * went silent. Counted in beats, not measured in ms: two timer periods can be a hair under 2 s.
 */
const UNHEARD_BEATS = 2;
/**
 * The longest a subscription can be silent before the instance behaves as with a dropped one: the
 * beat after the last one heard, and UNHEARD_BEATS more.
 */
export const SILENCE_DETECTED_WITHIN_MS = (UNHEARD_BEATS + 1) * HEARTBEAT_MS;

/**
 * The application's one subscriber connection to its namespace's channels: lease releases (it wakes
 * the callers waiting for another process's load), and the channels of its followers (cleared
 * prefixes, L1's invalidations). A lost message costs time, never correctness (waiters re-read, and a
 * lease ends by its TTL); a subscription that went silent without closing is found by a heartbeat and
 * reconnected. docs/lease-protocol.md, "Release messages".
 *
 * On a Redis 7+ Cluster the followers' channels that `shards` maps go by sharded pub/sub
 * (SSUBSCRIBE, on the node of the namespace's slot), the others stay classic; the heartbeat then
 * goes both ways, so a silent connection of either kind is found.
 */
export class NamespaceSubscriber implements NamespaceSubscription {
  private readonly waiters: LeaseWaiters;
  private subscriber: Redis | Cluster | undefined;
  private subscribed = false;
  private readonly followers = new Map<string, SubscriptionFollower>();
  /** Why the last SUBSCRIBE was refused (NOPERM: the user lacks the channels), if it was. */
  refusal: Error | undefined;
  /** A refusal was logged and no SUBSCRIBE allowed since: logged once, however often asked. */
  private refusalLogged = false;
  /** On a Cluster, after a node left: when the followers may trust their messages again. */
  private catchUp: NodeJS.Timeout | undefined;
  /** A replacement subscriber about to be started (see `replaceLater`). */
  private replacing: NodeJS.Timeout | undefined;
  /** The next SUBSCRIBE after one that failed on a connection that stayed up (see `subscribe`). */
  private resubscribing: NodeJS.Timeout | undefined;
  /** What tells this subscriber's heartbeats from another's. */
  readonly heartbeatId = randomBytes(6).toString('base64url');
  /** This subscriber's own heartbeat channel. */
  readonly heartbeatChannel: string;
  /** Its heartbeat by sharded pub/sub, when `shards` maps this channel (ShardChannels.add). */
  readonly shardHeartbeatChannel: string;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Stops following a Sentinel failover (see `followSwitches`). */
  private unfollow: (() => void) | undefined;
  /**
   * The number of the last heartbeat sent, and of the last one heard back on this subscription, by
   * classic and by sharded pub/sub.
   */
  private sent = 0;
  private heard = 0;
  private heardShard = 0;
  /**
   * The per-slot shard channels of lease releases subscribed on this subscription (a slot's is
   * subscribed when a caller first waits for a lease there), and those being subscribed.
   */
  private readonly slotsListening = new Set<string>();
  private readonly slotsSubscribing = new Map<string, Promise<boolean>>();

  constructor(
    readonly channel: string,
    /** Whether a key in a release message could be one of this namespace's entries. */
    isEntryKey: (key: string) => boolean = () => true,
    /** Counts a message no instance would send (dropped, never acted on). */
    rejected: () => void = () => undefined,
    /** The channels that go by sharded pub/sub (filled, or not, before `start`). */
    private readonly shards: ShardChannels = new ShardChannels(),
    /** Through Sentinel: moves the subscriber's connection along with a failover (sentinel-switches.ts). */
    private readonly followSwitches: ((subscriber: Redis) => () => void) | undefined = undefined,
    /** Where a subscription refused while the application runs is reported, once until allowed again. */
    private readonly logger: HealthLogger | undefined = undefined,
  ) {
    this.waiters = new LeaseWaiters(isEntryKey, rejected);
    this.heartbeatChannel = `${channel}:${this.heartbeatId}`;
    this.shardHeartbeatChannel = `${this.heartbeatChannel}:shard`;
  }

  /** True once sharded pub/sub is chosen (a Redis 7+ Cluster): `shards` maps the shard heartbeat. */
  private get sharded(): boolean {
    return this.shards.shardOf(this.shardHeartbeatChannel) !== undefined;
  }

  /** Also subscribes to `follower.channel` and tells it when the subscription is up or lost. Before `start`. */
  follow(follower: SubscriptionFollower): void {
    this.followers.set(follower.channel, follower);
  }

  /**
   * True while the subscription is confirmed, so a release would reach this process: not while
   * catching up after a Cluster node left (waiters then poll instead of waiting for a release).
   */
  get listening(): boolean {
    return this.subscribed && this.catchUp === undefined && this.subscriber?.status === 'ready';
  }

  /** Opens the subscriber (a duplicate of `client`). Resolves once subscribed or failed; never rejects. */
  async start(client: Redis | Cluster): Promise<void> {
    const subscriber = isCluster(client)
      ? client.duplicate(undefined, { lazyConnect: true, shardedSubscribers: this.sharded })
      : // Subscribed on every 'ready' below, so ioredis need not resubscribe as well.
        client.duplicate({ lazyConnect: true, enableOfflineQueue: true, autoResubscribe: false });
    this.subscriber = subscriber;
    if (!isCluster(subscriber)) this.unfollow = this.followSwitches?.(subscriber);
    // Outages are reported by the command connection; this one only reconnects.
    subscriber.on('error', () => undefined);
    // As Buffers: a release may carry an entry's bytes (lease-waiters.ts). With no 'message' or
    // 'smessage' listener, ioredis decodes nothing itself.
    subscriber.on('messageBuffer', (received: Buffer, message: Buffer) => {
      const channel = received.toString();
      if (channel === this.heartbeatChannel) {
        const beat = Number(message.toString());
        if (this.subscriber === subscriber && beat > this.heard) this.heard = beat;
        return;
      }
      if (channel !== this.channel) return this.followers.get(channel)?.received(message.toString());
      this.waiters.released(message);
    });
    subscriber.on('smessageBuffer', (received: Buffer, message: Buffer) => {
      const channel = this.shards.channelOf(received.toString());
      if (channel === this.shardHeartbeatChannel) {
        const beat = Number(message.toString());
        if (this.subscriber === subscriber && beat > this.heardShard) this.heardShard = beat;
        return;
      }
      if (channel === this.channel) return this.waiters.released(message);
      if (channel !== undefined) this.followers.get(channel)?.received(message.toString());
    });
    let firstSubscribed!: () => void;
    const firstSubscription = new Promise<void>((resolve) => (firstSubscribed = resolve));
    // Subscribes on every connection, the first included: ioredis only resubscribes channels that
    // were subscribed before, which a connection that failed at boot never was.
    subscriber.on('ready', () => {
      // This connection's own subscription replaces a retry armed on the one before.
      clearTimeout(this.resubscribing);
      this.resubscribing = undefined;
      void this.subscribe(subscriber, client, RESUBSCRIBE_MS).then(firstSubscribed);
    });
    subscriber.on('close', () => {
      // One this instance replaced (replaceLater) closes after its successor took over.
      if (this.subscriber === subscriber) this.dropped();
    });
    if (isCluster(subscriber)) {
      // A Cluster stays 'ready' and emits no 'close' when nodes die (not even all of them): its pub/sub
      // connection moves to another node, and what was published meanwhile never arrives. A node
      // leaving the pool is that moment: waiters re-read instead of waiting out lockWait.
      subscriber.on('-node', () => {
        // Before the first subscription, nodes leave as the client learns the topology (replicas
        // dropped from a pool that began with every seed): nothing was missed then.
        if (!this.subscribed || this.subscriber !== subscriber) return;
        // Already catching up: during a failover ioredis says this many times a second (each failed
        // reconnect of a sharded subscriber). Once is enough; the catch-up waits from the last one.
        if (this.catchUp) return void this.catchUp.refresh();
        // Each slot's lease channel is confirmed again before a caller relies on it.
        this.slotsListening.clear();
        this.waiters.wakeAll('lost');
        // The followers cannot trust their messages either. ioredis announces no re-subscription on
        // the next node, so they catch up a while later, when that has long happened; only if the
        // subscription is still confirmed then (a heartbeat unheard meanwhile drops it).
        const followers = [...this.followers.values()];
        for (const follower of followers) follower.lost();
        this.catchUp = setTimeout(() => {
          this.catchUp = undefined;
          if (this.subscribed && this.subscriber === subscriber) {
            void Promise.all(followers.map((follower) => follower.subscribed()));
          }
        }, CLUSTER_RESUBSCRIBED_MS);
        this.catchUp.unref();
      });
    }
    try {
      await subscriber.connect();
      // The first 'ready' subscription, not connect() alone: a Cluster resolves connect() before it
      // emits 'ready' (on a later tick), when the subscription has not begun yet.
      await firstSubscription;
    } catch {
      // Down at boot: ioredis keeps reconnecting, and 'ready' subscribes then.
    }
  }

  /**
   * Subscribes `subscriber` to the namespace's channels, then tells the followers. Resolves once that
   * is done or failed; never rejects. A failure on a connection that stays up is tried again after
   * `retryMs` (doubling), or, on a sharded subscription and not a refusal, by a new subscriber.
   */
  private subscribe(subscriber: Redis | Cluster, client: Redis | Cluster, retryMs: number): Promise<void> {
    const followers = [...this.followers.values()];
    // The classic channels all, those with a shard channel too: an instance that announces there
    // (misconfigured, or mid-deploy) is still heard. Nothing arrives there otherwise.
    const classic = [this.channel, this.heartbeatChannel, ...followers.map((follower) => follower.channel)];
    const sharded = [...classic, this.shardHeartbeatChannel].flatMap((channel) => this.shards.shardOf(channel) ?? []);
    return Promise.all([
      subscriber.subscribe(...classic),
      // One SSUBSCRIBE: every shard channel hashes to the namespace's slot.
      sharded.length > 0 ? subscriber.ssubscribe(...sharded) : undefined,
    ]).then(
      async () => {
        if (this.subscriber !== subscriber) return;
        this.refusal = undefined;
        if (this.refusalLogged) {
          this.refusalLogged = false;
          this.logger?.log('Redis allows the cache its subscription again');
        }
        this.subscribed = true;
        this.heard = this.sent;
        this.heardShard = this.sent;
        await Promise.all(followers.map((follower) => follower.subscribed()));
      },
      (err: unknown) => {
        if (err instanceof Error) this.refusal = err;
        if (this.subscriber !== subscriber) return;
        // Not a refusal: ioredis's sharded subscribers can be left with none for the slot after a
        // failover, and a reconnect of this client does not mend them. A new subscriber does.
        const problem = configurationProblem(err);
        if (this.sharded && problem === undefined) return this.replaceLater(client);
        // While the application runs (at bootstrap a refusal fails app.init() instead): an ACL changed.
        if (problem !== undefined && this.heartbeat !== undefined && !this.refusalLogged) {
          this.refusalLogged = true;
          this.logger?.warn(
            `The cache's subscription was refused: ${problem}. Until Redis allows it, lease waiters poll and ` +
              `the in-process tier serves nothing (asked again at most every ${RESUBSCRIBE_MAX_MS / 1_000} s)`,
          );
        }
        this.resubscribeLater(subscriber, client, retryMs);
      },
    );
  }

  /** Sends the SUBSCRIBE again after `retryMs`, if `subscriber` is still this instance's and up. */
  private resubscribeLater(subscriber: Redis | Cluster, client: Redis | Cluster, retryMs: number): void {
    clearTimeout(this.resubscribing);
    this.resubscribing = setTimeout(() => {
      this.resubscribing = undefined;
      // Down or replaced meanwhile: the next 'ready' subscribes.
      if (this.subscriber !== subscriber || subscriber.status !== 'ready') return;
      void this.subscribe(subscriber, client, Math.min(2 * retryMs, RESUBSCRIBE_MAX_MS));
    }, retryMs);
    this.resubscribing.unref();
  }

  /**
   * Publishes the heartbeat every HEARTBEAT_MS through `publish` (the command connection), and treats
   * the subscription as dropped when UNHEARD_BEATS are not heard back. After `start`.
   */
  startHeartbeat(publish: (channel: string, message: string) => Promise<unknown>): void {
    this.heartbeat = setInterval(() => this.beat(publish), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private beat(publish: (channel: string, message: string) => Promise<unknown>): void {
    if (!this.subscribed) return;
    const heard = this.sharded ? Math.min(this.heard, this.heardShard) : this.heard;
    if (this.sent - heard >= UNHEARD_BEATS) {
      // Silent: what was published since may never arrive. Reconnecting makes a new subscription.
      this.dropped();
      this.subscriber?.disconnect(true);
      return;
    }
    // A heartbeat that cannot be sent is not heard back either: the connection cannot vouch for it.
    const beat = String(++this.sent);
    publish(this.heartbeatChannel, beat).catch(() => undefined);
    if (this.sharded) publish(this.shardHeartbeatChannel, beat).catch(() => undefined);
  }

  /** The subscription dropped or went silent: messages published from now on may be missed. */
  private dropped(): void {
    this.subscribed = false;
    // A catch-up armed before would tell the followers to trust a subscription that is gone.
    clearTimeout(this.catchUp);
    this.catchUp = undefined;
    this.slotsListening.clear();
    for (const follower of this.followers.values()) follower.lost();
    // Releases published from now on are lost: waiters re-read instead of waiting for them.
    this.waiters.wakeAll('lost');
  }

  /**
   * Closes this subscriber and starts another after REPLACE_AFTER_MS: the way out of a sharded
   * subscription that failed for a reason other than a refusal.
   */
  private replaceLater(client: Redis | Cluster): void {
    const broken = this.subscriber;
    if (!broken || this.replacing) return;
    this.dropped();
    this.replacing = setTimeout(() => {
      this.replacing = undefined;
      if (this.subscriber !== broken) return;
      void closeClient(broken);
      void this.start(client);
    }, REPLACE_AFTER_MS);
    this.replacing.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    clearTimeout(this.replacing);
    clearTimeout(this.resubscribing);
    clearTimeout(this.catchUp);
    this.catchUp = undefined;
    this.unfollow?.();
    this.unfollow = undefined;
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.subscribed = false;
    this.waiters.wakeAll('lost');
    this.waiters.clear();
    this.slotsListening.clear();
    if (subscriber) await closeClient(subscriber);
  }

  /**
   * Starts listening for the release of `key`; call before re-reading it, so no release is missed.
   * Where releases go per slot (sharded pub/sub) and this key's slot is not subscribed yet, a release
   * could be missed: the wait then subscribes to it and ends at once ('lost'), so the caller reads the
   * key again, and waits listening from then on. A slot is subscribed only once a caller waits there.
   */
  listen(key: string): LeaseWake {
    const wake = this.waiters.listen(key);
    const shard = this.shards.shardFor(this.channel, key);
    if (shard === undefined || this.slotsListening.has(shard)) return wake;
    return {
      cancel: wake.cancel,
      carried: wake.carried,
      wait: async (ms) => {
        const started = performance.now();
        if (await this.subscribeSlot(shard, ms)) {
          wake.cancel();
          return 'lost';
        }
        // Not subscribed in time: the lease's end (or lockWait) bounds the wait, as without a subscriber.
        return wake.wait(ms - (performance.now() - started));
      },
    };
  }

  /** SSUBSCRIBEs to a slot's lease channel; true once confirmed within `ms`. */
  private subscribeSlot(shard: string, ms: number): Promise<boolean> {
    const subscriber = this.subscriber;
    if (!subscriber || !isCluster(subscriber)) return Promise.resolve(false);
    let subscribing = this.slotsSubscribing.get(shard);
    if (!subscribing) {
      subscribing = subscriber.ssubscribe(shard).then(
        () => {
          if (this.subscriber === subscriber) this.slotsListening.add(shard);
          return true;
        },
        () => false,
      );
      const pending = subscribing;
      this.slotsSubscribing.set(shard, pending);
      void pending.then(() => this.slotsSubscribing.delete(shard));
    }
    return within(subscribing, ms, false);
  }
}
