import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { diag } from '@opentelemetry/api';
import {
  CACHE_CHANNELS,
  type CacheCallEvent,
  type CacheErrorEvent,
  type CacheInvalidationEvent,
  type CacheL1DropEvent,
  type CacheLeaseWaitEvent,
  type CacheLoadEndEvent,
} from '../events/cache-events.js';

/** The messages this folder listens to, by their key in CACHE_CHANNELS. */
interface CacheMessages {
  call: CacheCallEvent;
  loadEnd: CacheLoadEndEvent;
  leaseWait: CacheLeaseWaitEvent;
  error: CacheErrorEvent;
  invalidation: CacheInvalidationEvent;
  l1Drop: CacheL1DropEvent;
}

export type CacheListeners = { [K in keyof CacheMessages]?: (message: CacheMessages[K]) => void };

/**
 * Subscribes each listener to its channel; returns what unsubscribes them all. A listener that throws
 * is reported to OpenTelemetry's own diagnostic logger (`diag`) and goes no further: diagnostics_channel
 * would rethrow it as an uncaught exception, and the cache's caller must never pay for its telemetry.
 */
export function subscribeCacheListeners(listeners: CacheListeners, what: string): () => void {
  const subscribed = Object.entries(listeners).map(([channelKey, listener]) => {
    const channel = CACHE_CHANNELS[channelKey as keyof CacheMessages];
    const guarded = (message: unknown) => {
      try {
        (listener as (message: unknown) => void)(message);
      } catch (err) {
        diag.error(`nestjs-redis-cache: recording ${what} of a message on ${channel} failed`, err);
      }
    };
    subscribe(channel, guarded);
    return { channel, guarded };
  });
  return () => {
    for (const { channel, guarded } of subscribed.splice(0)) unsubscribe(channel, guarded);
  };
}
