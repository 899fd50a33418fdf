import { Inject } from '@nestjs/common';

/** Everything the sample app needs to boot; `resolveSampleAppConfig` fills in the defaults. */
export interface SampleAppConfig {
  /** Redis the cache talks to, e.g. `redis://127.0.0.1:6379`; unset when `redisClusterNodes` is. */
  readonly redisUrl?: string;
  /** Instead of `redisUrl`: seed nodes of a Redis Cluster (the client discovers the rest). */
  readonly redisClusterNodes?: readonly RedisClusterNode[];
  /** SQLite file; `:memory:` for a throwaway database. */
  readonly dbPath: string;
  /** Artificial latency, in milliseconds, added to every read query so that a cache hit is visible. */
  readonly queryDelayMs: number;
  /** Prefix of every Redis key the cache writes (`${namespace}:${key}`). */
  readonly cacheNamespace: string;
  /** When set, `/admin/*` routes require the header `x-admin-token: <adminToken>`. */
  readonly adminToken?: string;
}

/** One `host:port` of a Redis Cluster. */
export interface RedisClusterNode {
  readonly host: string;
  readonly port: number;
}

export const DEFAULT_DB_PATH = './sample-app.db';
export const DEFAULT_QUERY_DELAY_MS = 50;
export const DEFAULT_CACHE_NAMESPACE = 'sample-app';

/** DI token of the resolved {@link SampleAppConfig}. */
export const SAMPLE_APP_CONFIG = Symbol('SAMPLE_APP_CONFIG');

/** Injects the {@link SampleAppConfig}: `constructor(@InjectSampleAppConfig() config: SampleAppConfig)`. */
export const InjectSampleAppConfig = (): ParameterDecorator => Inject(SAMPLE_APP_CONFIG);

/** Fills in defaults and rejects values that would only fail later, at the first query. */
export function resolveSampleAppConfig(input: {
  redisUrl?: string;
  redisClusterNodes?: readonly RedisClusterNode[];
  dbPath?: string;
  queryDelayMs?: number;
  namespace?: string;
  adminToken?: string;
}): SampleAppConfig {
  const clustered = (input.redisClusterNodes?.length ?? 0) > 0;
  if (clustered === Boolean(input.redisUrl)) {
    throw new Error('give the sample app either a Redis URL or Redis Cluster nodes, not both or neither');
  }
  const queryDelayMs = input.queryDelayMs ?? DEFAULT_QUERY_DELAY_MS;
  if (!Number.isInteger(queryDelayMs) || queryDelayMs < 0) {
    throw new Error(`queryDelayMs must be a non-negative integer, got ${queryDelayMs}`);
  }
  return {
    redisUrl: clustered ? undefined : input.redisUrl,
    redisClusterNodes: clustered ? input.redisClusterNodes : undefined,
    dbPath: input.dbPath ?? DEFAULT_DB_PATH,
    queryDelayMs,
    cacheNamespace: input.namespace ?? DEFAULT_CACHE_NAMESPACE,
    adminToken: input.adminToken || undefined,
  };
}
