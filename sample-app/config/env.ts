import {
  checkAdminToken,
  DEFAULT_CACHE_NAMESPACE,
  DEFAULT_DB_PATH,
  DEFAULT_QUERY_DELAY_MS,
  type RedisClusterNode,
} from './sample-app-config.js';

/** The sample app's settings as read from environment variables (see sample-app/README.md). */
export interface SampleAppEnv {
  readonly port: number;
  /** Unset (and no cluster): main.ts starts a throwaway local redis-server. */
  readonly redisUrl?: string;
  /** REDIS_CLUSTER_NODES, `host:port,host:port,...`: a Redis Cluster instead of REDIS_URL. */
  readonly redisClusterNodes?: RedisClusterNode[];
  readonly dbPath: string;
  readonly queryDelayMs: number;
  readonly namespace: string;
  /** Unset only in development (see nodeEnv): elsewhere readSampleAppEnv throws without one. */
  readonly adminToken?: string;
  /** NODE_ENV: unset, `development` or `test` is development, where ADMIN_TOKEN may be unset. */
  readonly nodeEnv?: string;
}

export const DEFAULT_PORT = 3000;

/**
 * Reads PORT, REDIS_URL, REDIS_CLUSTER_NODES, DB_PATH, QUERY_DELAY_MS, CACHE_NAMESPACE, ADMIN_TOKEN and
 * NODE_ENV; throws naming a bad variable, and when ADMIN_TOKEN is blank, or unset outside development.
 */
export function readSampleAppEnv(env: NodeJS.ProcessEnv = process.env): SampleAppEnv {
  const nodeEnv = env.NODE_ENV || undefined;
  return {
    port: readInteger(env, 'PORT', DEFAULT_PORT),
    redisUrl: env.REDIS_URL || undefined,
    redisClusterNodes: readClusterNodes(env, 'REDIS_CLUSTER_NODES'),
    dbPath: env.DB_PATH || DEFAULT_DB_PATH,
    queryDelayMs: readInteger(env, 'QUERY_DELAY_MS', DEFAULT_QUERY_DELAY_MS),
    namespace: env.CACHE_NAMESPACE || DEFAULT_CACHE_NAMESPACE,
    adminToken: checkAdminToken(env.ADMIN_TOKEN, nodeEnv),
    nodeEnv,
  };
}

function readClusterNodes(env: NodeJS.ProcessEnv, name: string): RedisClusterNode[] | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  return raw.split(',').map((entry) => {
    const match = /^\s*(.+):(\d+)\s*$/.exec(entry);
    if (!match) throw new Error(`${name} must be a comma-separated list of host:port, got "${raw}"`);
    return { host: match[1]!, port: Number(match[2]) };
  });
}

function readInteger(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  }
  return value;
}
