/**
 * Errors thrown by nestjs-redis-cache. Each has a stable `code` for programmatic checks and, where
 * it wraps another failure, a `cause`.
 */

/** Base class of every error this package throws. */
export class RedisCacheError extends Error {
  constructor(
    message: string,
    /** Stable identifier, e.g. `'E_CACHE_CONFIG'`. */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Invalid module options or decorator options. Thrown during `app.init()` so a misconfiguration
 * never reaches the first request. The message names the option and, for decorators, `Class.method`.
 */
export class RedisCacheConfigError extends RedisCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'E_CACHE_CONFIG', options);
  }
}

/**
 * A value could not be encoded (`direction: 'encode'`: a cycle, a function, a symbol) or a stored
 * payload could not be decoded (`direction: 'decode'`: garbage or a foreign format). The cache treats
 * both as errors it survives: the value is returned but not stored, or the payload is a miss.
 */
export class CacheSerializationError extends RedisCacheError {
  constructor(
    message: string,
    readonly direction: 'encode' | 'decode',
    options?: { cause?: unknown },
  ) {
    super(message, direction === 'encode' ? 'E_CACHE_ENCODE' : 'E_CACHE_DECODE', options);
  }
}

/** A Redis command failed, timed out (`commandTimeout`) or the connection was not ready. */
export class CacheUnavailableError extends RedisCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'E_CACHE_UNAVAILABLE', options);
  }
}
