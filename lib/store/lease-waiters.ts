import { EMPTY_MARK, LEASE_TOKEN_BYTES } from './entry-scripts.js';

/**
 * Why a wait ended: the lease was released with the holder's value stored (or revoked by a newer
 * write: either way the key is worth reading again), released with nothing stored (the method threw,
 * `unless` or `cacheNull` kept its result out), the subscription was lost, or time ran out.
 */
export type WakeReason = 'stored' | 'empty' | 'lost' | 'timeout';

/**
 * What a release message carried besides its key (COMPLETE_LEASE): the token of the lease it ends and
 * the entry as that holder stored it. Untrusted: a waiter takes it only when `holder` is the token
 * ACQUIRE_LEASE named to it, and only as an entry that decodes and passes the checks a read's does.
 */
export interface CarriedEntry {
  holder: Buffer;
  entry: Buffer;
}

/** Waits of a caller for one key's lease to be released; registered before the caller re-reads. */
export interface LeaseWake {
  /** Resolves when the key's lease was released since `listen` (or the subscription was lost), or after `ms`. */
  wait(ms: number): Promise<WakeReason>;
  /** What the release that ended the wait carried, if it carried a value. */
  carried(): CarriedEntry | undefined;
  /** Stops listening (also done by `wait` when it resolves). */
  cancel(): void;
}

interface Listener {
  woken?: WakeReason;
  carried?: CarriedEntry;
  resolve?: (reason: WakeReason) => void;
}

/**
 * The callers of one application waiting for lease releases, by key: what a release message (or the
 * loss of the subscription that carries them) wakes. Shared by every subscription kind (Redis's in
 * namespace-subscriber.ts, the testing module's in-process one).
 */
export class LeaseWaiters {
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(
    /** Whether a key in a release message could be one of this namespace's entries. */
    private readonly isEntryKey: (key: string) => boolean = () => true,
    /** Counts a message no instance would send (dropped, never acted on). */
    private readonly rejected: () => void = () => undefined,
  ) {}

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
      carried: () => listener.carried,
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

  /**
   * A message of the lease channel (COMPLETE_LEASE's): the released key; with EMPTY_MARK after it
   * when the holder gave the lease back without a value; or with NUL, the holder's token and the
   * entry it stored. A message of another shape, or whose key cannot be one of the namespace's
   * entries, is counted, not acted on.
   */
  released(message: string | Buffer): void {
    if (typeof message === 'string') {
      const empty = message.endsWith(EMPTY_MARK);
      const key = empty ? message.slice(0, -EMPTY_MARK.length) : message;
      if (!this.isEntryKey(key)) return this.rejected();
      return this.wake(key, empty ? 'empty' : 'stored');
    }
    // Keys never contain NUL: the first one ends the key, whatever bytes the entry holds.
    const end = message.indexOf(0);
    const key = message.toString('utf8', 0, end < 0 ? message.length : end);
    if (!this.isEntryKey(key)) return this.rejected();
    if (end < 0) return this.wake(key, 'stored');
    const after = message.length - end - 1;
    if (after === 0) return this.wake(key, 'empty');
    if (after <= LEASE_TOKEN_BYTES) return this.rejected();
    const holder = message.subarray(end + 1, end + 1 + LEASE_TOKEN_BYTES);
    this.wake(key, 'stored', { holder, entry: message.subarray(end + 1 + LEASE_TOKEN_BYTES) });
  }

  /** Wakes every waiter (the subscription was lost: releases may be missed from now on). */
  wakeAll(reason: WakeReason): void {
    for (const key of [...this.listeners.keys()]) this.wake(key, reason);
  }

  /** Forgets every waiter (after `wakeAll`, when the subscription stops). */
  clear(): void {
    this.listeners.clear();
  }

  private wake(key: string, reason: WakeReason, carried?: CarriedEntry): void {
    const listeners = this.listeners.get(key);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      if (listener.woken === undefined) {
        listener.woken = reason;
        listener.carried = carried;
      }
      listener.resolve?.(reason);
    }
  }
}
