import { Module } from '@nestjs/common';
import { AdminTokenGuard } from './admin-token.guard.js';
import { CacheAdminController } from './cache-admin.controller.js';
import { CacheStatsController } from './cache-stats.controller.js';

/** `GET /cache/stats` and `POST /admin/cache/invalidate`. CacheService comes from the global RedisCacheModule. */
@Module({
  controllers: [CacheStatsController, CacheAdminController],
  providers: [AdminTokenGuard],
})
export class CacheAdminModule {}
