// Single-flight: concurrent calls on a cold key run the source once and share its result or error.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
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
