import { Controller, Get } from '@nestjs/common';
import { CacheService, type CacheStats } from 'nestjs-redis-cache';

@Controller('cache')
export class CacheStatsController {
  constructor(private readonly cache: CacheService) {}

  /** Hits, misses, hit rate and errors since the app started, overall and per cache name. */
  @Get('stats')
  stats(): CacheStats {
    return this.cache.stats();
  }
}
