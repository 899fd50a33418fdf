import type { CacheEventPublisher } from '../../events/cache-event-publisher.js';
import type { ResolvedCacheConfig } from '../../options/resolve-options.js';
import type { CacheCodec } from '../../serialization/cache-codec.js';
import { encodeEntry, NO_TAGS } from '../cache-entry.js';
import { lostClassOf } from '../class-instance.js';
import type { NotStored, PreparedEntry, WritePolicy } from '../cache-engine.types.js';
import { normalizeTags, type CacheTags } from '../invalidation/cache-tags.js';
import { MAX_ENTRY_PX_MS } from '../invalidation/prefix-generations.js';
import type { OnceWarnings } from '../once-warnings.js';
import { FAILED, type FailOpenStore } from '../fail-open-store.js';

/** What preparing an entry needs of the running cache. */
export interface Preparing {
  config: ResolvedCacheConfig;
  codec: CacheCodec;
  tags: CacheTags;
  store: FailOpenStore;
  events: CacheEventPublisher;
  warnings: OnceWarnings;
}

/**
 * The entry to store for `value` under `policy`: fresh for the TTL (jittered; `nullTtl` for
 * null), kept `retainMs` longer for stale readers. 'skip' when it is deliberately not stored
 * (`unless`, `cacheNull: false`); 'failed' when it cannot be encoded (counted, warned once per name)
 * or its tags cannot be readied; 'invalidated' when one of its tags was invalidated after `epoch`,
 * the epoch read before it was loaded.
 */
export async function prepareEntry(
  { config, codec, tags: cacheTags, store, events, warnings }: Preparing,
  value: unknown,
  policy: WritePolicy,
  name: string,
  loadMs: number,
  epoch: number | undefined,
): Promise<PreparedEntry | NotStored> {
  // `unless` and a tags function are the user's code, run after the method: if they throw (or
  // return something that is not tags), the result is still returned, only not stored (counted,
  // logged once per name), and a write deletes the old value instead.
  let tags: readonly string[] = NO_TAGS;
  try {
    if (policy.unless?.(value)) return 'skip';
    if (policy.tagsOf) tags = normalizeTags(policy.tagsOf(value), `${name}: tags`);
  } catch (err) {
    events.failed(name, 'key', undefined, err);
    warnings.warnOnce(
      name,
      'callback',
      `${name}: \`unless\` or \`tags\` failed for a result, which was not cached`,
      err,
    );
    return 'failed';
  }
  const isNull = value === null || value === undefined;
  if (isNull && policy.cacheNull === false) return 'skip';
  // No entry outlives MAX_ENTRY_PX_MS: a prefix's clear marker is kept that long (prefix-generations.ts).
  const ttlMs = Math.min(
    (isNull ? config.nullTtlMs : policy.ttlMs) * (1 + config.jitter * Math.random()),
    MAX_ENTRY_PX_MS,
  );
  const pxMs = Math.min(ttlMs + (policy.retainMs ?? 0), MAX_ENTRY_PX_MS);
  if (tags.length > 0) {
    // Read before the load (undefined: Redis failed then); without it the value's age is unknown.
    if (epoch === undefined) {
      events.failed(name, 'epoch');
      return 'failed';
    }
    const admitted = await store.attempt(name, 'write', undefined, () => cacheTags.admit(tags, epoch, pxMs, loadMs));
    if (admitted === FAILED) return 'failed';
    if (!admitted) return 'invalidated';
  }
  const lostClass = lostClassOf(value);
  if (lostClass !== undefined) {
    warnings.adviseOnce(
      name,
      'class-instance',
      `${name}: its result is an instance of ${lostClass}, which a hit returns as a plain object (its ` +
        `methods and prototype are gone). Return plain data (a DTO, an interface type), or rebuild the ` +
        `instance where it is used.`,
    );
  }
  try {
    return {
      bytes: encodeEntry(
        codec,
        value,
        Date.now() + ttlMs,
        loadMs,
        epoch ?? 0,
        tags,
        policy.returned?.(),
        config.compression,
      ),
      pxMs,
    };
  } catch (err) {
    events.failed(name, 'encode', undefined, err);
    warnings.warnOnce(name, 'encode', `${name}: a result could not be encoded and was not cached`, err);
    return 'failed';
  }
}
