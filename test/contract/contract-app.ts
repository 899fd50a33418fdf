// The one factory of the contract suite: an application on the real module over the test Redis, or on
// RedisCacheTestingModule's in-process store, as the jest project says (CONTRACT_STORE, set by
// test/support/contract-*.setup.mjs). Specs program against what both have in common: the public API.
import 'reflect-metadata';
import type { INestApplication, ModuleMetadata, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  CacheService,
  getCacheTesting,
  RedisCacheTestingModule,
  type RedisCacheModuleOptions,
} from 'nestjs-redis-cache';
import { createTestApp, uniqueNamespace } from '../support/test-app.js';

export type ContractStore = 'redis' | 'in-memory';

/** The store this jest project runs the contract on. */
export function contractStore(): ContractStore {
  const store = process.env.CONTRACT_STORE;
  if (store !== 'redis' && store !== 'in-memory') {
    throw new Error(
      'CONTRACT_STORE is not set: run the contract suite through jest (--selectProjects contract contract-in-memory)',
    );
  }
  return store;
}

export interface ContractAppOptions {
  providers?: ModuleMetadata['providers'];
  controllers?: Type<unknown>[];
  /** Module options (not `redis`). `jitter` is 0 unless given, so an entry expires at its TTL on both stores. */
  cache?: Omit<RedisCacheModuleOptions, 'redis'>;
}

export interface ContractApp {
  readonly store: ContractStore;
  readonly app: INestApplication;
  readonly cache: CacheService;
  get<T>(type: Type<T>): T;
  /**
   * Lets `ms` pass for the cache: sleeps on Redis, moves the clock of the in-process store. Keep it
   * short (TTLs of 1-2 s): on Redis it is real time.
   */
  wait(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** A Nest application with the cache on this project's store and a fresh namespace; call `close()`. */
export async function createContractApp({
  providers = [],
  controllers = [],
  cache = {},
}: ContractAppOptions = {}): Promise<ContractApp> {
  const store = contractStore();
  const options = { jitter: 0, namespace: uniqueNamespace('contract'), ...cache };
  let app: INestApplication;
  let wait: (ms: number) => Promise<void>;
  if (store === 'redis') {
    app = await createTestApp({ providers, controllers, cache: options });
    wait = (ms) => delay(ms);
  } else {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisCacheTestingModule.forRoot(options)],
      providers,
      controllers,
    }).compile();
    app = await moduleRef.createNestApplication({ logger: false }).init();
    const testing = getCacheTesting(app);
    wait = async (ms) => {
      testing.advance(ms);
      // What the time let happen (a lease waiter woken, a message) runs before the test goes on.
      await delay(0);
    };
  }
  return {
    store,
    app,
    cache: app.get(CacheService),
    get: (type) => app.get(type),
    wait,
    close: () => app.close(),
  };
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves once `check()` is true (polled every 5 ms), or fails naming `what` after `withinMs`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  withinMs = 2_000,
): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what}`);
    await delay(5);
  }
}
