import type { BookkeepingKeys } from '../core/bookkeeping-keys.js';
import type { CacheStore, NamespaceSubscription } from './cache-store.js';

/** What a backend tells the cache about itself. */
export interface BackendEvents {
  /** A message on the namespace's channels that no instance would send (counted, dropped). */
  rejected(): void;
  /** An outage began; `reason` as logged. */
  down(reason: string): void;
  /** Redis answers again after an outage: what it held back can be replayed. */
  recovered(): void;
}

/**
 * Where the cache lives: the configured Redis (redis-backend.ts), or RedisCacheTestingModule's
 * in-process keyspace (lib/testing). The lifecycle opens one in `app.init()` and runs the engine on
 * what it opened, the same way for both.
 */
export interface CacheBackend {
  /** Appended to the bootstrap's log line (`', in-process store'`); empty for Redis. */
  readonly where: string;
  /** Opens the store and subscription of one application's cache in `namespace`. */
  open(namespace: string, events: BackendEvents): CacheBackendSession;
}

/** One application's use of a backend: the engine runs on its store and waits on its lease listener. */
export interface CacheBackendSession {
  /** The namespace's bookkeeping keys and channels, scoped as the connection scopes keys. */
  readonly keys: BookkeepingKeys;
  readonly store: CacheStore;
  readonly leases: NamespaceSubscription;
  /** True during an outage (reads fail at once). */
  isDown(): boolean;
  /** True while connected with no outage: what the bootstrap announces as the connection 'up'. */
  readonly up: boolean;
  /**
   * Connects (a bounded wait: a Redis that is down does not stop the app), subscribes, and runs
   * `preflight` (the engine's first reads). Rejects with a RedisCacheConfigError for what no
   * reconnection will change (refused credentials, a database it does not have, missing ACL rules).
   */
  connect(preflight: () => Promise<void>): Promise<void>;
  /** The app begins closing: what fails from now on is no outage. */
  closing(): void;
  /** Unsubscribes and closes what the session opened (never a client the application owns). */
  close(): Promise<void>;
}
