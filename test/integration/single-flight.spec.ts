// Single-flight: concurrent calls on a cold key run the source once and share its result or error.
import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Param,
  ParseIntPipe,
  UseInterceptors,
  type INestApplication,
} from '@nestjs/common';
import {
  CACHE_CHANNELS,
  Cacheable,
  CacheMetricsInterceptor,
  CacheService,
  type CacheCallEvent,
} from 'nestjs-redis-cache';
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import request from 'supertest';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { delay } from '../support/timing.js';

const CALLERS = 500;

@Injectable()
class ReportService {
  runs = 0;
  failNext = false;

  @Cacheable({ key: 'report:{0}' })
  async build(id: number): Promise<{ id: number; run: number; at: Date }> {
    const run = ++this.runs;
    await delay(50);
    if (this.failNext) {
      this.failNext = false;
      throw new Error(`report ${id} failed in run ${run}`);
    }
    return { id, run, at: new Date(1_700_000_000_000) };
  }

  /** Another method on the same keys: its calls join `build`'s loads, each recorded under its own name. */
  @Cacheable({ key: 'report:{0}' })
  async rebuild(id: number): Promise<{ id: number; run: number; at: Date }> {
    this.runs++;
    return { id, run: -1, at: new Date(0) };
  }
}

@UseInterceptors(CacheMetricsInterceptor)
@Controller('reports')
class ReportsController {
  constructor(private readonly reports: ReportService) {}

  @Get(':id')
  report(@Param('id', ParseIntPipe) id: number): Promise<unknown> {
    return this.reports.build(id);
  }
}

