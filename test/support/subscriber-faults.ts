// What the specs that break an instance's subscription share (hostile-input/silent-subscriber.spec.ts,
// hostile-input/failed-catch-up.spec.ts): a cached method that counts its loads, and the server's count
// of SUBSCRIBE commands, which shows when an instance subscribed again.
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { Cacheable } from 'nestjs-redis-cache';

/** Each load returns its number, so a value shows whether it came from the cache (an earlier load). */
@Injectable()
export class Posts {
  loads = 0;

  @Cacheable({ key: 'post:{0}', ttl: '1h' })
  async post(id: number): Promise<{ id: number; load: number }> {
    return { id, load: ++this.loads };
  }
}

/** The metrics name of `Posts.post`. */
export const POST = 'Posts.post';

/** SUBSCRIBE commands the server has run, all clients together. */
export async function subscribeCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats');
  return Number(/^cmdstat_subscribe:calls=(\d+)/m.exec(info)?.[1] ?? 0);
}
