import type { Cluster, Redis } from 'ioredis';
import { closeClient } from './close-client.js';
import { isCluster } from './redis-cache.store.js';

/** Waits of a caller for one key's lease to be released; registered before the caller re-reads. */
export interface LeaseWake {
  /** Resolves true when the key's lease was released since `listen`, false after `ms`. */
  wait(ms: number): Promise<boolean>;
  /** Stops listening (also done by `wait` when it resolves). */
  cancel(): void;
}

interface Listener {
  woken: boolean;
  resolve?: (woken: boolean) => void;
}

/**
 * Wakes the callers waiting for another process's load. Every lease release publishes the key on
 * one channel per namespace; one subscriber connection per application receives them and resolves
 * the local waiters of that key. If the subscriber is down, waiters still wake when the lease they
 * wait for expires (their wait is bounded by it), so a lost message costs time, never correctness.
 */
export class LeaseReleaseListener {
  private readonly listeners = new Map<string, Set<Listener>>();
  private subscriber: Redis | Cluster | undefined;

  constructor(readonly channel: string) {}

  /** True while the subscription is up, so a release would reach this process. */
  get listening(): boolean {
    return this.subscriber?.status === 'ready';
  }

  /** Opens the subscriber (a duplicate of `client`). Resolves when subscribed; never rejects. */
  async start(client: Redis | Cluster): Promise<void> {
    const subscriber = isCluster(client)
      ? client.duplicate(undefined, { lazyConnect: true })
      : client.duplicate({ lazyConnect: true, enableOfflineQueue: true });
    this.subscriber = subscriber;
    // Outages are reported by the command connection; this one only reconnects (and resubscribes).
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string, key: string) => {
      if (channel === this.channel) this.release(key);
    });
    try {
      await subscriber.connect();
      await subscriber.subscribe(this.channel);
    } catch {
      // Down at boot: ioredis keeps reconnecting and subscribes then (its autoResubscribe).
    }
  }

  async stop(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    for (const listeners of this.listeners.values()) for (const listener of listeners) listener.resolve?.(false);
    this.listeners.clear();
    if (subscriber) await closeClient(subscriber);
  }

  /** Starts listening for the release of `key`; call before re-reading it, so no release is missed. */
  listen(key: string): LeaseWake {
    const listener: Listener = { woken: false };
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
        if (listener.woken || !this.subscriber) {
          cancel();
          return Promise.resolve(listener.woken);
        }
        return new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => listener.resolve?.(false), Math.max(0, ms));
          listener.resolve = (woken) => {
            clearTimeout(timer);
            listener.resolve = undefined;
            cancel();
            resolve(woken);
          };
        });
      },
    };
  }

  private release(key: string): void {
    const listeners = this.listeners.get(key);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      listener.woken = true;
      listener.resolve?.(true);
    }
  }
}
