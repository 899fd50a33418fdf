export interface LocalRedisServer {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /** Stops the server (SIGTERM, SIGKILL after 3 s) and removes its folder. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL: for fault tests that simulate a crash (and may restart on the same port). */
  kill(): Promise<void>;
}

export interface StartLocalRedisOptions {
  /** A fixed port (e.g. to restart a killed server on its old port); default: a free one. */
  port?: number;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[];
  /** How long to wait for the server to answer PING; default 10 s. */
  readyTimeoutMs?: number;
}

export declare const REDIS_INSTALL_HINT: string;
export declare function redisServerBinary(): string | undefined;
export declare function freePort(): Promise<number>;
/** Kills `child` if it still runs when this process exits, and removes `dir` then. */
export declare function killOnExit(child: import('node:child_process').ChildProcess, dir?: string): void;
export declare function startLocalRedis(options?: StartLocalRedisOptions): Promise<LocalRedisServer>;
