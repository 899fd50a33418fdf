// Single-flight: concurrent calls on a cold key run the source once and share its result or error.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { CACHE_CHANNELS, Cacheable, CacheService, type CacheCallEvent } from 'nestjs-redis-cache';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
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
}

describe('single-flight', () => {
  let app: INestApplication;
  let reports: ReportService;
  let cache: CacheService;
  let ns: string;
  const redis = rawRedis();

  beforeEach(async () => {
    ns = uniqueNamespace('flight');
    app = await createTestApp({ providers: [ReportService], cache: { namespace: ns } });
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

  it(`${CALLERS} joined callers share one answer, and each is recorded once with its own latency`, async () => {
    const calls: CacheCallEvent[] = [];
    const listener = (message: unknown) => {
      const call = message as CacheCallEvent;
      if (call.namespace === ns) calls.push(call);
    };
    subscribe(CACHE_CHANNELS.call, listener);
    let pending: Promise<unknown>[];
    try {
      pending = Array.from({ length: CALLERS }, () => reports.build(3));
      // The first caller reads (and loads) for the key; the callers joining it get one Promise between
      // them, made once, instead of one `.then` each (bench/README.md, stampede).
      expect(pending[CALLERS - 1]).toBe(pending[1]);
      expect(pending[1]).not.toBe(pending[0]);
      for (const value of await Promise.all(pending)) expect(value).toMatchObject({ id: 3, run: 1 });
    } finally {
      unsubscribe(CACHE_CHANNELS.call, listener);
    }
    expect(reports.runs).toBe(1);
    expect(calls).toHaveLength(CALLERS);
    for (const call of calls) {
      expect(call).toMatchObject({ name: 'ReportService.build', outcome: 'miss', key: `${ns}:report:3` });
      // Every caller came before the 50 ms method ran, and waited for it.
      expect(call.durationMs).toBeGreaterThanOrEqual(40);
    }
    expect(cache.stats().byName['ReportService.build']).toMatchObject({ misses: CALLERS, hits: 0 });
    // Settled: the next caller reads on its own (a hit now), joining nothing left over.
    const next = reports.build(3);
    expect(next).not.toBe(pending[1]);
    expect(await next).toMatchObject({ id: 3, run: 1 });
    expect(cache.stats().byName['ReportService.build']).toMatchObject({ misses: CALLERS, hits: 1 });
  });

  it("a getOrSet of the method's key joins its load, recorded under its own name, beside the shared answer", async () => {
    let loads = 0;
    const loader = async () => ({ id: 5, run: 0, loads: ++loads });
    const first = reports.build(5);
    const joined = reports.build(5);
    const viaService = cache.getOrSet('report:5', loader, { name: 'reports.direct' });
    const later = reports.build(5);
    expect(later).toBe(joined);
    const values = await Promise.all([first, joined, viaService, later]);
    expect(loads).toBe(0);
    expect(reports.runs).toBe(1);
    for (const value of values) expect(value).toEqual({ id: 5, run: 1, at: new Date(1_700_000_000_000) });
    const { byName } = cache.stats();
    expect(byName['ReportService.build']).toMatchObject({ misses: 3 });
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
