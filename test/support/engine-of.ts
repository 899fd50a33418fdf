// The engine behind an app's cache, for specs about its internals (the outage queue, the subscription,
// L1's readiness). The engine is not a public provider: it goes by an internal token.
import type { INestApplicationContext } from '@nestjs/common';
import { cacheTokens, DEFAULT_CACHE } from '../../lib/cache-names.js';
import type { CacheEngine } from '../../lib/core/cache-engine.js';

export function engineOf(app: INestApplicationContext, cache = DEFAULT_CACHE): CacheEngine {
  return app.get<symbol, CacheEngine>(cacheTokens(cache).engine);
}