describe('single-flight', () => {
  let app: INestApplication;
  let reports: ReportService;
  let cache: CacheService;
  let ns: string;
  const redis = rawRedis();

  beforeEach(async () => {
    ns = uniqueNamespace('flight');
    app = await createTestApp({
      providers: [ReportService],
      controllers: [ReportsController],
      cache: { namespace: ns },
    });
    reports = app.get(ReportService);
    cache = app.get(CacheService);
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  it(`${CALLERS} concurrent calls on a cold key run the method once and all get its result`, async () => {
    const results = await Promise.all(Array.from({ length: CALLERS }, () => reports.build(1)));
    expect(reports.runs).toBe(1);
    expect(results).toHaveLength(CALLERS);
    for (const result of results) expect(result).toEqual({ id: 1, run: 1, at: new Date(1_700_000_000_000) });
    // ...and the value is stored for the next caller.
    expect(await reports.build(1)).toEqual({ id: 1, run: 1, at: new Date(1_700_000_000_000) });
    expect(reports.runs).toBe(1);
  });

  it(`${CALLERS} joined callers share one answer, each recorded once with its own latency`, async () => {
    const early = Array.from({ length: CALLERS / 2 }, () => reports.build(3));
    await delay(20);
    const late = Array.from({ length: CALLERS / 2 }, () => reports.build(3));
    // The first caller reads (and loads) for the key; the callers joining it get one Promise between
    // them, made once, instead of one `.then` each (bench/README.md, the sixth session's results).
    expect(late[0]).toBe(early[1]);
    expect(early[1]).not.toBe(early[0]);
    for (const value of await Promise.all([...early, ...late])) expect(value).toMatchObject({ id: 3, run: 1 });
    expect(reports.runs).toBe(1);
    const { misses, hits, latency } = cache.stats().byName['ReportService.build'];
    expect({ misses, hits, count: latency.count }).toEqual({ misses: CALLERS, hits: 0, count: CALLERS });
    // The late half joined 20 ms or more after the early half, and waited that much less.
    expect(latency.maxMs).toBeGreaterThanOrEqual(45);
    expect(latency.meanMs).toBeLessThan(latency.maxMs - 5);
    // Settled: the next caller reads on its own (a hit now), joining nothing left over.
    const next = reports.build(3);
    expect(next).not.toBe(early[1]);
    expect(await next).toMatchObject({ id: 3, run: 1 });
    expect(cache.stats().byName['ReportService.build']).toMatchObject({ misses: CALLERS, hits: 1 });
  });

  it('while someone listens to call messages, each caller is published in its own async context', async () => {
    const context = new AsyncLocalStorage<number>();
    const seen: Array<{ call: CacheCallEvent; caller: number | undefined }> = [];
    const listener = (message: unknown) => {
      const call = message as CacheCallEvent;
      if (call.namespace === ns) seen.push({ call, caller: context.getStore() });
    };
    subscribe(CACHE_CHANNELS.call, listener);
    try {
      const pending = Array.from({ length: 100 }, (_, caller) => context.run(caller, () => reports.build(4)));
      for (const value of await Promise.all(pending)) expect(value).toMatchObject({ id: 4, run: 1 });
    } finally {
      unsubscribe(CACHE_CHANNELS.call, listener);
    }
    expect(reports.runs).toBe(1);
    expect(seen).toHaveLength(100);
    for (const { call } of seen) {
      expect(call).toMatchObject({ name: 'ReportService.build', outcome: 'miss', key: `${ns}:report:4` });
      expect(call.durationMs).toBeGreaterThanOrEqual(40);
    }
    expect(new Set(seen.map(({ caller }) => caller)).size).toBe(100);
  });

  it('concurrent HTTP requests that share one load each get their own X-Cache header and route count', async () => {
    const server = app.getHttpServer();
    const responses = await Promise.all(Array.from({ length: 20 }, () => request(server).get('/reports/5')));
    expect(reports.runs).toBe(1);
    for (const response of responses) {
      expect(response.status).toBe(200);
      expect(response.headers['x-cache']).toBe('MISS');
    }
    expect(cache.stats().byRoute['GET /reports/:id']).toMatchObject({ misses: 20 });
  });

  it('a caller from another method on the same key joins the load under its own name, beside the shared answer', async () => {
    let loads = 0;
    const first = reports.build(6);
    const joined = reports.build(6);
    const fromRebuild = [reports.rebuild(6), reports.rebuild(6)];
    const viaService = cache.getOrSet('report:6', async () => ({ loads: ++loads }), { name: 'reports.direct' });
    const later = reports.build(6);
    expect(later).toBe(joined);
    expect(fromRebuild[1]).not.toBe(fromRebuild[0]);
    const values = await Promise.all([first, joined, ...fromRebuild, viaService, later]);
    expect(loads).toBe(0);
    expect(reports.runs).toBe(1);
    for (const value of values) expect(value).toEqual({ id: 6, run: 1, at: new Date(1_700_000_000_000) });
    const { byName } = cache.stats();
    expect(byName['ReportService.build']).toMatchObject({ misses: 3 });
    expect(byName['ReportService.rebuild']).toMatchObject({ misses: 2 });
    expect(byName['reports.direct']).toMatchObject({ misses: 1 });
  });

  it('calls on different keys are not coalesced', async () => {
    await Promise.all(Array.from({ length: 100 }, (_, i) => reports.build(i % 10)));
    expect(reports.runs).toBe(10);
  });

  it(`a rejection reaches all ${CALLERS} waiters, is not cached, and the next call runs the method again`, async () => {
    reports.failNext = true;
    const settled = await Promise.allSettled(Array.from({ length: CALLERS }, () => reports.build(2)));
    expect(reports.runs).toBe(1);
    for (const outcome of settled) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toEqual(new Error('report 2 failed in run 1'));
    }
    // Each waiter is recorded, as a miss (the method failed), once.
    expect(cache.stats().byName['ReportService.build']).toMatchObject({ misses: CALLERS, hits: 0, errors: 0 });
    expect(await redis.exists(`${ns}:report:2`)).toBe(0);
    expect(await reports.build(2)).toMatchObject({ id: 2, run: 2 });
    expect(reports.runs).toBe(2);
  });

  it('CacheService.getOrSet coalesces concurrent loads too, and does not cache a rejection', async () => {
    let loads = 0;
    const loader = async () => {
      loads++;
      await delay(50);
      return { loaded: loads };
    };
    const values = await Promise.all(Array.from({ length: CALLERS }, () => cache.getOrSet('computed', loader)));
    expect(loads).toBe(1);
    for (const value of values) expect(value).toEqual({ loaded: 1 });

    const failing = async () => {
      loads++;
      await delay(20);
      throw new Error('loader failed');
    };
    const settled = await Promise.allSettled(Array.from({ length: 100 }, () => cache.getOrSet('broken', failing)));
    expect(loads).toBe(2);
    expect(settled.every((outcome) => outcome.status === 'rejected')).toBe(true);
    expect(await redis.exists(`${ns}:broken`)).toBe(0);
    expect(await cache.getOrSet('broken', loader)).toEqual({ loaded: 3 });
  });
});
