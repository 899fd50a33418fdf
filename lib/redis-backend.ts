import calculateSlot from 'cluster-key-slot';
import type { Cluster } from 'ioredis';
import { adviseAtStartup, type StartupAdvisorOption } from './audit/startup-advisor.js';
import { BookkeepingKeys } from './core/bookkeeping-keys.js';
import { within } from './core/within.js';
import { CacheUnavailableError, RedisCacheConfigError } from './errors.js';
import type { ResolvedCacheConfig } from './options/resolve-options.js';
import { createRedisClient, type CacheClient } from './redis-client.factory.js';
import type { BackendEvents, CacheBackend, CacheBackendSession } from './store/cache-backend.js';
import { closeClient } from './store/close-client.js';
import { ConnectionHealth, type HealthLogger } from './store/connection-health.js';
import { configurationProblem, redactSecrets, tlsToPlainTextServer } from './store/connection-problems.js';
import { isCluster } from './store/guarded-commands.js';
import { NamespaceSubscriber } from './store/namespace-subscriber.js';
import { RedisCacheStore } from './store/redis-cache.store.js';
import { SentinelSwitches } from './store/sentinel-switches.js';
import { ShardChannels } from './store/shard-channels.js';
import { shardedPubSubRefusal } from './store/sharded-pubsub-support.js';

/** How long `app.init()` waits for a first connection before starting without the cache. */
export const CONNECT_WAIT_MS = 2_000;

type Client = CacheClient['client'];

/**
 * The configured Redis as the cache's backend: the client (opened, or the application's own adopted),
 * the health tracker that logs an outage once, the namespace's subscriber on a connection of its own,
 * the store, and the startup advisor.
 */
export class RedisBackend implements CacheBackend {
  readonly where = '';

  constructor(
    private readonly config: ResolvedCacheConfig,
    private readonly logger: HealthLogger,
    private readonly advisor: StartupAdvisorOption,
  ) {}

  open(namespace: string, events: BackendEvents): RedisSession {
    return new RedisSession(
      createRedisClient(this.config.redis),
      namespace,
      this.config,
      this.logger,
      this.advisor,
      events,
    );
  }
}

class RedisSession implements CacheBackendSession {
  readonly keys: BookkeepingKeys;
  readonly store: RedisCacheStore;
  readonly leases: NamespaceSubscriber;
  private readonly health: ConnectionHealth;
  /** The channels announced by sharded pub/sub: filled at `connect` on a Redis 7+ Cluster. */
  private readonly shards: ShardChannels;
  /** Sharded pub/sub was asked for (`shardedPubSub`, on a Cluster). */
  private readonly wantsShards: boolean;
  /** ioredis logs unhandled 'error' events: this listener takes them, and the tracker logs once per outage. */
  private readonly onError: (err: Error) => void;
  /** The startup advisor's connection while it runs. */
  private advising: Client | undefined;
  /** Through Sentinel, on a client the module opened: moves its connections along with a failover. */
  private readonly switches: SentinelSwitches | undefined;

  constructor(
    private readonly connection: CacheClient,
    namespace: string,
    config: ResolvedCacheConfig,
    private readonly logger: HealthLogger,
    private readonly advisor: StartupAdvisorOption,
    events: BackendEvents,
  ) {
    const { client } = connection;
    const health = new ConnectionHealth(logger);
    health.onRecovered = () => events.recovered();
    health.onDown = (reason) => events.down(reason);
    this.health = health;
    this.onError = (err) => health.failed(err);
    client.on('error', this.onError);
    // The module's own keys, and channels that carry what separates this app's keys from another's.
    const scope = scopeOf(client);
    this.keys = new BookkeepingKeys(namespace, scope);
    const { keys } = this;
    this.shards = new ShardChannels(scope.keyPrefix);
    this.wantsShards = isCluster(client) && config.shardedPubSub && sameSlot(scope.keyPrefix, keys);
    if (connection.followSwitches && !isCluster(client)) {
      this.switches = new SentinelSwitches(client.options);
      this.switches.follow(client);
    }
    const { switches } = this;
    // Lease releases are published per namespace; each application subscribes on a connection of its own.
    this.leases = new NamespaceSubscriber(
      keys.leaseChannel,
      (key) => keys.isEntryKey(key),
      events.rejected,
      this.shards,
      switches && ((subscriber) => switches.follow(subscriber)),
      logger,
    );
    this.store = new RedisCacheStore(client, config.commandTimeoutMs, health, this.shards);
  }

  isDown(): boolean {
    return this.health.isDown;
  }

  get up(): boolean {
    return this.connection.client.status === 'ready' && !this.health.isDown;
  }

  async connect(preflight: () => Promise<void>): Promise<void> {
    const { client } = this.connection;
    this.switches?.start();
    // An adopted client may still be connecting, or be lazy (it would connect on its first command,
    // but the store sends none until the client is ready): wait for it as for our own.
    // Bounded like the first connection: without the subscriber, waiters fall back to short re-reads.
    if (this.wantsShards) {
      // Which pub/sub the subscription takes depends on the server's version: asked first.
      await this.firstConnection();
      await this.chooseShards();
      await withinConnectWait(this.leases.start(client));
    } else {
      const subscribed = withinConnectWait(this.leases.start(client));
      await this.firstConnection();
      await subscribed;
    }
    await this.preflight(preflight);
    this.leases.startHeartbeat((channel, message) => this.store.publishPlain(channel, message));
    // Not awaited: advice about the server's memory settings never delays the bootstrap (it never throws).
    void this.advise();
  }

