import type { Cluster, Redis } from 'ioredis';
import { closeClient } from './close-client.js';
import { EMPTY_MARK } from './lease-scripts.js';
import { isCluster } from './redis-cache.store.js';

/**
 * Why a wait ended: the lease was released with the holder's value stored (or revoked by a newer
 * write: either way the key is worth reading again), released with nothing stored (the method threw,
 * `unless` or `cacheNull` kept its result out), the subscription was lost, or time ran out.
 */
export type WakeReason = 'stored' | 'empty' | 'lost' | 'timeout';

/** Waits of a caller for one key's lease to be released; registered before the caller re-reads. */
export interface LeaseWake {
  /** Resolves when the key's lease was released since `listen` (or the subscription was lost), or after `ms`. */
  wait(ms: number): Promise<WakeReason>;
  /** Stops listening (also done by `wait` when it resolves). */
  cancel(): void;
}

/** How long after a Cluster node left the subscriber is taken to be subscribed on another one. */
const CLUSTER_RESUBSCRIBED_MS = 2_000;

interface Listener {
  woken?: WakeReason;
  resolve?: (reason: WakeReason) => void;
}

/**
 * Another channel the application's subscriber follows (the cleared prefixes, L1's invalidations):
 * its messages, and when its messages can be trusted to arrive (subscribed) or may be missed (lost).
 */
export interface SubscriptionFollower {
  readonly channel: string;
  received(message: string): void;
  /** Subscribed (again): messages arrive from now on; catch up on what was missed. Never rejects. */
  subscribed(): Promise<void>;
  lost(): void;
}

/**
 * Wakes the callers waiting for another process's load. Every lease release publishes the key on
 * one channel per namespace; one subscriber connection per application receives them and resolves
 * the local waiters of that key. If the subscription is down, waiters are woken when it drops and
 * then re-read at short intervals, and a lease they wait for ends by its TTL anyway: a lost message
 * costs time, never correctness.
 */
export class LeaseReleaseListener {
  private readonly listeners = new Map<string, Set<Listener>>();
  private subscriber: Redis | Cluster | undefined;
  private subscribed = false;
  private subscribing: Promise<void> | undefined;
  private readonly followers = new Map<string, SubscriptionFollower>();
  /** On a Cluster, after a node left: when the followers may trust their messages again. */
  private catchUp: NodeJS.Timeout | undefined;

  constructor(readonly channel: string) {}

  /** Also subscribes to `follower.channel` and tells it when the subscription is up or lost. Before `start`. */
  follow(follower: SubscriptionFollower): void {
    this.followers.set(follower.channel, follower);
  }

  /** True while the subscription is confirmed, so a release would reach this process. */
  get listening(): boolean {
    return this.subscribed && this.subscriber?.status === 'ready';
  }

  /** Opens the subscriber (a duplicate of `client`). Resolves once subscribed or failed; never rejects. */
  async start(client: Redis | Cluster): Promise<void> {
    const subscriber = isCluster(client)
      ? client.duplicate(undefined, { lazyConnect: true })
      : client.duplicate({ lazyConnect: true, enableOfflineQueue: true });
    this.subscriber = subscriber;
    // Outages are reported by the command connection; this one only reconnects.
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return this.followers.get(channel)?.received(message);
      if (message.endsWith(EMPTY_MARK)) this.wake(message.slice(0, -EMPTY_MARK.length), 'empty');
      else this.wake(message, 'stored');
    });
    // Subscribes on every connection, the first included: ioredis only resubscribes channels that
    // were subscribed before, which a connection that failed at boot never was.
    subscriber.on('ready', () => {
      const followers = [...this.followers.values()];
      this.subscribing = subscriber.subscribe(this.channel, ...followers.map((follower) => follower.channel)).then(
        async () => {
          if (this.subscriber !== subscriber) return;
          this.subscribed = true;
          await Promise.all(followers.map((follower) => follower.subscribed()));
        },
        () => undefined,
      );
    });
    subscriber.on('close', () => {
      this.subscribed = false;
      for (const follower of this.followers.values()) follower.lost();
      // Releases published from now on are lost: waiters re-read instead of waiting for them.
      for (const key of [...this.listeners.keys()]) this.wake(key, 'lost');
    });
    if (isCluster(subscriber)) {
      // A Cluster stays 'ready' and emits no 'close' when nodes die (not even all of them): its pub/sub
      // connection moves to another node, and what was published meanwhile never arrives. A node
      // leaving the pool is that moment: waiters re-read instead of waiting out lockWait.
      subscriber.on('-node', () => {
        // Before the first subscription, nodes leave as the client learns the topology (replicas
        // dropped from a pool that began with every seed): nothing was missed then.
        if (!this.subscribed) return;
        for (const key of [...this.listeners.keys()]) this.wake(key, 'lost');
        // The followers cannot trust their messages either. ioredis announces no re-subscription on
        // the next node, so they catch up a while later, when that has long happened.
        const followers = [...this.followers.values()];
        for (const follower of followers) follower.lost();
        clearTimeout(this.catchUp);
        this.catchUp = setTimeout(
          () => void Promise.all(followers.map((follower) => follower.subscribed())),
          CLUSTER_RESUBSCRIBED_MS,
        );
        this.catchUp.unref();
      });
    }
    try {
      await subscriber.connect();
      await this.subscribing;
    } catch {
      // Down at boot: ioredis keeps reconnecting, and 'ready' subscribes then.
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.catchUp);
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.subscribed = false;
    for (const key of [...this.listeners.keys()]) this.wake(key, 'lost');
    this.listeners.clear();
    if (subscriber) await closeClient(subscriber);
  }

  /** Starts listening for the release of `key`; call before re-reading it, so no release is missed. */
  listen(key: string): LeaseWake {
    const listener: Listener = {};
    let set = this.listeners.get(key);
    if (!set) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    const cancel = () => {
      const current = this.listeners.get(key);
      if (!current?.delete(listener)) return;
      if (current.size === 0) this.listeners.delete(key);
    };
    return {
      cancel,
      wait: (ms) => {
        if (listener.woken) {
          cancel();
          return Promise.resolve(listener.woken);
        }
        return new Promise<WakeReason>((resolve) => {
          const timer = setTimeout(() => listener.resolve?.('timeout'), Math.max(0, ms));
          listener.resolve = (reason) => {
            clearTimeout(timer);
            listener.resolve = undefined;
            cancel();
            resolve(reason);
          };
        });
      },
    };
  }

  private wake(key: string, reason: WakeReason): void {
    const listeners = this.listeners.get(key);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      listener.woken ??= reason;
      listener.resolve?.(reason);
    }
  }
}
