import type { Logger, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { DiscoveryService } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { cacheNameOf, DEFAULT_CACHE, executorProperty, registrationOf } from './cache-names.js';
import { CacheEngine } from './core/cache-engine.js';
import type { CacheMethodPlan } from './core/cache-method-plan.js';
import { CacheOperationExecutor } from './core/cache-operation-executor.js';
import { CACHE_PLAN } from './decorators/cache-method-wrapper.js';
import { RedisCacheConfigError } from './errors.js';
import type { RedisCacheModuleOptions } from './options/redis-cache-options.interface.js';
import { resolveCacheOptions } from './options/resolve-options.js';
import { RedisBackend } from './redis-backend.js';
import type { CacheBackend, CacheBackendSession } from './store/cache-backend.js';

/** Which cache a lifecycle runs, and whether its registration is global. */
export interface CacheRegistration {
  readonly name: string;
  readonly global: boolean;
}

/**
 * Owns the runtime resources of one registration's cache. In `app.init()`: validates the options
 * and every decorated method that uses this cache (a bad TTL or an unknown profile fails the
 * bootstrap, naming `Class.method`), opens or adopts the Redis client and starts the engine. On
 * shutdown: stops the engine and closes the client only if this module opened it.
 */
export class RedisCacheLifecycle implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  /** The backend's session while the cache runs (from `app.init()` until the app closes). */
  private session: CacheBackendSession | undefined;

  constructor(
    readonly registration: CacheRegistration,
    private readonly options: RedisCacheModuleOptions,
    private readonly engine: CacheEngine,
    private readonly executor: CacheOperationExecutor,
    private readonly discovery: DiscoveryService,
    private readonly logger: Logger,
    /** Where the cache lives instead of Redis (RedisCacheTestingModule); undefined: the configured Redis. */
    private readonly backend?: CacheBackend,
  ) {}

  /**
   * The one place the cache is put together: the options resolved, the backend opened (the configured
   * Redis, or the testing module's), the engine started on it, the decorated methods compiled, then
   * connected (bounded) and checked.
   */
  async onModuleInit(): Promise<void> {
    this.checkRegistrations();
    // A backend brings its own store: the options are validated as for Redis, but for `redis`.
    const config = resolveCacheOptions(this.backend ? { ...this.options, redis: {} } : this.options);
    const backend = this.backend ?? new RedisBackend(config, this.logger, this.options.startupAdvisor);
    const { events } = this.engine;
    const session = backend.open(config.namespace, {
      rejected: () => events.messageRejected(),
      down: (reason) => events.connectionChanged('down', reason),
      // What an outage kept the cache from invalidating is deleted as soon as Redis answers again.
      recovered: () => {
        events.connectionChanged('up');
        void this.engine.recovered();
      },
    });
    this.session = session;
    this.engine.start(config, session.store, () => session.isDown(), session.leases, session.keys);
    try {
      this.compileAndFollow(config.namespace, backend.where);
      await session.connect(() => this.engine.preflight());
    } catch (err) {
      await this.onApplicationShutdown();
      throw err;
    }
  }

  /** Compiles the decorated methods, says how many, and has the subscriber follow L1 if any uses it. */
  private compileAndFollow(namespace: string, where: string): void {
    const methods = this.compileDecoratedMethods();
    const named = this.registration.name === DEFAULT_CACHE ? '' : `cache '${this.registration.name}', `;
    this.logger.log(`${named}${methods} cached method(s), namespace '${namespace}'${where}`);
    // The methods' l1 options are known now: the subscriber also listens for L1 invalidations if any uses it.
    this.engine.followL1();
  }

  /**
   * Says the connection is up once every module has initialised, so subscribers that started in their
   * own `onModuleInit` (Prometheus' `redis_up`) hear the state they start from; later changes follow.
   */
  onApplicationBootstrap(): void {
    if (this.session?.up) this.engine.events.connectionChanged('up');
  }

  async onApplicationShutdown(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    session?.closing();
    // Loads still running will not store their values: let other processes' waiters go now.
    await this.engine.releaseLeases();
    this.engine.stop();
    await session?.close();
  }

  /**
   * The registrations of the app must not be ambiguous: two global registrations of one cache would
   * leave every module with whichever Nest saw first. Checked by each registration (the first to
   * initialise fails the bootstrap).
   */
  private checkRegistrations(): void {
    const { name } = this.registration;
    const { options } = this;
    if (options.name !== undefined && cacheNameOf(options.name, registrationOf(name)) !== name) {
      throw new RedisCacheConfigError(`${registrationOf(name)}: its options name another cache, '${options.name}'`);
    }
    if (!this.registration.global) return;
    const globals = this.registrations().filter(
      (other) => other.registration.name === name && other.registration.global,
    );
    if (globals.length > 1) {
      throw new RedisCacheConfigError(
        `${registrationOf(name)} is registered globally ${globals.length} times: a module would get whichever ` +
          `Nest saw first. Register it once, give the others a name (forRoot({ name: 'sessions' })), or ` +
          `register them with isGlobal: false in the modules that use them.`,
      );
    }
  }

  /** Every cache registration of the application (this one included). */
  private registrations(): RedisCacheLifecycle[] {
    return this.discovery
      .getProviders()
      .map((wrapper) => wrapper.instance as unknown)
      .filter((instance): instance is RedisCacheLifecycle => instance instanceof RedisCacheLifecycle);
  }

  /**
   * Resolves the plan of every decorated method that uses this cache against its options, for the
   * class that uses it, so errors surface now, and warns about what would otherwise silently not be
   * cached. A method naming a cache no registration has, and a decorated provider that cannot see
   * the registration of its cache, fail the bootstrap.
   */
  private compileDecoratedMethods(): number {
    const { name } = this.registration;
    const known = new Set(this.registrations().map((other) => other.registration.name));
    const owners = new Set<object>();
    const warned = new Set<CacheMethodPlan>();
    let count = 0;
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const instance: unknown = wrapper.instance;
      // The concrete class: of the instance when there is one (useFactory providers included),
      // else the registered class (request-scoped providers have no instance yet).
      const owner = isObject(instance) ? instance.constructor : wrapper.metatype;
      if (typeof owner !== 'function' || owner === Object || owners.has(owner)) continue;
      owners.add(owner);
      for (const plan of decoratedMethods(owner.prototype)) {
        const where = `${owner.name}.${plan.methodName}`;
        if (!known.has(plan.cache)) {
          throw new RedisCacheConfigError(
            `${where} uses the cache '${plan.cache}', and the app registers no such cache ` +
              `(registered: ${[...known].map((known) => `'${known}'`).join(', ')}). ` +
              `Register it with ${registrationOf(plan.cache)}, or fix the decorator's \`cache\` option.`,
          );
        }
        if (plan.cache !== name) continue;
        const builtByInjector = isObject(instance) && wrapper.metatype === owner && !wrapper.inject;
        const executor = isObject(instance)
          ? (instance as Record<symbol, unknown>)[executorProperty(plan.cache)]
          : undefined;
        if (builtByInjector && executor === undefined && wrapper.isDependencyTreeStatic() && !wrapper.isTransient) {
          throw new RedisCacheConfigError(
            `${where} (in ${moduleOf(wrapper)}): no ${registrationOf(plan.cache)} is visible from ${moduleOf(wrapper)}, ` +
              `so its cache decorators have no cache. Import ${registrationOf(plan.cache)} in ${moduleOf(wrapper)}, ` +
              `or register it once with isGlobal: true (the default).`,
          );
        }
        // Another registration of this cache, visible from that provider's module instead (isGlobal: false).
        if (executor !== undefined && executor !== this.executor) continue;
        this.executor.compile(plan, owner);
        count++;
        this.warnAbout(plan, where, wrapper, instance, warned);
      }
    }
    return count;
  }

  private warnAbout(
    plan: CacheMethodPlan,
    where: string,
    wrapper: InstanceWrapper,
    instance: unknown,
    warned: Set<CacheMethodPlan>,
  ): void {
    if (!plan.modeDeclared && !warned.has(plan)) {
      warned.add(plan);
      // Served correctly either way (cache-method-plan.ts `learnReturnMode`), but until the mode is
      // learnt a call returns an Observable that is also a thenable, not a Promise instance.
      this.logger.warn(
        `${where}: its return type is not recorded (inferred, a union, an \`import type\` or plain ` +
          `JavaScript), so whether it returns a Promise or an Observable is learnt from what it returns, ` +
          `or from the entry another instance cached; until then a call starts at once and returns an ` +
          `Observable that can also be awaited. Declare \`: Promise<T>\` (or make it \`async\`), or ` +
          `\`: Observable<T>\` with a value import of Observable.`,
      );
    }
    if (plan.cacheable && !wrapper.isDependencyTreeStatic() && !warned.has(plan)) {
      warned.add(plan);
      this.logger.warn(
        `${where}: @Cacheable on a request-scoped (or transient) provider: its results are keyed by the ` +
          `method's arguments only, so calls made for different requests share them. Put the request's ` +
          `identity (user, tenant) in the arguments or the key, or cache in a singleton provider.`,
      );
    }
    const injectable = wrapper.isDependencyTreeStatic() && !wrapper.isTransient;
    if (
      injectable &&
      isObject(instance) &&
      (instance as Record<symbol, unknown>)[executorProperty(plan.cache)] === undefined
    ) {
      this.logger.warn(
        `${where}: this instance was not built by Nest's injector (useFactory or useValue), so its cache ` +
          `decorators have no cache; register the class itself as a provider (useClass) to cache it.`,
      );
    }
  }
}

/** The cache plans of a class's methods, its own and inherited. */
function* decoratedMethods(prototype: object | null): Generator<CacheMethodPlan> {
  const names = new Set<string>();
  for (let proto = prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (names.has(name)) continue; // overridden further down the chain
      names.add(name);
      const method: unknown = Object.getOwnPropertyDescriptor(proto, name)?.value;
      const plan =
        typeof method === 'function' ? (method as { [CACHE_PLAN]?: CacheMethodPlan })[CACHE_PLAN] : undefined;
      if (plan) yield plan;
    }
  }
}

/** The name of the module a provider belongs to, for messages. */
function moduleOf(wrapper: InstanceWrapper): string {
  return wrapper.host?.metatype?.name ?? 'its module';
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}
