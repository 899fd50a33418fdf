// The lease at the edges: the application closing while callers wait or while it holds a lease, a
// holder whose method throws, Redis down when the app boots, and the subscriber's connection lost
// while callers wait. Each test owns its Redis (a redis-server, or a 3-primary cluster in the
// cluster project), so INFO commandstats counts only its commands.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { randomBytes } from 'node:crypto';
import { startLocalRedis, type LocalRedisServer } from '../../tools/local-redis-server.mjs';
import { leasePlaceholder, redisNow, timed, waitFor } from '../support/load-helpers.js';
import { OWN_REDIS_TEST_TIMEOUT_MS, startOwnRedis, type OwnRedis } from '../support/own-redis.js';
import { createTestApp, standaloneOnly, uniqueNamespace, type TestRedisConnection } from '../support/test-app.js';
import { bookkeeping } from '../support/redis-keys.js';

/** A source whose loads take `delayMs` and throw while `failing`; counts its runs. */
@Injectable()
class SlowSource {
  runs = 0;
  delayMs = 0;
  failing = false;

  @Cacheable({ key: 'item:{0}', ttl: 60 })
  async load(id: number): Promise<string> {
    this.runs++;
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.failing) throw new Error('source failed');
    return `item ${id}`;
  }
}

describe('leases at the edges', () => {
  let server: OwnRedis | undefined;
  /** The server of the one test that starts it on a port chosen beforehand. */
  let lateServer: LocalRedisServer | undefined;
  let admin: Redis | undefined;
  const apps: INestApplication[] = [];

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close().catch(() => undefined);
    admin?.disconnect();
    await server?.stop();
    await lateServer?.stop();
    server = lateServer = admin = undefined;
  });

  async function appOn(redis: TestRedisConnection, namespace: string, cache: object = {}): Promise<INestApplication> {
    const app = await createTestApp({ providers: [SlowSource], cache: { redis, namespace, ...cache } });
    apps.push(app);
    return app;
  }

  /** Writes another process's lease on `item:{id}` lasting `ms` (nobody will release it). */
  async function foreignLease(namespace: string, id: number, ms: number): Promise<void> {
    const deadline = (await redisNow(admin!)) + ms;
    await admin!.set(`${namespace}:item:${id}`, leasePlaceholder(randomBytes(8), deadline), 'PX', ms);
  }

  it(
    'closing the app while a caller waits ends the wait at once, without a loop of lease attempts',
    async () => {
      server = await startOwnRedis();
      admin = server.client();
      const namespace = uniqueNamespace('edge');
      // The application's own client: it stays open after app.close(), as the reviewer's case had it.
      const client = server.client();
      const app = await appOn(server.connection, namespace, { redis: client });
      const source = app.get(SlowSource);
      await foreignLease(namespace, 1, 10_000);
      const evalsBefore = (await server.commandStats()).evalsha ?? 0;
      const waiting = timed(() => source.load(1));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await app.close();
      apps.length = 0;
      const { value, ms } = await waiting;
      expect(value).toBe('item 1'); // the caller ran the method itself
      expect(ms).toBeLessThan(1_000); // not the default lockWait of 5 s
      expect(((await server.commandStats()).evalsha ?? 0) - evalsBefore).toBeLessThan(10);
      client.disconnect();
    },
    OWN_REDIS_TEST_TIMEOUT_MS,
  );

  it(
    'a holder whose method throws lets the waiters in other apps run it at once, not one after another',
    async () => {
      server = await startOwnRedis();
      admin = server.client();
      const namespace = uniqueNamespace('edge');
      const holderApp = await appOn(server.connection, namespace);
      const waiterApps = [await appOn(server.connection, namespace), await appOn(server.connection, namespace)];
      const holder = holderApp.get(SlowSource);
      holder.delayMs = 300;
      holder.failing = true;
      const failed = holder.load(2).catch((err: Error) => err.message);
      await waitFor('the holder took the lease', async () => (await admin!.exists(`${namespace}:item:2`)) === 1);
      const waiters = waiterApps.map((app) => {
        const source = app.get(SlowSource);
        source.delayMs = 300;
        return timed(() => source.load(2));
      });
      expect(await failed).toBe('source failed');
      const results = await Promise.all(waiters);
      expect(results.map((result) => result.value)).toEqual(['item 2', 'item 2']);
      // Both ran the method in parallel right after the failure (~300 + 300 ms), not in series (~900 ms).
      for (const { ms } of results) expect(ms).toBeLessThan(850);
      expect(waiterApps.map((app) => app.get(SlowSource).runs)).toEqual([1, 1]);
    },
    OWN_REDIS_TEST_TIMEOUT_MS,
  );

  it(
    'an app that closes mid-load gives its lease back: waiters elsewhere do not wait out lockWait',
    async () => {
      server = await startOwnRedis();
      admin = server.client();
      const namespace = uniqueNamespace('edge');
      const closing = await appOn(server.connection, namespace);
      const staying = await appOn(server.connection, namespace);
      closing.get(SlowSource).delayMs = 2_000;
      const abandoned = closing.get(SlowSource).load(3);
      await waitFor('the lease was taken', async () => (await admin!.exists(`${namespace}:item:3`)) === 1);
      const waiter = timed(() => staying.get(SlowSource).load(3));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await closing.close();
      apps.splice(apps.indexOf(closing), 1);
      const { value, ms } = await waiter;
      expect(value).toBe('item 3');
      expect(ms).toBeLessThan(1_500); // woken by the release, not the 5 s lockWait or the 10 s lockTtl
      expect(await abandoned).toBe('item 3'); // the closing app's own caller still got its value
    },
    OWN_REDIS_TEST_TIMEOUT_MS,
  );

  // The app boots on a port where nothing listens yet, then a server starts there; a cluster's nodes
  // get their ports when the cluster starts. PUBSUB NUMSUB also counts one node's subscribers only.
  const onOneServer = standaloneOnly('a server started later on a port chosen before the app boots');

  onOneServer(
    'an app that booted while Redis was down subscribes once Redis is up, and its waiters are woken',
    async () => {
      const port = await import('../../tools/local-redis-server.mjs').then(({ freePort }) => freePort());
      const url = `redis://127.0.0.1:${port}`;
      const namespace = uniqueNamespace('edge');
      const waiterApp = await appOn(url, namespace, { lockWait: 4_000 });
      lateServer = await startLocalRedis({ port });
      admin = new Redis(url);
      // The subscriber and the command connection reconnect on their own schedules: both must be back,
      // or the waiter's read fails and it rightly goes to the source.
      await waitFor(
        'the late subscriber is subscribed and the command connection ready',
        async () =>
          waiterApp.get(CacheService).client.status === 'ready' &&
          Number(
            ((await admin!.call('PUBSUB', 'NUMSUB', bookkeeping(namespace).leaseChannel)) as [string, number])[1],
          ) === 1,
        10_000,
        50,
      );
      const holderApp = await appOn(url, namespace);
      holderApp.get(SlowSource).delayMs = 300;
      const held = holderApp.get(SlowSource).load(4);
      await waitFor('the lease was taken', async () => (await admin!.exists(`${namespace}:item:4`)) === 1);
      const waiter = await timed(() => waiterApp.get(SlowSource).load(4));
      expect(await held).toBe('item 4');
      expect(waiter.value).toBe('item 4');
      expect(waiterApp.get(SlowSource).runs).toBe(0); // it got the holder's value
      expect(waiter.ms).toBeLessThan(1_500); // woken by the release, not lockWait
    },
    20_000,
  );

  // On a cluster the lease subscriber is a Cluster, which stays 'ready' and emits no 'close' when its
  // nodes die: the listener wakes the waiters when a node leaves the pool (namespace-subscriber.ts).
  it(
    'Redis dying while callers wait ends their wait: they go to the source instead of waiting out lockWait',
    async () => {
      server = await startOwnRedis();
      admin = server.client();
      const namespace = uniqueNamespace('edge');
      const app = await appOn(server.connection, namespace, { commandTimeout: 100 });
      await foreignLease(namespace, 5, 10_000);
      // Redis runs the caller's lease attempt (a script) before the caller starts waiting: kill only
      // after that, so the kill meets a waiting caller however slow the machine is.
      const scriptCalls = async () => {
        const stats = await server!.commandStats();
        return (stats.evalsha ?? 0) + (stats.eval ?? 0);
      };
      const scriptsBefore = await scriptCalls();
      const waiter = timed(() => app.get(SlowSource).load(5));
      await waitFor('the caller tried the lease', async () => (await scriptCalls()) > scriptsBefore, 5_000, 20);
      await new Promise((resolve) => setTimeout(resolve, 100));
      admin.disconnect();
      admin = undefined;
      await server.kill();
      server = undefined;
      const { value, ms } = await waiter;
      expect(value).toBe('item 5');
      expect(ms).toBeLessThan(1_500);
    },
    OWN_REDIS_TEST_TIMEOUT_MS,
  );
});
