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
  /**
   * When set, `/admin/*` routes require the header `x-admin-token: <adminToken>`. Unset (open routes)
   * only in development: see {@link checkAdminToken}.
   */
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

/**
 * Whether NODE_ENV means development, where the sample app may run with open `/admin` routes: unset
 * (or empty), `development` or `test`. Any other value (`production`, `staging`, ...) is not.
 */
export function isDevelopment(nodeEnv: string | undefined): boolean {
  return !nodeEnv || nodeEnv === 'development' || nodeEnv === 'test';
}

/**
 * The admin token the sample app may start with. No token (unset or empty) leaves `/admin` open,
 * which is allowed only in development ({@link isDevelopment}); elsewhere this throws, as it does
 * for a token of only whitespace, so that the app refuses to start rather than expose `/admin`.
 */
export function checkAdminToken(adminToken: string | undefined, nodeEnv: string | undefined): string | undefined {
  if (!adminToken) {
    if (isDevelopment(nodeEnv)) return undefined;
    throw new Error(
      `ADMIN_TOKEN is not set and NODE_ENV is "${nodeEnv}": refusing to start with /admin routes open to anyone. ` +
        'Set ADMIN_TOKEN (e.g. export ADMIN_TOKEN=$(openssl rand -hex 16)), ' +
        'or leave NODE_ENV unset (or development) to run without one locally.',
    );
  }
  if (adminToken.trim() === '') {
    throw new Error('ADMIN_TOKEN is only whitespace: set a real token (e.g. openssl rand -hex 16), or leave it unset');
  }
  return adminToken;
}

/** Fills in defaults and rejects values that would only fail later, at the first query (or leave `/admin` open). */
export function resolveSampleAppConfig(input: {
  redisUrl?: string;
  redisClusterNodes?: readonly RedisClusterNode[];
  dbPath?: string;
  queryDelayMs?: number;
  namespace?: string;
  adminToken?: string;
  /** Decides whether the app may run without `adminToken` ({@link isDevelopment}). Default `process.env.NODE_ENV`. */
  nodeEnv?: string;
}): SampleAppConfig {
  const clustered = (input.redisClusterNodes?.length ?? 0) > 0;
  if (clustered === Boolean(input.redisUrl)) {
    throw new Error('give the sample app either a Redis URL or Redis Cluster nodes, not both or neither');
  }
  const queryDelayMs = input.queryDelayMs ?? DEFAULT_QUERY_DELAY_MS;
  if (!Number.isInteger(queryDelayMs) || queryDelayMs < 0) {
    throw new Error(`queryDelayMs must be a non-negative integer, got ${queryDelayMs}`);
  }
  const adminToken = checkAdminToken(input.adminToken, input.nodeEnv ?? process.env.NODE_ENV);
  return {
    redisUrl: clustered ? undefined : input.redisUrl,
    redisClusterNodes: clustered ? input.redisClusterNodes : undefined,
    dbPath: input.dbPath ?? DEFAULT_DB_PATH,
    queryDelayMs,
    cacheNamespace: input.namespace ?? DEFAULT_CACHE_NAMESPACE,
    adminToken,
  };
}
