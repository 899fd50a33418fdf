import { CommandTimeoutError } from '../../store/redis-cache.store.js';
import { RetryTimer } from '../retry-timer.js';

/** How many leases are remembered; past it the rest end by their TTL (lockTtl): waiters wait longer, nothing is stale. */
export const MAX_RETURNS = 10_000;
const RETRY_MS = 1_000;

/**
 * Leases a failed command may still hold (an acquisition that timed out, a completion Redis refused),
 * given back by their token as soon as Redis answers again (`flush`, on recovery) and retried every
 * second while any remain. Without this, each would keep every waiter of its key waiting until
 * lockTtl. A lease is given back by token, so a value someone stored since is never deleted. Not an
 * invalidation: nothing stale can come of a lease left behind, only a wait.
 */
export class LeaseReturns {
  /** By key and token: two leases of one key (two timed-out attempts) are both given back. */
  private leases = new Map<string, { key: string; token: Buffer }>();
  /** Returns waiting for a timed-out command to be done with (see `later`). */
  private awaiting = 0;
  private flushing = false;
  private inFlight = 0;
  private readonly retry = new RetryTimer(() => void this.flush(), RETRY_MS);

  /** `giveBack`: gives the lease of `key` back if it still carries `token`; rejects when Redis fails. */
  constructor(private readonly giveBack: (key: string, token: Buffer) => Promise<unknown>) {}

  /** Leases not given back yet. */
  get size(): number {
    return this.leases.size + this.awaiting + this.inFlight;
  }

  /**
   * Remembers a lease `failure`'s command may hold. A command that timed out may still take the lease
   * later (the client resends it): it is given back only once the client is done with the command.
   */
  later(key: string, token: Buffer, failure?: unknown): void {
    if (!(failure instanceof CommandTimeoutError)) return this.add(key, token);
    if (this.awaiting + this.leases.size >= MAX_RETURNS) return;
    this.awaiting++;
    void failure.settled.then(() => {
      this.awaiting--;
      this.add(key, token);
    });
  }

  /** Gives back every lease remembered; what fails again stays. One flush at a time. Never rejects. */
  async flush(): Promise<void> {
    if (this.flushing || this.leases.size === 0) return;
    this.flushing = true;
    const leases = [...this.leases.values()];
    this.leases = new Map();
    this.inFlight = leases.length;
    try {
      await Promise.all(leases.map(({ key, token }) => this.giveBack(key, token).catch(() => this.add(key, token))));
    } finally {
      this.flushing = false;
      this.inFlight = 0;
    }
    if (this.leases.size > 0) this.retry.schedule();
  }

  /** No more retries (the application is closing). */
  stop(): void {
    this.retry.stop();
  }

  private add(key: string, token: Buffer): void {
    if (this.leases.size < MAX_RETURNS) this.leases.set(`${key}\0${token.toString('hex')}`, { key, token });
    this.retry.schedule();
  }
}
