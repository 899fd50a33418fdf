import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { EMPTY, lastValueFrom, Observable, toArray } from 'rxjs';
import { Cacheable, CacheService, RedisCacheConfigError } from 'nestjs-redis-cache';
import { createTestApp } from '../support/test-app.js';

@Injectable()
class EventsSource {
  calls = 0;

  @Cacheable({ key: 'events:{0}' })
  latest(_topic: string): Observable<string> {
    this.calls++;
    return EMPTY;
  }
}

describe('an Observable method that completes without a value', () => {
  let app: INestApplication;
  beforeAll(async () => {
    app = await createTestApp({ providers: [EventsSource] });
  });
  afterAll(async () => app.close());

  it('completes empty for the caller and stores nothing', async () => {
    const source = app.get(EventsSource);
    expect(await lastValueFrom(source.latest('a').pipe(toArray()))).toEqual([]);
    expect(await lastValueFrom(source.latest('a').pipe(toArray()))).toEqual([]);
    expect(source.calls).toBe(2); // nothing was cached, so the method ran again
    expect(await app.get(CacheService).get('events:a')).toBeUndefined();
  });
});

describe('a key option that is neither a template, a function nor { fromResult }', () => {
  it('is rejected when the class is defined, naming the method', () => {
    expect(() => {
      class Broken {
        @Cacheable({ key: { from: () => 'x' } as never })
        async save(): Promise<number> {
          return 1;
        }
      }
      return Broken;
    }).toThrow(
      expect.objectContaining({ name: RedisCacheConfigError.name, message: expect.stringContaining('Broken.save') }),
    );
  });
});
