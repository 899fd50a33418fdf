import { Module } from '@nestjs/common';
import { RedisCacheModule } from 'nestjs-redis-cache';
import { AppController } from './app.controller';
import { AppService } from './app.service';

@Module({
  imports: [
    RedisCacheModule.forRoot({ redis: process.env.REDIS_URL ?? 'redis://localhost:6379', ttl: '1m' }),
    // A second cache: its own namespace and options (its own Redis too, if you like).
    RedisCacheModule.forRoot({
      name: 'sessions',
      redis: process.env.REDIS_URL ?? 'redis://localhost:6379',
      namespace: 'sessions',
      ttlProfiles: { session: '30m' },
    }),
  ],
  controllers: [AppController],
  providers: [AppService],
})
export class AppModule {}
