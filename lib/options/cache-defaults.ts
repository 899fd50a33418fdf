/** Defaults of the module options, as the contract and README state them. */
export const CACHE_DEFAULTS = {
  redisUrl: 'redis://127.0.0.1:6379',
  namespace: 'cache',
  ttlSeconds: 3600,
  jitter: 0.1,
  nullTtlSeconds: 60,
  commandTimeoutMs: 250,
  lock: true,
  lockTtlSeconds: 10,
  lockWaitMs: 5_000,
} as const;
