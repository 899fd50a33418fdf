import type { LocalRedisServer } from './local-redis-server.mjs';

export interface LocalRedisSentinelAddress {
  readonly host: string;
  readonly port: number;
}

export interface LocalRedisSentinel {
  /** The name the sentinels monitor the primary under: ioredis's `name` option. */
  readonly masterName: string;
  /** Where the sentinels listen: ioredis's `sentinels` option. */
  readonly sentinels: LocalRedisSentinelAddress[];
  /** The server that was the primary at start; `kill()` it (SIGKILL) to make the sentinels fail over. */
  readonly primary: LocalRedisServer;
  /** The server that replicated the primary at start: the one a failover promotes. */
  readonly replica: LocalRedisServer;
  /** Every process id (servers and sentinels), to check that none is left after `stop()`. */
  readonly pids: number[];
  /** The primary the first sentinel that answers names now. */
  currentPrimary(): Promise<LocalRedisSentinelAddress>;
  /**
   * Resolves once every sentinel names the same primary other than `fromPort` and that server answers
   * as a primary; rejects after `timeoutMs` (default 30 s) with the sentinels' logs.
   */
  waitForPromotion(fromPort: number, timeoutMs?: number): Promise<LocalRedisSentinelAddress>;
  /**
   * A manual failover (`SENTINEL FAILOVER`): the replica is promoted while the old primary keeps
   * running and becomes its replica. Resolves to the new primary once promoted (see `waitForPromotion`).
   */
  failover(timeoutMs?: number): Promise<LocalRedisSentinelAddress>;
  /** The last few KB each sentinel logged, for a test's failure message. */
  sentinelLogs(): string[];
  /** Stops every sentinel and server (SIGTERM, SIGKILL after 3 s) and removes their folders. Idempotent. */
  stop(): Promise<void>;
}

export interface StartLocalRedisSentinelOptions {
  /** The monitored master's name; default 'mymaster'. */
  masterName?: string;
  /** How many sentinels; default 3. */
  sentinels?: number;
  /** Sentinels that must agree the primary is down; default a majority. */
  quorum?: number;
  /** How long the primary must not answer before a sentinel thinks it down; default 1000 ms. */
  downAfterMs?: number;
  /** Sentinel's `failover-timeout`; default 10000 ms. */
  failoverTimeoutMs?: number;
  /** How long to wait for the replica to sync and the sentinels to agree; default 20 s. */
  readyTimeoutMs?: number;
}

/**
 * Starts a primary, a replica of it and three sentinels (`redis-server <conf> --sentinel`) on free
 * loopback ports, and resolves once every sentinel names the primary, sees the replica in sync and
 * knows the other sentinels.
 *
 * @example
 * const deployment = await startLocalRedisSentinel();
 * const client = new Redis({ sentinels: deployment.sentinels, name: deployment.masterName });
 * await deployment.primary.kill();
 * await deployment.waitForPromotion(deployment.primary.port);
 * // ...
 * await deployment.stop();
 */
export declare function startLocalRedisSentinel(options?: StartLocalRedisSentinelOptions): Promise<LocalRedisSentinel>;
