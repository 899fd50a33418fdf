// nestjs-redis-cache/health: the @nestjs/terminus health indicator. Terminus is an optional peer
// dependency, imported only from this folder, so the package root works without it.
export { RedisCacheHealthIndicator } from './redis-cache-health.indicator.js';
export type {
  RedisCacheHealthDetails,
  RedisCacheHealthOptions,
  RedisCacheHealthState,
} from './redis-cache-health-options.interface.js';
