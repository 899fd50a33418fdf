// Commands sent while replies are pending share one socket write (store/tick-writes.ts): of 64 hits
// started together the first is written at once (nothing was in flight) and the other 63 leave in one
// `writev` on the module's connection, where a plain client makes one write each; each gets its own
// value, and after the connection is replaced (killed, reconnected) the new one coalesces too.
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Socket } from 'node:net';
import { CacheService } from 'nestjs-redis-cache';
import { waitFor } from '../support/load-helpers.js';
import { standaloneOnly } from '../support/redis-topology.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';

const CALLS = 64;

/** Counts the socket writes (`_write`, `_writev`: one syscall each) on `stream` while `during` runs. */
async function socketWrites(stream: Socket, during: () => Promise<unknown>): Promise<number> {
  const internals = stream as unknown as {
    _write: (...args: unknown[]) => void;
    _writev?: (...args: unknown[]) => void;
  };
  const { _write: write, _writev: writev } = internals;
  let writes = 0;
  internals._write = function (this: unknown, ...args: unknown[]) {
    writes++;
    return write.apply(this, args);
  };
  if (writev) {
    internals._writev = function (this: unknown, ...args: unknown[]) {
      writes++;
      return writev.apply(this, args);
    };
  }
  try {
    await during();
  } finally {
    internals._write = write;
    if (writev) internals._writev = writev;
  }
  return writes;
}

// One connection's socket: on a Cluster the commands go to each node's own, which ioredis keeps.
const oneConnection = standaloneOnly("the module's one command connection");

describe('commands sent while replies are pending share one socket write', () => {
  const redis = rawRedis();
  let app: INestApplication;
  let cache: CacheService;
  const keys = Array.from({ length: CALLS }, (_, i) => `item:${i}`);

  beforeEach(async () => {
    app = await createTestApp({ cache: { namespace: uniqueNamespace('tickwrites') } });
    cache = app.get(CacheService);
    for (const [i, key] of keys.entries()) await cache.set(key, { i });
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  const streamOf = (client: unknown) => (client as Redis & { stream: Socket }).stream;

  oneConnection(
    `${CALLS} hits started in one tick: two writes, each its own value; a plain client writes ${CALLS} times`,
    async () => {
      let values: unknown[] = [];
      const writes = await socketWrites(streamOf(cache.client), async () => {
        values = await Promise.all(keys.map((key) => cache.get(key)));
      });
      expect(writes).toBe(2);
      expect(values).toEqual(keys.map((_, i) => ({ i })));
      // The contrast, on the same machine: what coalescing saves.
      const plain = await socketWrites(streamOf(redis), () => Promise.all(keys.map((key) => redis.get(key))));
      expect(plain).toBe(CALLS);
    },
  );

  oneConnection('a lone hit, nothing in flight, is written at once: the socket is never corked', async () => {
    const stream = streamOf(cache.client);
    const cork = stream.cork;
    let corks = 0;
    stream.cork = function (this: Socket) {
      corks++;
      return cork.call(this);
    };
    try {
      for (const key of keys.slice(0, 5)) expect(await cache.get(key)).toEqual({ i: keys.indexOf(key) });
    } finally {
      stream.cork = cork;
    }
    expect(corks).toBe(0);
  });

  oneConnection('a replaced connection coalesces too', async () => {
    const before = streamOf(cache.client);
    const id = await (cache.client as Redis).client('ID');
    await redis.client('KILL', 'ID', String(id));
    await waitFor(
      'a new connection',
      () => streamOf(cache.client) !== before && (cache.client as Redis).status === 'ready',
    );
    let values: unknown[] = [];
    await waitFor('hits again', async () => (await cache.get(keys[0]!)) !== undefined);
    const writes = await socketWrites(streamOf(cache.client), async () => {
      values = await Promise.all(keys.map((key) => cache.get(key)));
    });
    expect(writes).toBe(2);
    expect(values).toEqual(keys.map((_, i) => ({ i })));
  });
});
