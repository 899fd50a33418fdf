// The store-level half of the contract suite's factory: the store the engine talks to, bare, on the
// test Redis (RedisCacheStore, the Lua scripts) or in process (InMemoryCacheStore, their port), as
// the jest project says (contract-app.ts `contractStore`).
import { Redis } from 'ioredis';
import { BookkeepingKeys } from '../../lib/core/bookkeeping-keys.js';
import type { CacheStore } from '../../lib/store/cache-store.js';
import { ConnectionHealth } from '../../lib/store/connection-health.js';
import { RedisCacheStore } from '../../lib/store/redis-cache.store.js';
import { InProcessBus } from '../../lib/testing/in-process-bus.js';
import { InMemoryCacheStore } from '../../lib/testing/in-memory-store.js';
import { TestClock } from '../../lib/testing/test-clock.js';
import { testRedisUrl, uniqueNamespace } from '../support/test-app.js';
import { contractStore, delay, type ContractStore } from './contract-app.js';

export interface ContractStoreHandle {
  readonly kind: ContractStore;
  readonly store: CacheStore;
  /** A fresh namespace's bookkeeping keys and channels. */
  readonly keys: BookkeepingKeys;
  /** An entry key of the namespace. */
  key(name: string): string;
  /**
   * Collects what is published on `channel` from now on (in the order it arrives): as text, and as the
   * bytes published (a lease release may carry an entry).
   */
  subscribe(channel: string): Promise<{ received: string[]; bytes: Buffer[]; stop(): Promise<void> }>;
  /** What another client's plain `SET key payload PX ttlMs` leaves (a key the cache did not write). */
  plainSet(key: string, payload: Buffer, ttlMs: number): Promise<void>;
  /** Lets `ms` pass for the store: sleeps on Redis, moves the in-process store's clock. */
  wait(ms: number): Promise<void>;
  close(): Promise<void>;
}

export async function createContractStore(): Promise<ContractStoreHandle> {
  const kind = contractStore();
  const namespace = uniqueNamespace('store');
  const keys = new BookkeepingKeys(namespace, { keyPrefix: '', db: 0 });
  const key = (name: string) => `${namespace}:${name}`;
  if (kind === 'in-memory') {
    const clock = new TestClock();
    const bus = new InProcessBus();
    const store = new InMemoryCacheStore(clock, bus);
    return {
      kind,
      store,
      plainSet: (name, payload, ttlMs) => store.plainSet(name, payload, ttlMs),
      keys,
      key,
      subscribe: async (channel) => {
        const received: string[] = [];
        const bytes: Buffer[] = [];
        const stop = bus.subscribe(channel, (message) => {
          received.push(message.toString());
          bytes.push(Buffer.from(message));
        });
        return { received, bytes, stop: async () => stop() };
      },
      wait: async (ms) => clock.advance(ms),
      close: async () => undefined,
    };
  }
  const client = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
  const store = new RedisCacheStore(
    client,
    2_000,
    new ConnectionHealth({ warn: () => undefined, log: () => undefined }),
  );
  await store.whenReady();
  const subscribe = async (channel: string) => {
    const subscriber = client.duplicate();
    const received: string[] = [];
    const bytes: Buffer[] = [];
    subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      received.push(message.toString());
      bytes.push(message);
    });
    await subscriber.subscribe(channel);
    return { received, bytes, stop: async () => void (await subscriber.quit()) };
  };
  const plainSet = async (name: string, payload: Buffer, ttlMs: number) =>
    void (await client.set(name, payload, 'PX', Math.max(1, Math.round(ttlMs))));
  return { kind, store, keys, key, plainSet, subscribe, wait: delay, close: async () => void (await client.quit()) };
}
