import { Body, Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { CacheService } from 'nestjs-redis-cache';
import { ParseBodyPipe } from '../common/parse-body.pipe.js';
import { AdminTokenGuard } from './admin-token.guard.js';
import { parseInvalidateCache, type InvalidateCacheInput } from './invalidate-cache.input.js';

/** Manual invalidation, for when data changed behind the app's back (a migration, a support fix). */
@Controller('admin/cache')
@UseGuards(AdminTokenGuard)
export class CacheAdminController {
  constructor(private readonly cache: CacheService) {}

  /**
   * Keys and prefixes are logical (`user:1`, `posts:`); the cache adds the namespace. Keys are
   * deleted; a prefix (or everything) is cleared in O(1), its entries left to expire.
   */
  @Post('invalidate')
  @HttpCode(200)
  async invalidate(
    @Body(new ParseBodyPipe(parseInvalidateCache)) input: InvalidateCacheInput,
  ): Promise<{ deleted: number } | { cleared: string }> {
    if ('keys' in input) return { deleted: await this.cache.del(...input.keys) };
    const prefix = 'prefix' in input ? input.prefix : '';
    await this.cache.clear(prefix);
    return { cleared: prefix };
  }
}
