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

interface Listener {
  woken?: WakeReason;
  resolve?: (reason: WakeReason) => void;
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

  constructor(readonly channel: string) {}

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
      if (channel !== this.channel) return;
      if (message.endsWith(EMPTY_MARK)) this.wake(message.slice(0, -EMPTY_MARK.length), 'empty');
      else this.wake(message, 'stored');
    });
    // Subscribes on every connection, the first included: ioredis only resubscribes channels that
    // were subscribed before, which a connection that failed at boot never was.
    subscriber.on('ready', () => {
      this.subscribing = subscriber.subscribe(this.channel).then(
        () => {
          if (this.subscriber === subscriber) this.subscribed = true;
        },
        () => undefined,
      );
    });
    subscriber.on('close', () => {
      this.subscribed = false;
      // Releases published from now on are lost: waiters re-read instead of waiting for them.
      for (const key of [...this.listeners.keys()]) this.wake(key, 'lost');
    });
    try {
      await subscriber.connect();
      await this.subscribing;
    } catch {
      // Down at boot: ioredis keeps reconnecting, and 'ready' subscribes then.
    }
  }

  async stop(): Promise<void> {
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
