/**
 * What one cached call did:
 * - `hit`: served from the cache;
 * - `miss`: not in the cache, the method ran (and its result was stored unless told otherwise);
 * - `stale`: served a stale value while it is refreshed (stale-while-revalidate);
 * - `bypass`: the cache was skipped (`condition` false, or the cache is not started);
 * - `error`: the cache failed (down, slow, garbage) and the method's result was served instead.
 */
export type CacheOutcome = 'hit' | 'miss' | 'stale' | 'bypass' | 'error';
