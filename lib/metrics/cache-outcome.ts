/**
 * What one cached call did:
 * - `hit`: served from the cache;
 * - `miss`: not in the cache, the method ran (and its result was stored unless told otherwise);
 * - `stale`: served a stale value while it is refreshed (stale-while-revalidate; reserved);
 * - `bypass`: the cache was not read (`condition` false, or a method with only `@CachePut` /
 *   `@CacheEvict`);
 * - `error`: the cache failed (down, slow, garbage) and the method's result was served instead.
 */
export type CacheOutcome = 'hit' | 'miss' | 'stale' | 'bypass' | 'error';
