// app.init() waits (a bounded time) for the cache's subscription, so the app's first waiters are woken
// by release messages and L1 can begin serving, instead of polling. On a Cluster ioredis resolves
// connect() a tick before it emits 'ready', where the subscription begins: waiting on connect() alone
// let init return unsubscribed, about one boot in five here. Several boots in a row catch that.
import 'reflect-metadata';
import { CacheService } from 'nestjs-redis-cache';
import { createTestApp } from '../support/test-app.js';

const BOOTS = 8;

describe('app.init() and the subscription', () => {
  it(`returns subscribed, boot after boot (${BOOTS} apps)`, async () => {
    const seen: boolean[] = [];
    for (let boot = 0; boot < BOOTS; boot++) {
      const app = await createTestApp({});
      try {
        seen.push(app.get(CacheService).status().subscribed);
      } finally {
        await app.close();
      }
    }
    expect(seen).toEqual(Array.from({ length: BOOTS }, () => true));
  });
});
