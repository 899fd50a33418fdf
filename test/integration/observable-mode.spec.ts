// Observables whatever the imports. A method whose return type TypeScript did not record — an
// `import type { Observable }` annotation, an inferred type, plain JavaScript (fixtures/) — still
// returns an Observable when its body does, on a miss and on a hit: the mode is learnt from what the
// body returns, kept on the method's plan, and stored with the entry it loads, so another instance
// that never ran the method answers a hit in the same shape. Until then a call returns an Observable
// that can also be awaited (lib/core/awaitable-observable.ts); a Promise method stays a Promise.
import 'reflect-metadata';
import { jest } from '@jest/globals';
import {
  Controller,
  Get,
  Param,
  ParseIntPipe,
  UseInterceptors,
  type INestApplication,
  type LoggerService,
  type Type,
} from '@nestjs/common';
import { isObservable, lastValueFrom, of, toArray, type Observable } from 'rxjs';
import request from 'supertest';
import { Cacheable, CacheMetricsInterceptor, CacheService, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { decodeEntry } from '../../lib/core/cache-entry.js';
import { createDefaultCodec } from '../../lib/serialization/cache-codec.js';
import { waitFor } from '../support/load-helpers.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { defineInferredReturnSource } from './fixtures/inferred-return.source.js';
import { definePlainJsSource } from './fixtures/plain-js.source.mjs';
import { defineTypeOnlyImportSource } from './fixtures/type-only-import.source.js';

/** What every fixture's class provides (typed here: the fixtures' own types are what is not recorded). */
interface Source {
  calls: number;
  removals: number;
  release: (() => void) | undefined;
  /** `@Cacheable({ key: 'item:{0}' })`, returns an Observable. */
  find(id: number): unknown;
  /** `@CacheEvict({ key: 'item:{0}' })`, returns an Observable that completes on `release()`. */
  remove(id: number): unknown;
}

/** The fixtures with Promise methods too: `load` (returns a Promise, not `async`) and `loadAsync`. */
interface PromiseSource extends Source {
  load(id: number): unknown;
  loadAsync(id: number): unknown;
}

type Define = () => Type<unknown>;

const OBSERVABLE_SOURCES: [string, Define][] = [
  ['import type { Observable }', defineTypeOnlyImportSource],
  ['an inferred return type', defineInferredReturnSource],
  ['plain JavaScript', definePlainJsSource as Define],
];
const PROMISE_SOURCES: [string, Define][] = [
  ['an inferred return type', defineInferredReturnSource],
  ['plain JavaScript', definePlainJsSource as Define],
];

const item = (id: number) => ({ id, name: `item ${id}` });
const record = (id: number) => ({ id, name: `record ${id}` });
const codec = createDefaultCodec();

/** The one value `returned` emits, failing unless it is an Observable that emits exactly one. */
async function valueOf(returned: unknown): Promise<unknown> {
  expect(isObservable(returned)).toBe(true);
  const values = await lastValueFrom((returned as Observable<unknown>).pipe(toArray()));
  expect(values).toHaveLength(1);
  return values[0];
}

/** True for what can be awaited: the answer of a call whose mode is not known yet. */
function thenable(returned: unknown): boolean {
  return typeof (returned as { then?: unknown }).then === 'function';
}

/** A route handler whose return type is inferred: Nest's router and the metrics interceptor see the answer. */
@UseInterceptors(CacheMetricsInterceptor)
@Controller('items')
class ItemsController {
  calls = 0;

  @Get(':id')
  @Cacheable({ key: 'route-item:{0}' })
  item(@Param('id', ParseIntPipe) id: number) {
    this.calls++;
    return of(item(id));
  }
}

describe('methods whose return type is not recorded', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.disconnect());

  /** An application with a fresh class of `define` (its plans have learnt nothing) on `namespace`. */
  async function start<S extends Source>(
    define: Define,
    namespace: string,
    cache: RedisCacheModuleOptions = {},
    logger?: LoggerService,
  ) {
    const Class = define();
    const app = await createTestApp({ providers: [Class], cache: { namespace, ...cache }, logger });
    apps.push(app);
    return { source: app.get(Class) as S, cache: app.get(CacheService), app, name: Class.name };
  }

  /** What the entry under the logical `key` says its method returned. */
  async function storedMode(namespace: string, key: string): Promise<unknown> {
    const stored = decodeEntry(codec, (await redis.getBuffer(`${namespace}:${key}`))!);
    expect(stored.kind).toBe('entry');
    return (stored as { returned?: unknown }).returned;
  }

  describe.each(OBSERVABLE_SOURCES)('an Observable method: %s', (_label, define) => {
    it('has no recorded Observable return type (what these tests are about)', () => {
      const declared: unknown = Reflect.getMetadata('design:returntype', define().prototype, 'find');
      expect([undefined, Object]).toContain(declared);
    });

    it('returns an Observable of the value on a miss, and on a hit', async () => {
      const namespace = uniqueNamespace('obs-mode');
      const { source, cache, name } = await start(define, namespace);
      expect(await valueOf(source.find(1))).toEqual(item(1));
      expect(source.calls).toBe(1);

      const hit = source.find(1);
      // Learnt from what the method returned: the cold Observable a declared Observable method gets.
      expect(thenable(hit)).toBe(false);
      expect(await valueOf(hit)).toEqual(item(1));
      expect(source.calls).toBe(1);
      expect(cache.stats().byName[`${name}.find`]).toMatchObject({ hits: 1, misses: 1 });
      expect(await storedMode(namespace, 'item:1')).toBe('observable');
    });

    it('runs a first call again for a second subscription, as a cold Observable would', async () => {
      const { source, cache, name } = await start(define, uniqueNamespace('obs-mode-resubscribe'));
      const first = source.find(9);
      expect(await valueOf(first)).toEqual(item(9)); // the call itself: a miss
      expect(await valueOf(first)).toEqual(item(9)); // run again: a hit
      expect(source.calls).toBe(1);
      expect(cache.stats().byName[`${name}.find`]).toMatchObject({ hits: 1, misses: 1 });
    });

    it('returns an Observable on the first call of another instance, which never ran the method (a hit)', async () => {
      const namespace = uniqueNamespace('obs-mode-two');
      const loader = await start(define, namespace);
      expect(await valueOf(loader.source.find(2))).toEqual(item(2));

      const other = await start(define, namespace);
      expect(await valueOf(other.source.find(2))).toEqual(item(2));
      expect(other.source.calls).toBe(0);
      expect(other.cache.stats().byName[`${other.name}.find`]).toMatchObject({ hits: 1, misses: 0 });
      // The entry told what its loader returned: from now on the cold Observable of an Observable method.
      const next = other.source.find(2);
      expect(thenable(next)).toBe(false);
      expect(await valueOf(next)).toEqual(item(2));
      expect(other.source.calls).toBe(0);
    });

    it('with @CacheEvict, returns an Observable and evicts once the method completed', async () => {
      const namespace = uniqueNamespace('obs-mode-evict');
      const { source, cache } = await start(define, namespace);
      for (const round of [1, 2]) {
        expect(await valueOf(source.find(4))).toEqual(item(4));
        const removing = source.remove(4);
        expect(isObservable(removing)).toBe(true);
        // The first call starts at once (its mode is not known yet): the method ran. The second is
        // the cold Observable of an Observable method: nothing runs before it is subscribed.
        expect(source.removals).toBe(1);
        const removed = lastValueFrom(removing as Observable<number>);
        await waitFor("the method's Observable to be subscribed", () => source.release !== undefined);
        expect(source.removals).toBe(round);
        // The method's Observable has not completed: nothing is evicted yet.
        expect(await cache.get('item:4')).toEqual(item(4));
        source.release!();
        source.release = undefined;
        expect(await removed).toBe(4);
        // Evicted after it completed, before the caller's Observable completed (read-your-writes).
        expect(await cache.get('item:4')).toBeUndefined();
        expect(source.calls).toBe(round);
      }
    });

    it('answers an entry that does not say what its method returned as before: it can be awaited', async () => {
      const namespace = uniqueNamespace('obs-mode-unflagged');
      const { source, cache } = await start(define, namespace);
      // CacheService writes no mode (nor did releases before the flag existed).
      await cache.set('item:5', item(5));
      expect(await storedMode(namespace, 'item:5')).toBeUndefined();
      const first = source.find(5);
      await expect(first).resolves.toEqual(item(5));
      expect(await valueOf(first)).toEqual(item(5)); // and an Observable, should the method return one
      // Nothing was learnt: the next call answers the same way.
      const second = source.find(5);
      expect(thenable(second)).toBe(true);
      expect(await valueOf(second)).toEqual(item(5));
      expect(source.calls).toBe(0);
    });

    it('warns at bootstrap with what happens, not that it is served as a Promise', async () => {
      const warnings: string[] = [];
      const logger: LoggerService = {
        log: () => undefined,
        error: () => undefined,
        warn: (message: unknown) => void warnings.push(String(message)),
      };
      const { name } = await start(define, uniqueNamespace('obs-mode-warn'), {}, logger);
      const warning = warnings.find((message) => message.startsWith(`${name}.find:`));
      expect(warning).toContain('return type is not recorded');
      expect(warning).toContain('learnt from what it returns');
      expect(warning).not.toContain('served as a Promise');
    });
  });

  describe.each(OBSERVABLE_SOURCES)('an Observable method with L1: %s', (_label, define) => {
    jest.setTimeout(20_000);
    const l1: RedisCacheModuleOptions = { l1: { max: 100, ttl: 60 } };

    async function startWithL1(namespace: string) {
      const started = await start(define, namespace, l1);
      // L1 serves once its subscription is confirmed and the other instances announce their writes.
      await waitFor('L1 to serve', () => started.cache.status().l1 === 'serving', 5_000);
      return started;
    }

    it('returns an Observable on an L1 hit, here and in another instance', async () => {
      const namespace = uniqueNamespace('obs-mode-l1');
      const loader = await startWithL1(namespace);
      expect(await valueOf(loader.source.find(3))).toEqual(item(3)); // miss
      expect(await valueOf(loader.source.find(3))).toEqual(item(3)); // hit, kept in L1
      expect(await valueOf(loader.source.find(3))).toEqual(item(3)); // L1 hit
      expect(loader.cache.stats().byName[`${loader.name}.find`]).toMatchObject({ misses: 1, hits: 2, l1Hits: 1 });

      const other = await startWithL1(namespace);
      expect(await valueOf(other.source.find(3))).toEqual(item(3)); // hit: the entry says Observable
      const kept = other.source.find(3); // L1 hit
      expect(thenable(kept)).toBe(false); // the mode the entry told
      expect(await valueOf(kept)).toEqual(item(3));
      expect(other.source.calls).toBe(0);
      expect(other.cache.stats().byName[`${other.name}.find`]).toMatchObject({ misses: 0, hits: 2, l1Hits: 1 });
    });
  });

  it('serves a route handler that returns an Observable, on a miss and on a hit', async () => {
    const app = await createTestApp({ controllers: [ItemsController] });
    apps.push(app);
    const get = () => request(app.getHttpServer()).get('/items/8').expect(200, item(8));
    expect((await get()).headers['x-cache']).toBe('MISS');
    expect((await get()).headers['x-cache']).toBe('HIT');
    expect(app.get(ItemsController).calls).toBe(1);
    expect(isObservable(app.get(ItemsController).item(8))).toBe(true);
  });

  describe.each(PROMISE_SOURCES)('a Promise method: %s', (_label, define) => {
    it('stays a Promise: awaited on its first call, a Promise once learnt, here and in another instance', async () => {
      const namespace = uniqueNamespace('obs-mode-promise');
      const loader = await start<PromiseSource>(define, namespace);
      // An `async` method is a Promise from its first call.
      const asyncCall = loader.source.loadAsync(6);
      expect(asyncCall).toBeInstanceOf(Promise);
      await expect(asyncCall).resolves.toEqual(record(6));

      await expect(loader.source.load(6)).resolves.toEqual(record(6)); // miss: the method returned a Promise
      const hit = loader.source.load(6);
      expect(hit).toBeInstanceOf(Promise);
      await expect(hit).resolves.toEqual(record(6));
      expect(loader.source.calls).toBe(2);
      expect(await storedMode(namespace, 'record:6')).toBe('promise');

      const other = await start<PromiseSource>(define, namespace);
      await expect(other.source.load(6)).resolves.toEqual(record(6)); // a hit: the entry says Promise
      const next = other.source.load(6);
      expect(next).toBeInstanceOf(Promise);
      await expect(next).resolves.toEqual(record(6));
      expect(other.source.calls).toBe(0);
    });
  });
});
