// The control of the specs that show what ordered writes prevent: the cache's store made to write the
// way a naive cache does (a plain SET for every write and every load's value, a plain DEL for an
// eviction), so the same rounds that end right with the module's writes end stale without them. The
// plain SETs go straight to the client: the module itself has no unguarded write.
import type { CacheEngine } from '../../lib/core/cache-engine.js';
import type { CacheStore } from '../../lib/store/cache-store.js';

type Patched = Pick<CacheStore, 'write' | 'completeLease' | 'evict'>;

/**
 * Switches `engine`'s store to naive writes; returns the switch back (to whatever was installed
 * before). `onSet` runs after each plain SET landed (diagnostics).
 */
export function writeUnguarded(engine: CacheEngine, onSet: () => void = () => undefined): () => void {
  const store = engine.store;
  const plainSet = async (key: string, entry: Buffer, ttlMs: number) => {
    await store.client.set(key, entry, 'PX', Math.max(1, Math.round(ttlMs)));
    onSet();
  };
  const before: Patched = { write: store.write, completeLease: store.completeLease, evict: store.evict };
  const naive: Patched = {
    write: async (key, entry, ttlMs) => {
      await plainSet(key, entry, ttlMs);
      return 'written';
    },
    // The value lands whatever the key holds now; the lease is only given back (waiters wake).
    completeLease: async (key, token, entry, ttlMs, channel) => {
      if (entry) await plainSet(key, entry, ttlMs);
      return before.completeLease.call(store, key, token, undefined, 0, channel);
    },
    evict: (keys, _tombstoneMs, announce) => store.unlink(keys, announce),
  };
  Object.assign(store, naive);
  return () => Object.assign(store, before);
}
