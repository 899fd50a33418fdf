import type { CacheCallEvent, CacheErrorEvent } from '../events/cache-events.js';

/** A failure waiting for the call it happened in: its message and when it arrived (`performance.now()`). */
export interface PendingError {
  readonly event: CacheErrorEvent;
  readonly at: number;
}

/** How many calls may have failures waiting, and how many failures one call keeps. */
const MAX_CALLS = 256;
const MAX_PER_CALL = 8;

/**
 * Failures held until the call they belong to finishes, so they become events of that call's span.
 * A failure is published inside its call, before the call's own message, under the same cache, name
 * and key; one that arrived before the call began belongs to an earlier call and is dropped. Failures
 * no call claims (a background refresh, an eviction) are forgotten oldest first past MAX_CALLS.
 */
export class PendingErrors {
  private readonly byCall = new Map<string, PendingError[]>();

  add(event: CacheErrorEvent, at: number): void {
    const id = callId(event.cache, event.namespace, event.name, event.key);
    const waiting = this.byCall.get(id);
    if (waiting) {
      waiting.push({ event, at });
      if (waiting.length > MAX_PER_CALL) waiting.shift();
      return;
    }
    this.byCall.set(id, [{ event, at }]);
    if (this.byCall.size > MAX_CALLS) this.byCall.delete(this.byCall.keys().next().value!);
  }

  /**
   * The failures of `call`, which began at `began` (`performance.now()`), in the order they happened;
   * they are no longer pending.
   */
  take(call: CacheCallEvent, began: number): PendingError[] {
    if (this.byCall.size === 0) return [];
    const id = callId(call.cache, call.namespace, call.name, call.key);
    const waiting = this.byCall.get(id);
    if (!waiting) return [];
    this.byCall.delete(id);
    return waiting.filter(({ at }) => at >= began);
  }
}

/** What identifies a call among the messages: its cache, namespace, name and key. */
export function callId(cache: string, namespace: string, name: string, key: string | undefined): string {
  return `${cache}\0${namespace}\0${name}\0${key ?? ''}`;
}
