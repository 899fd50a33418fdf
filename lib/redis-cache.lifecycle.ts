import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { CacheEngine } from './core/cache-engine.js';
import type { CacheMethodPlan } from './core/cache-method-plan.js';
import { CacheOperationExecutor } from './core/cache-operation-executor.js';
import { CACHE_PLAN } from './decorators/cache-method-wrapper.js';
import type { RedisCacheModuleOptions } from './options/redis-cache-options.interface.js';
import { resolveCacheOptions } from './options/resolve-options.js';
import { REDIS_CACHE_MODULE_OPTIONS } from './redis-cache.module-definition.js';
import { createRedisClient, type CacheClient } from './redis-client.factory.js';
import { ConnectionHealth } from './store/connection-health.js';
import { RedisCacheStore } from './store/redis-cache.store.js';

/** How long `app.init()` waits for a first connection before starting without the cache. */
const CONNECT_WAIT_MS = 2_000;

/**
 * Owns the runtime resources of one application's cache. In `app.init()`: validates the options and
 * every decorated method (a bad TTL or an unknown profile fails the bootstrap, naming `Class.method`),
 * opens or adopts the Redis client and starts the engine. On shutdown: stops the engine and closes
 * the client only if this module opened it.
 */
@Injectable()
export class RedisCacheLifecycle implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('RedisCache');
  private connection: CacheClient | undefined;

  constructor(
    @Inject(REDIS_CACHE_MODULE_OPTIONS) private readonly options: RedisCacheModuleOptions,
    private readonly engine: CacheEngine,
    private readonly executor: CacheOperationExecutor,
    private readonly discovery: DiscoveryService,
  ) {}

  async onModuleInit(): Promise<void> {
    const config = resolveCacheOptions(this.options);
    const connection = createRedisClient(config.redis);
    const health = new ConnectionHealth(this.logger);
    // An 'error' listener is required (ioredis logs unhandled ones); the tracker logs once per outage.
    connection.client.on('error', (err: Error) => health.failed(err));
    this.engine.start(config, new RedisCacheStore(connection.client, config.commandTimeoutMs, health), () => health.isDown);
    this.connection = connection;
    try {
      const methods = this.compileDecoratedMethods();
      this.logger.log(`${methods} cached method(s), namespace '${config.namespace}'`);
    } catch (err) {
      await this.onApplicationShutdown();
      throw err;
    }
    if (connection.owned) await this.connect(connection);
  }

  async onApplicationShutdown(): Promise<void> {
    this.engine.stop();
    const connection = this.connection;
    this.connection = undefined;
    if (!connection?.owned) return;
    const { client } = connection;
    if (client.status === 'ready') {
      await client.quit().catch(() => client.disconnect());
    } else {
      client.disconnect();
    }
  }

  /** Resolves every decorated method's plan against the options, so errors surface now. */
  private compileDecoratedMethods(): number {
    const seen = new Set<object>();
    let count = 0;
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const prototype = wrapper.metatype?.prototype ?? (wrapper.instance ? Object.getPrototypeOf(wrapper.instance) : undefined);
      for (let proto = prototype; proto && proto !== Object.prototype && !seen.has(proto); proto = Object.getPrototypeOf(proto)) {
        seen.add(proto);
        for (const name of Object.getOwnPropertyNames(proto)) {
          const method = Object.getOwnPropertyDescriptor(proto, name)?.value as { [CACHE_PLAN]?: CacheMethodPlan } | undefined;
          const plan = typeof method === 'function' ? method[CACHE_PLAN] : undefined;
          if (!plan) continue;
          this.executor.compile(plan);
          count++;
        }
      }
    }
    return count;
  }

  /** Waits a bounded time for the first connection; a Redis that is down does not stop the app. */
  private async connect({ client }: CacheClient): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const connected = client.connect().then(
      () => true,
      () => false,
    );
    const waited = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), CONNECT_WAIT_MS);
    });
    const ready = await Promise.race([connected, waited]);
    clearTimeout(timer);
    if (!ready) this.logger.warn('Redis is not reachable yet; the app starts without the cache and uses it once connected');
  }
}
