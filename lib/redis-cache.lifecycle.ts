import type { Logger, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { DiscoveryService } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { adviseAtStartup } from './audit/startup-advisor.js';
import { cacheNameOf, DEFAULT_CACHE, executorProperty, registrationOf } from './cache-names.js';
import { BookkeepingKeys } from './core/bookkeeping-keys.js';
import { CacheEngine } from './core/cache-engine.js';
import type { CacheMethodPlan } from './core/cache-method-plan.js';
import { CacheOperationExecutor } from './core/cache-operation-executor.js';
import { CACHE_PLAN } from './decorators/cache-method-wrapper.js';
import { CacheUnavailableError, RedisCacheConfigError } from './errors.js';
import type { RedisCacheModuleOptions } from './options/redis-cache-options.interface.js';
import { resolveCacheOptions } from './options/resolve-options.js';
import { createRedisClient, type CacheClient } from './redis-client.factory.js';
import { closeClient } from './store/close-client.js';
import { configurationProblem, redactSecrets, tlsToPlainTextServer } from './store/connection-problems.js';
import type { CacheStore, NamespaceSubscription } from './store/cache-store.js';
import { ConnectionHealth } from './store/connection-health.js';
import { isCluster } from './store/guarded-commands.js';
import { NamespaceSubscriber } from './store/namespace-subscriber.js';
import { RedisCacheStore } from './store/redis-cache.store.js';

/** How long `app.init()` waits for a first connection before starting without the cache. */
const CONNECT_WAIT_MS = 2_000;

/**
 * A store other than a Redis connection for the engine to run on: RedisCacheTestingModule's in-process
 * keyspace (lib/testing). Given one, the lifecycle opens it in `app.init()` instead of connecting.
 */
export interface CacheBackend {
  /**
   * The store and subscription of one application's cache, for the namespace's `keys`; `rejected`
   * counts a message on its channels that no instance would send.
   */
  open(keys: BookkeepingKeys, rejected: () => void): CacheBackendSession;
}

/** What `CacheBackend.open` returns: the engine runs on its store and waits on its lease listener. */
export interface CacheBackendSession {
  readonly store: CacheStore;
  readonly leases: NamespaceSubscription;
  /** Subscribes the lease listener and its followers; resolves once subscribed. */
  subscribe(): Promise<void>;
  close(): Promise<void>;
}

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
  private connection: CacheClient | undefined;
  private leases: NamespaceSubscriber | undefined;
  private session: CacheBackendSession | undefined;
  private onError: ((err: Error) => void) | undefined;
  private health: ConnectionHealth | undefined;
  /** The startup advisor's connection while it runs. */
  private advisor: CacheClient['client'] | undefined;

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

  async onModuleInit(): Promise<void> {
    this.checkRegistrations();
    if (this.backend) return this.openBackend(this.backend);
    const config = resolveCacheOptions(this.options);
    const connection = createRedisClient(config.redis);
    const health = new ConnectionHealth(this.logger);
    this.health = health;
    // What an outage kept the cache from invalidating is deleted as soon as Redis answers again.
    health.onRecovered = () => {
      this.engine.events.connectionChanged('up');
      void this.engine.recovered();
    };
    health.onDown = (reason) => this.engine.events.connectionChanged('down', reason);
    // An 'error' listener is required (ioredis logs unhandled ones); the tracker logs once per outage.
    this.onError = (err: Error) => health.failed(err);
    connection.client.on('error', this.onError);
    // The module's own keys, and channels that carry what separates this app's keys from another's.
    const keys = new BookkeepingKeys(config.namespace, scopeOf(connection.client));
    // Lease releases are published per namespace; each application subscribes on a connection of its own.
    const leases = new NamespaceSubscriber(
      keys.leaseChannel,
      (key) => keys.isEntryKey(key),
      () => this.engine.events.messageRejected(),
    );
    const store = new RedisCacheStore(connection.client, config.commandTimeoutMs, health);
    this.engine.start(config, store, () => health.isDown, leases, keys);
    this.connection = connection;
    this.leases = leases;
    try {
      this.compileAndFollow(config.namespace, '');
    } catch (err) {
      await this.onApplicationShutdown();
      throw err;
    }
    // An adopted client may still be connecting, or be lazy (it would connect on its first command,
    // but the store sends none until the client is ready): wait for it as for our own.
    // Bounded like the first connection: without the subscriber, waiters fall back to short re-reads.
    const subscribed = withinConnectWait(leases.start(connection.client));
    try {
      await this.connect(connection, health);
      await subscribed;
      await this.preflight(leases);
    } catch (err) {
      await this.onApplicationShutdown();
      throw err;
    }
    leases.startHeartbeat((channel, message) => store.publishPlain(channel, message));
    // Not awaited: advice about the server's memory settings never delays the bootstrap (it never throws).
    void this.advise(connection.client, config.namespace);
  }

  /**
   * Runs the engine on `backend` instead of a Redis connection: nothing connects. The options are
   * validated as for Redis, but for `redis` (the backend brings its own store).
   */
  private async openBackend(backend: CacheBackend): Promise<void> {
    const config = resolveCacheOptions({ ...this.options, redis: {} });
    const keys = new BookkeepingKeys(config.namespace, { keyPrefix: '', db: 0 });
    const session = backend.open(keys, () => this.engine.events.messageRejected());
    this.session = session;
    this.engine.start(config, session.store, () => false, session.leases, keys);
    try {
      this.compileAndFollow(config.namespace, ', in-process store');
      await session.subscribe();
      await this.engine.preflight();
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
   * The startup advisor (audit/startup-advisor.ts), on a connection of its own: its INFO and SCANs
   * never queue among the app's first commands, nor count in them. Closed when done, or when the app
   * closes first.
   */
  private async advise(client: CacheClient['client'], namespace: string): Promise<void> {
    const checks = this.options.startupAdvisor;
    if (checks === false || client.status !== 'ready') return;
    // Lazy, whatever the original says: it connects below, once.
    const own: CacheClient['client'] = isCluster(client)
      ? client.duplicate(undefined, { lazyConnect: true })
      : client.duplicate({ lazyConnect: true });
    own.on('error', () => undefined); // a refusal or an outage only ends the advice
    this.advisor = own;
    try {
      await own.connect();
      await adviseAtStartup(own, { namespace, checks });
    } catch {
      // Advice is optional: not connecting is no reason to say anything.
    } finally {
      this.advisor = undefined;
      await closeClient(own);
    }
  }

  /**
   * Says the connection is up once every module has initialised, so subscribers that started in their
   * own `onModuleInit` (Prometheus' `redis_up`) hear the state they start from; later changes follow.
   */
  onApplicationBootstrap(): void {
    if (this.connection?.client.status === 'ready' && this.health?.isDown === false) {
      this.engine.events.connectionChanged('up');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.health?.close();
    this.advisor?.disconnect();
    // Loads still running will not store their values: let other processes' waiters go now.
    await this.engine.releaseLeases();
    this.engine.stop();
    const leases = this.leases;
    this.leases = undefined;
    await leases?.stop();
    const session = this.session;
    this.session = undefined;
    await session?.close();
    const connection = this.connection;
    this.connection = undefined;
    if (!connection) return;
    const { client } = connection;
    if (!connection.owned) {
      // The user's client outlives this app: take back the listener added in onModuleInit.
      if (this.onError) client.off('error', this.onError);
      return;
    }
    await closeClient(client);
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

  /**
   * Once connected: the prefix markers are read (every read relies on them) and the subscription is
   * made. Redis refusing either to this user (NOPERM: rules short of the README's) fails the
   * bootstrap; a failure an outage explains does not.
   */
  private async preflight(leases: NamespaceSubscriber): Promise<void> {
    const refusals: unknown[] = [leases.refusal];
    if (this.connection?.client.status === 'ready')
      await this.engine.preflight().catch((err: unknown) => refusals.push(err));
    const problem = refusals.map(configurationProblem).find((found) => found !== undefined);
    if (problem) throw new RedisCacheConfigError(`RedisCacheModule cannot use its Redis: ${problem}`);
  }

  /**
   * Waits a bounded time for the first connection: a Redis that is down does not stop the app. One
   * that answers in a way no reconnection will change (a certificate the client refuses, TLS to a
   * plain-text port, refused credentials, a database index it does not have) fails the bootstrap
   * with a RedisCacheConfigError: running uncached for good would hide the mistake.
   */
  private async connect({ client }: CacheClient, health: ConnectionHealth): Promise<void> {
    const seen: unknown[] = [];
    const collect = (err: unknown) => seen.push(err);
    client.on('error', collect);
    if (isCluster(client)) client.on('node error', collect);
    try {
      const ready = await waitForReady(client);
      if (ready) await checkDatabase(client);
      const problem = seen.map(configurationProblem).find((found) => found !== undefined);
      if (problem) throw new RedisCacheConfigError(`RedisCacheModule cannot use its Redis: ${problem}`);
      if (ready) return;
      const plainText = await tlsToPlainTextServer(client);
      if (plainText) throw new RedisCacheConfigError(`RedisCacheModule cannot use its Redis: ${plainText}`);
    } finally {
      client.off('error', collect);
      if (isCluster(client)) client.off('node error', collect);
    }
    // Through the tracker, so this outage is logged once however it began (a refused connection has
    // already been reported by the client's 'error' event).
    health.failed(new CacheUnavailableError('not reachable yet; the app starts without the cache'));
  }
}

/** Resolves true once `client` is ready, false after CONNECT_WAIT_MS or when connecting failed. */
async function waitForReady(client: CacheClient['client']): Promise<boolean> {
  if (client.status === 'ready') return true;
  let timer: NodeJS.Timeout | undefined;
  let onReady: (() => void) | undefined;
  const connected = new Promise<boolean>((resolve) => {
    onReady = () => resolve(true);
    client.once('ready', onReady);
    if (client.status === 'wait') client.connect().catch(() => resolve(false));
  });
  const waited = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(client.status === 'ready'), CONNECT_WAIT_MS);
  });
  const ready = await Promise.race([connected, waited]);
  clearTimeout(timer);
  if (onReady) client.off('ready', onReady);
  return ready;
}

/**
 * A database index the server does not have makes ioredis report the SELECT's error and then carry
 * on in database 0, another application's keys maybe: selecting it again here surfaces the refusal.
 */
async function checkDatabase(client: CacheClient['client']): Promise<void> {
  const { db } = client.options as { db?: number };
  if (isCluster(client) || !db) return;
  try {
    await client.select(db);
  } catch (err) {
    // Refused (out of range, or a user without +select): ioredis would go on in database 0.
    if ((err as Error | undefined)?.name !== 'ReplyError') return;
    const problem = configurationProblem(err) ?? redactSecrets((err as Error).message);
    throw new RedisCacheConfigError(`RedisCacheModule cannot use database ${db}: ${problem}`, { cause: err });
  }
}

/**
 * What separates this client's keys from another application's on the same server: its `keyPrefix`
 * and its database (always 0 on a Cluster).
 */
function scopeOf(client: CacheClient['client']): { keyPrefix: string; db: number } {
  if (isCluster(client)) {
    return { keyPrefix: client.options.keyPrefix ?? client.options.redisOptions?.keyPrefix ?? '', db: 0 };
  }
  return { keyPrefix: client.options.keyPrefix ?? '', db: client.options.db ?? 0 };
}

/** Waits for `work` at most CONNECT_WAIT_MS. */
async function withinConnectWait(work: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, CONNECT_WAIT_MS);
  });
  await Promise.race([work, waited]);
  clearTimeout(timer);
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
