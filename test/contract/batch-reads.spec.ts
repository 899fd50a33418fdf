// Batch reads as the README states them (CacheService.getMany, @Cacheable({ batch })), on whichever
// store the project runs (contract-app.ts): the real module on Redis, or the in-process store.
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Cacheable } from 'nestjs-redis-cache';
import { createContractApp, type ContractApp } from './contract-app.js';

@Injectable()
class PricesService {
  calls: string[][] = [];

  @Cacheable({ batch: { key: 'price:{0}' }, ttl: 2, tags: (_price: number | null, sku: string) => [`sku:${sku}`] })
  async prices(skus: string[]): Promise<Array<number | null>> {
    this.calls.push([...skus]);
    return skus.map((sku) => (sku === 'gone' ? null : sku.length * 10));
  }
}

describe('batch reads', () => {
  let contract: ContractApp;
  let service: PricesService;

  beforeEach(async () => {
    contract = await createContractApp({ providers: [PricesService], cache: { ttl: 60, nullTtl: 1 } });
    service = contract.get(PricesService);
  });
  afterEach(() => contract.close());

  it("getMany: fresh values in the caller's order, undefined for the rest; [] for no keys", async () => {
    const { cache } = contract;
    await cache.set('a', 'A');
    await cache.set('short', 'S', { ttl: 1 });
    await cache.set('t', 'T', { tags: ['x'] });
    expect(await cache.getMany(['t', 'nope', 'a', 'short', 'a'])).toEqual(['T', undefined, 'A', 'S', 'A']);
    await cache.invalidateTags(['x']);
    await contract.wait(1_100);
    expect(await cache.getMany(['t', 'nope', 'a', 'short'])).toEqual([undefined, undefined, 'A', undefined]);
    expect(await cache.getMany([])).toEqual([]);
  });

  it('@Cacheable({ batch }): one call with the missing ids, answers in order, null cached for nullTtl', async () => {
    expect(await service.prices(['ab', 'gone'])).toEqual([20, null]);
    expect(await service.prices(['abc', 'ab', 'gone', 'abc'])).toEqual([30, 20, null, 30]);
    expect(service.calls).toEqual([['ab', 'gone'], ['abc']]);
    expect(await contract.cache.getMany(['price:ab', 'price:abc'])).toEqual([20, 30]);
    await contract.wait(1_100); // past nullTtl, within the TTL
    expect(await service.prices(['gone', 'ab'])).toEqual([null, 20]);
    expect(service.calls.at(-1)).toEqual(['gone']);
    await contract.cache.invalidateTags(['sku:ab']);
    expect(await service.prices(['ab', 'abc'])).toEqual([20, 30]);
    expect(service.calls.at(-1)).toEqual(['ab']);
    expect(contract.cache.stats().byName['PricesService.prices']).toMatchObject({ hits: 4, misses: 6 });
  });
});
