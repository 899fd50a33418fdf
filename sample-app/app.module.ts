import { Module, type DynamicModule } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { CacheMetricsInterceptor, RedisCacheModule } from 'nestjs-redis-cache';
import { RedisCachePrometheusModule } from 'nestjs-redis-cache/prometheus';
import { CacheAdminModule } from './cache-admin/cache-admin.module.js';
import { cacheOptionsFactory } from './cache-options.factory.js';
import { CommentsModule } from './comments/comments.module.js';
import { SAMPLE_APP_CONFIG, type SampleAppConfig } from './config/sample-app-config.js';
import { SampleAppConfigModule } from './config/sample-app-config.module.js';
import { PostsModule } from './posts/posts.module.js';
import { UsersModule } from './users/users.module.js';

/** The sample app's root module; `createSampleApp` builds it from a resolved config. */
@Module({})
export class AppModule {
  static forRoot(config: SampleAppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        SampleAppConfigModule.forRoot(config),
        RedisCacheModule.forRootAsync({ inject: [SAMPLE_APP_CONFIG], useFactory: cacheOptionsFactory }),
        UsersModule,
        PostsModule,
        CommentsModule,
        CacheAdminModule,
        // GET /metrics: the cache's series for Prometheus (docker compose --profile observability).
        RedisCachePrometheusModule.forRoot(),
      ],
      // Globally: every route reports X-Cache and per-route hit/miss counts.
      providers: [{ provide: APP_INTERCEPTOR, useClass: CacheMetricsInterceptor }],
    };
  }
}
