import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { CacheEngine } from './core/cache-engine.js';
import type { CacheMethodPlan } from './core/cache-method-plan.js';
import { CacheOperationExecutor } from './core/cache-operation-executor.js';
import { CACHE_PLAN } from './decorators/cache-method-wrapper.js';
import { CacheUnavailableError } from './errors.js';
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
  private onError: ((err: Error) => void) | undefined;

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
    this.onError = (err: Error) => health.failed(err);
    connection.client.on('error', this.onError);
    this.engine.start(
      config,
      new RedisCacheStore(connection.client, config.commandTimeoutMs, health),
      () => health.isDown,
    );
    this.connection = connection;
    try {
      const methods = this.compileDecoratedMethods();
      this.logger.log(`${methods} cached method(s), namespace '${config.namespace}'`);
    } catch (err) {
      await this.onApplicationShutdown();
      throw err;
    }
    // An adopted client may still be connecting, or be lazy (it would connect on its first command,
    // but the store sends none until the client is ready): wait for it as for our own.
    await this.connect(connection, health);
  }

  async onApplicationShutdown(): Promise<void> {
    this.engine.stop();
    const connection = this.connection;
    this.connection = undefined;
    if (!connection) return;
    const { client } = connection;
    if (!connection.owned) {
      // The user's client outlives this app: take back the listener added in onModuleInit.
      if (this.onError) client.off('error', this.onError);
      return;
    }
    if (client.status === 'ready') {
      // QUIT resolves on the server's reply, before the socket closes: wait for 'end' so that
      // app.close() leaves no open connection behind.
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      await client.quit().then(
        () => ended,
        () => client.disconnect(),
      );
    } else {
      client.disconnect();
    }
  }

  /** Resolves every decorated method's plan against the options, so errors surface now. */
  private compileDecoratedMethods(): number {
    const seen = new Set<object>();
    let count = 0;
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const prototype =
        wrapper.metatype?.prototype ?? (wrapper.instance ? Object.getPrototypeOf(wrapper.instance) : undefined);
      for (
        let proto = prototype;
        proto && proto !== Object.prototype && !seen.has(proto);
        proto = Object.getPrototypeOf(proto)
      ) {
        seen.add(proto);
        for (const name of Object.getOwnPropertyNames(proto)) {
          const method: unknown = Object.getOwnPropertyDescriptor(proto, name)?.value;
          const plan =
            typeof method === 'function' ? (method as { [CACHE_PLAN]?: CacheMethodPlan })[CACHE_PLAN] : undefined;
          if (!plan) continue;
          this.executor.compile(plan);
          if (!plan.modeDeclared) {
            this.logger.warn(
              `${plan.className}.${plan.methodName}: its return type is not recorded (inferred, a union or an ` +
                `\`import type\`), so it is served as a Promise. Declare \`: Promise<T>\`, or \`: Observable<T>\` ` +
                `with a value import of Observable, to be explicit.`,
            );
          }
          count++;
        }
      }
    }
    return count;
  }

  /** Waits a bounded time for the first connection; a Redis that is down does not stop the app. */
  private async connect({ client }: CacheClient, health: ConnectionHealth): Promise<void> {
    if (client.status === 'ready') return;
    let timer: NodeJS.Timeout | undefined;
    let onReady: (() => void) | undefined;
    const connected = new Promise<boolean>((resolve) => {
      onReady = () => resolve(true);
      client.once('ready', onReady);
      if (client.status === 'wait') client.connect().catch(() => resolve(false));
    });
    const waited = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), CONNECT_WAIT_MS);
    });
    const ready = await Promise.race([connected, waited]);
    clearTimeout(timer);
    if (onReady) client.off('ready', onReady);
    // Through the tracker, so this outage is logged once however it began (a refused connection has
    // already been reported by the client's 'error' event).
    if (!ready) health.failed(new CacheUnavailableError('not reachable yet; the app starts without the cache'));
  }
}