  /**
   * `shardedPubSub` on a Cluster: the namespace's announcements go by sharded pub/sub. An ioredis
   * before 5.6 or a Redis before 7 cannot: the bootstrap fails, saying so. Falling back to classic
   * pub/sub on this instance alone would leave it deaf to the others' announcements, and them to its.
   */
  private async chooseShards(): Promise<void> {
    const { client } = this.connection;
    const major = isCluster(client) && client.status === 'ready' ? await serverMajorVersion(client) : undefined;
    const refusal = shardedPubSubRefusal(client.options, major);
    if (refusal !== undefined)
      throw new RedisCacheConfigError(`RedisCacheModule cannot use sharded pub/sub: ${refusal}`);
    const { keys, leases, shards } = this;
    shards.add(keys.prefixChannel, keys.shardChannel('prefixes'), keys.epoch);
    shards.add(keys.tagChannel, keys.shardChannel('tags'), keys.epoch);
    shards.add(leases.shardHeartbeatChannel, keys.shardChannel(`heartbeat:${leases.heartbeatId}`), keys.epoch);
    // Releases are about one key each: published on the key's slot, by the script on its node.
    shards.addPerSlot(keys.leaseChannel, `${keys.namespace}:@`, 'lease');
  }

  closing(): void {
    this.health.close();
    this.advising?.disconnect();
  }

  async close(): Promise<void> {
    this.switches?.stop();
    await this.leases.stop();
    const { client, owned } = this.connection;
    if (owned) return closeClient(client);
    // The user's client outlives this app: take back the listener added when the session opened.
    client.off('error', this.onError);
  }

  /**
   * Waits a bounded time for the first connection: a Redis that is down does not stop the app. One
   * that answers in a way no reconnection will change (a certificate the client refuses, TLS to a
   * plain-text port, refused credentials, a database index it does not have) fails the bootstrap
   * with a RedisCacheConfigError: running uncached for good would hide the mistake.
   */
  private async firstConnection(): Promise<void> {
    const { client } = this.connection;
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
    this.health.failed(new CacheUnavailableError('not reachable yet; the app starts without the cache'));
  }

  /**
   * Once connected: the prefix markers are read (every read relies on them) and the subscription is
   * made. Redis refusing either to this user (NOPERM: rules short of the README's) fails the
   * bootstrap; a failure an outage explains does not.
   */
  private async preflight(engineReads: () => Promise<void>): Promise<void> {
    const refusals: unknown[] = [this.leases.refusal];
    if (this.connection.client.status === 'ready') await engineReads().catch((err: unknown) => refusals.push(err));
    // Sharded pub/sub: one heartbeat by SPUBLISH, so a user without +spublish is told now.
    if (this.shards.size > 0 && this.connection.client.status === 'ready') {
      await this.store.publishPlain(this.leases.shardHeartbeatChannel, '0').catch((err: unknown) => refusals.push(err));
    }
    const problem = refusals.map(configurationProblem).find((found) => found !== undefined);
    if (problem) throw new RedisCacheConfigError(`RedisCacheModule cannot use its Redis: ${problem}`);
  }

  /**
   * The startup advisor (audit/startup-advisor.ts), on a connection of its own: its INFO and SCANs
   * never queue among the app's first commands, nor count in them. Closed when done, or when the app
   * closes first.
   */
  private async advise(): Promise<void> {
    const { client } = this.connection;
    const checks = this.advisor;
    if (checks === false || client.status !== 'ready') return;
    // Lazy, whatever the original says: it connects below, once.
    const own: Client = isCluster(client)
      ? client.duplicate(undefined, { lazyConnect: true })
      : client.duplicate({ lazyConnect: true });
    own.on('error', () => undefined); // a refusal or an outage only ends the advice
    this.advising = own;
    try {
      await own.connect();
      await adviseAtStartup(own, { namespace: this.keys.namespace, checks });
    } catch {
      // Advice is optional: not connecting is no reason to say anything.
    } finally {
      this.advising = undefined;
      await closeClient(own);
    }
  }
}

/** Resolves true once `client` is ready, false after CONNECT_WAIT_MS or when connecting failed. */
async function waitForReady(client: Client): Promise<boolean> {
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
async function checkDatabase(client: Client): Promise<void> {
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
function scopeOf(client: Client): { keyPrefix: string; db: number } {
  if (isCluster(client)) {
    return { keyPrefix: client.options.keyPrefix ?? client.options.redisOptions?.keyPrefix ?? '', db: 0 };
  }
  return { keyPrefix: client.options.keyPrefix ?? '', db: client.options.db ?? 0 };
}

/**
 * True when a shard channel named like the namespace's bookkeeping keys hashes to their slot (their
 * hash tag decides; a namespace whose braces make no hash tag has none to share).
 */
function sameSlot(keyPrefix: string, keys: BookkeepingKeys): boolean {
  return calculateSlot(keyPrefix + keys.shardChannel('x')) === calculateSlot(keyPrefix + keys.epoch);
}

/**
 * The lowest major version of Redis the Cluster's primaries run, asked of each at most
 * CONNECT_WAIT_MS (undefined when none says in time).
 */
async function serverMajorVersion(client: Cluster): Promise<number | undefined> {
  const asked = Promise.all(client.nodes('master').map((node) => node.info('server').catch(() => '')));
  const infos = await within(asked, CONNECT_WAIT_MS, []);
  const majors = infos.flatMap((info) => /redis_version:(\d+)/.exec(info)?.[1] ?? []).map(Number);
  return majors.length > 0 ? Math.min(...majors) : undefined;
}

/** Waits for `work` at most CONNECT_WAIT_MS. */
async function withinConnectWait(work: Promise<void>): Promise<void> {
  await within(work, CONNECT_WAIT_MS, undefined);
}
