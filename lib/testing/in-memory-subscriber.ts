import type { NamespaceSubscription, SubscriptionFollower } from '../store/cache-store.js';
import { LeaseWaiters, type LeaseWake } from '../store/lease-waiters.js';
import type { InProcessBus } from './in-process-bus.js';

/**
 * NamespaceSubscriber's part for RedisCacheTestingModule: the lease channel and its followers' (cleared
 * prefixes, L1 invalidations) subscribed on the in-process bus instead of a Redis connection. Nothing
 * drops it, so there is no heartbeat; `renew` and `wakeAll` are what the test clock's `advance` uses.
 */
export class InMemorySubscriber implements NamespaceSubscription {
  private readonly waiters: LeaseWaiters;
  private readonly followers = new Map<string, SubscriptionFollower>();
  private unsubscribes: Array<() => void> = [];
  private subscribed = false;

  constructor(
    readonly channel: string,
    private readonly bus: InProcessBus,
    isEntryKey: (key: string) => boolean,
    rejected: () => void,
  ) {
    this.waiters = new LeaseWaiters(isEntryKey, rejected);
  }

  get listening(): boolean {
    return this.subscribed;
  }

  follow(follower: SubscriptionFollower): void {
    this.followers.set(follower.channel, follower);
  }

  listen(key: string): LeaseWake {
    return this.waiters.listen(key);
  }

  /** Subscribes the lease channel and every follower's; resolves once the followers caught up. */
  async start(): Promise<void> {
    const followers = [...this.followers.values()];
    this.unsubscribes = [
      this.bus.subscribe(this.channel, (message) => this.waiters.released(message)),
      ...followers.map((follower) =>
        this.bus.subscribe(follower.channel, (message) => follower.received(message.toString())),
      ),
    ];
    this.subscribed = true;
    await Promise.all(followers.map((follower) => follower.subscribed()));
  }

  /**
   * The follower of `channel` loses its subscription and gets it back at once: it drops what it kept
   * (L1's values) and catches up. Nothing was missed; what it kept from before is gone.
   */
  renew(channel: string): void {
    const follower = this.followers.get(channel);
    if (!this.subscribed || !follower) return;
    follower.lost();
    void follower.subscribed();
  }

  /** Wakes every caller waiting for a lease: it reads the key again (a lease may have ended by the clock). */
  wakeAll(): void {
    this.waiters.wakeAll('lost');
  }

  stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    this.unsubscribes = [];
    this.subscribed = false;
    this.waiters.wakeAll('lost');
    this.waiters.clear();
    return Promise.resolve();
  }
}
