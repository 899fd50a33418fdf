import { Controller, Get, Param, UseInterceptors } from '@nestjs/common';
import { Cacheable, CacheMetricsInterceptor } from 'nestjs-redis-cache';
import { AppService, type Item, type Session } from './app.service';

@Controller()
@UseInterceptors(CacheMetricsInterceptor) // X-Cache: HIT | MISS on responses whose handler made cached calls
export class AppController {
  constructor(private readonly appService: AppService) {}

  @Get()
  @Cacheable({ key: 'hello' }) // a route handler cached itself
  async getHello(): Promise<string> {
    return this.appService.getHello();
  }

  @Get('items/:id')
  getItem(@Param('id') id: string): Promise<Item> {
    return this.appService.findItem(id); // a cached service method
  }

  @Get('sessions/:token')
  getSession(@Param('token') token: string): Promise<Session> {
    return this.appService.findSession(token); // a method cached in the 'sessions' cache
  }
}
