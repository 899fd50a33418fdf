import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Observable, of } from 'rxjs';
import { Cacheable, CacheEvict, CachePut } from 'nestjs-redis-cache';
import { createFaultApp, type FaultApp } from '../support/fault-helpers.js';
import { OWN_REDIS_TEST_TIMEOUT_MS, startOwnRedis, type OwnRedis } from '../support/own-redis.js';

@Injectable()
class ProfileWriter {
  @CachePut({ key: 'profile:{0}' })
  async save(id: number, name: string): Promise<{ id: number; name: string }> {
    return { id, name };
  }

  @CacheEvict({ key: 'profile:{0}' })
  async remove(id: number): Promise<number> {
    return id;
  }

  @CachePut({ key: 'profile:{0}' })
  async failing(id: number): Promise<never> {
    throw new Error(`no profile ${id}`);
  }
}

@Injectable()
class UndeclaredReturns {
  // The return type is inferred: TypeScript records none, so the bootstrap warns.
  @Cacheable({ key: 'inferred' })
  inferred() {
    return Promise.resolve(1);
  }

  @Cacheable({ key: 'declared' })
  declared(): Observable<number> {
    return of(1);
  }

  @Cacheable({ key: 'async' })
  async asyncInferred() {
    return 1;
  }
}

// Each describe owns its Redis (a redis-server, or a cluster in the cluster project): one of them kills it.
describe('calls without @Cacheable, and bootstrap warnings', () => {
  let redis: OwnRedis;
  let fault: FaultApp;

  beforeAll(async () => {
    redis = await startOwnRedis();
    fault = await createFaultApp(redis.connection, { providers: [ProfileWriter, UndeclaredReturns] });
  }, OWN_REDIS_TEST_TIMEOUT_MS);
  afterAll(async () => {
    await fault.app.close();
    await redis.stop();
  });

  it('records @CachePut-only and @CacheEvict-only calls as bypasses, with latency', async () => {
    const writer = fault.app.get(ProfileWriter);
    await writer.save(1, 'Ada');
    await writer.remove(1);
    await expect(writer.failing(1)).rejects.toThrow('no profile 1');
    const { byName } = fault.cache.stats();
    expect(byName['ProfileWriter.save']).toMatchObject({ bypasses: 1, errors: 0, failedCalls: 0 });
    expect(byName['ProfileWriter.save'].latency.count).toBe(1);
    expect(byName['ProfileWriter.remove']).toMatchObject({ bypasses: 1, errors: 0 });
    expect(byName['ProfileWriter.failing']).toMatchObject({ bypasses: 1, errors: 0 });
  });

  it('warns once at bootstrap for each method whose return type is not recorded', () => {
    const warnings = fault.logs.lines.filter(
      (line) => line.level === 'warn' && line.message.includes('return type is not recorded'),
    );
    expect(warnings.map((line) => line.message.split(':')[0])).toEqual(['UndeclaredReturns.inferred']);
  });

  it('records a write-only call as an error when Redis is gone, and the caller still gets its result', async () => {
    const writer = fault.app.get(ProfileWriter);
    await redis.kill();
    await expect(writer.save(2, 'Grace')).resolves.toEqual({ id: 2, name: 'Grace' });
    await expect(writer.remove(2)).resolves.toBe(2);
    const { byName, failedCalls } = fault.cache.stats();
    expect(byName['ProfileWriter.save']).toMatchObject({ failedCalls: 1, errors: 1 });
    expect(byName['ProfileWriter.remove']).toMatchObject({ failedCalls: 1, errors: 1 });
    expect(failedCalls).toBe(2);
  });
});

@Injectable()
class SlowSource {
  release: () => void = () => undefined;
  private markStarted: () => void = () => undefined;
  readonly started = new Promise<void>((resolve) => (this.markStarted = resolve));

  @Cacheable({ key: 'slow' })
  async load(): Promise<string> {
    this.markStarted();
    await new Promise<void>((resolve) => (this.release = resolve));
    return 'loaded';
  }
}

describe('closing the app while a decorated call is loading', () => {
  it(
    'still gives the caller its result',
    async () => {
      const redis = await startOwnRedis();
      const fault = await createFaultApp(redis.connection, { providers: [SlowSource] });
      const source = fault.app.get(SlowSource);
      const call = source.load();
      await source.started;
      await fault.app.close();
      source.release();
      await expect(call).resolves.toBe('loaded');
      await redis.stop();
    },
    OWN_REDIS_TEST_TIMEOUT_MS,
  );
});
