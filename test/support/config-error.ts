import { RedisCacheConfigError } from 'nestjs-redis-cache';

/** Runs `run`, which must throw a RedisCacheConfigError (code E_CACHE_CONFIG); returns it. */
export function configError(run: () => unknown): RedisCacheConfigError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(RedisCacheConfigError);
    expect((err as RedisCacheConfigError).code).toBe('E_CACHE_CONFIG');
    return err as RedisCacheConfigError;
  }
  throw new Error('expected a RedisCacheConfigError');
}
