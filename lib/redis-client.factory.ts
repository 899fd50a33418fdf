import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisConnectionOption, RedisClusterConnection } from './options/redis-cache-options.interface.js';

/** A client, and whether this module opened it (and so must close it). */
export interface CacheClient {
  client: Redis | Cluster;
  owned: boolean;
  /**
   * Through Sentinel, unless the options chose ioredis's `failoverDetector` (true or false): the
   * session moves the connections along with a failover (store/sentinel-switches.ts).
   */
  followSwitches?: boolean;
}

/**
 * Reconnect delays: 50 ms more per attempt, at most 2 s (ioredis 5's default). ioredis 6 doubles the
 * delay up to 5 s: after an outage or a failover the cache would stay off up to 5 s longer, and its
 * subscriber could come back seconds after its command connection.
 */
export const reconnectDelay = (attempt: number): number => Math.min(attempt * 50, 2_000);

/**
 * Defaults for clients the module opens. `lazyConnect`: nothing connects until the options are
 * validated in `app.init()`. `enableOfflineQueue: false`: while the connection is down commands
 * fail at once instead of queueing, so callers go to the source without waiting. Explicit user
 * options win over these.
 */
const OWNED_CLIENT_DEFAULTS: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  retryStrategy: reconnectDelay,
  connectionName: 'nestjs-redis-cache',
  // Closing a connection that is down or reconnecting: the socket is gone, so ioredis's 2 s wait for
  // it to end gracefully would only keep the process alive after app.close().
  disconnectTimeout: 0,
};

/** Adopts an existing client or opens one from a URL, ioredis options or a cluster config. */
export function createRedisClient(option: RedisConnectionOption): CacheClient {
  if (isClient(option)) return { client: option, owned: false };
  if (typeof option === 'string') return { client: new Redis(option, OWNED_CLIENT_DEFAULTS), owned: true };
  if (isClusterConnection(option)) {
    const { nodes, options = {} } = option.cluster;
    const client = new Cluster(nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      ...options,
      redisOptions: {
        connectionName: OWNED_CLIENT_DEFAULTS.connectionName,
        disconnectTimeout: OWNED_CLIENT_DEFAULTS.disconnectTimeout,
        ...options.redisOptions,
      },
    });
    return { client, owned: true };
  }
  // Through Sentinel, failovers are followed by the session (store/sentinel-switches.ts), not by
  // ioredis's failoverDetector: that one can end the client for good, or drop it from the new primary.
  const followSwitches = Boolean(option.sentinels?.length) && option.failoverDetector === undefined;
  return { client: new Redis({ ...OWNED_CLIENT_DEFAULTS, ...option }), owned: true, followSwitches };
}

/** Duck-typed, so a client built by another copy of ioredis is recognised too. */
function isClient(option: RedisConnectionOption): option is Redis | Cluster {
  return (
    typeof option === 'object' &&
    option !== null &&
    typeof (option as Redis).getBuffer === 'function' &&
    typeof (option as Redis).status === 'string'
  );
}

function isClusterConnection(option: RedisConnectionOption): option is RedisClusterConnection {
  return typeof option === 'object' && option !== null && 'cluster' in option && typeof option.cluster === 'object';
}
