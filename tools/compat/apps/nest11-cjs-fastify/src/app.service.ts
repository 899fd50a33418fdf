import { Injectable } from '@nestjs/common';
import { Cacheable, CacheService, InjectCache } from 'nestjs-redis-cache';

export interface Item {
  id: string;
  load: number;
}

export interface Session {
  token: string;
  load: number;
}

@Injectable()
export class AppService {
  loads = 0;
  hellos = 0;
  sessionLoads = 0;

  // The default cache is `CacheService`; another one is injected by its name.
  constructor(@InjectCache('sessions') readonly sessions: CacheService) {}

  @Cacheable({ key: 'item:{0}' })
  async findItem(id: string): Promise<Item> {
    this.loads++; // runs on a miss only
    return { id, load: this.loads };
  }

  @Cacheable({ cache: 'sessions', key: 'session:{0}', ttl: 'session' }) // a profile of that cache
  async findSession(token: string): Promise<Session> {
    this.sessionLoads++;
    return { token, load: this.sessionLoads };
  }

  getHello(): string {
    this.hellos++;
    return 'Hello World!';
  }
}
