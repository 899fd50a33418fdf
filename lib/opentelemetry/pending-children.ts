import type { Context } from '@opentelemetry/api';
import type { CacheCallEvent, CacheLeaseWaitEvent, CacheLoadEndEvent } from '../events/cache-events.js';
import { callId } from './pending-errors.js';

/** A span that belongs under a call's span, waiting for that call to finish. */
export interface PendingChild {
  readonly kind: 'load' | 'leaseWait';
  readonly event: CacheLoadEndEvent | CacheLeaseWaitEvent;
  /** When its message arrived: `Date.now()` (the span's end) and `performance.now()` (to match a call). */
  readonly end: number;
  readonly at: number;
  /** The context active when it arrived: its parent if no call claims it. */
  readonly context: Context;
}

/** How long a child waits for its call before it is exported under the context it arrived in. */
export const CLAIM_WITHIN_MS = 1_000;
/** How many children may wait at once; past it the oldest are exported unclaimed. */
const MAX_WAITING = 1_024;

/**
 * Loads and lease waits held until the call they happened in finishes, so their spans are children of
 * the call's span (`cache.read X` > `cache.load X`): each message is published when its work is done,
 * inside its call and before the call's own message, under the same cache, name and key. One no call
 * claims within CLAIM_WITHIN_MS (a load that outlived its call under `timeout`) is exported under the
 * context it arrived in, as a sibling of the call: late, never lost.
 */
export class PendingChildren {
  private readonly byCall = new Map<string, PendingChild[]>();
  private waiting = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `unclaimed`: exports a child no call claimed. */
  constructor(private readonly unclaimed: (child: PendingChild) => void) {}

  add(child: PendingChild): void {
    const { event } = child;
    const id = callId(event.cache, event.namespace, event.name, event.key);
    const list = this.byCall.get(id);
    if (list) list.push(child);
    else this.byCall.set(id, [child]);
    this.waiting++;
    if (this.waiting > MAX_WAITING) this.expire(Infinity);
    this.timer ??= setTimeout(() => this.sweep(), CLAIM_WITHIN_MS).unref();
  }

  /**
   * The children of `call`, which began at `began` (`performance.now()`), in the order they finished;
   * no longer pending. One that finished before the call began belongs to another call, and stays.
   */
  take(call: CacheCallEvent, began: number): PendingChild[] {
    if (this.waiting === 0) return [];
    const id = callId(call.cache, call.namespace, call.name, call.key);
    const list = this.byCall.get(id);
    if (!list) return [];
    const mine = list.filter(({ at }) => at >= began);
    if (mine.length === 0) return [];
    const rest = list.filter(({ at }) => at < began);
    if (rest.length > 0) this.byCall.set(id, rest);
    else this.byCall.delete(id);
    this.waiting -= mine.length;
    return mine;
  }

  /** Exports every child still waiting (the instrumentation stops). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.expire(Infinity);
  }

  private sweep(): void {
    this.timer = undefined;
    this.expire(performance.now() - CLAIM_WITHIN_MS);
    if (this.waiting > 0) this.timer = setTimeout(() => this.sweep(), CLAIM_WITHIN_MS).unref();
  }

  /** Exports the children that arrived before `before` (Infinity: all of them). */
  private expire(before: number): void {
    for (const [id, list] of this.byCall) {
      const kept = list.filter(({ at }) => at >= before);
      for (const child of list) if (child.at < before) this.unclaimed(child);
      this.waiting -= list.length - kept.length;
      if (kept.length > 0) this.byCall.set(id, kept);
      else this.byCall.delete(id);
    }
  }
}
