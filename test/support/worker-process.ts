// The child's side of worker-processes.ts: what every worker process of the multi-process specs does
// around its own work. It says `ready` once booted (or `fatal` and exits 1 if booting failed), hands
// the parent's messages to the worker, reports a failed one as `fatal`, and on `exit` closes what
// the worker holds and leaves with code 0. Compiled into each worker by tsc (plain node, no jest):
// it imports nothing of the test harness.
import { Cluster, Redis } from 'ioredis';

/** RedisCacheModule's `redis` option as the parent passed it: a URL, or a cluster's seed nodes. */
export type WorkerRedis = string | { cluster: { nodes: Array<{ host: string; port: number }> } };

/** The Redis that redisEnv (worker-processes.ts) put in the environment under `prefix`, if any. */
export function redisFromEnv(prefix: string): WorkerRedis | undefined {
  const nodes = process.env[`${prefix}_REDIS_CLUSTER_NODES`];
  if (nodes) return { cluster: { nodes: JSON.parse(nodes) as Array<{ host: string; port: number }> } };
  return process.env[`${prefix}_REDIS_URL`] || undefined;
}

/**
 * A plain client of that Redis, beside the cache's own connection: for what a worker keeps outside
 * the namespace (counters, a "database"). One retry (ioredis's default is 20): a lost Redis fails a call soon.
 */
export function plainClient(redis: WorkerRedis): Redis | Cluster {
  return typeof redis === 'string'
    ? new Redis(redis, { maxRetriesPerRequest: 1 })
    : new Cluster(redis.cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
}

/** Sends to the parent, unless it is gone (or the worker is leaving): nobody would read it. */
export function sendToParent<Message extends { type: string; pid: number }>(message: Message): void {
  if (process.connected) process.send?.(message);
}

function fatal(error: unknown): void {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  sendToParent({ type: 'fatal', pid: process.pid, error: text });
}

/** A booted worker. */
export interface WorkerBody<Command extends { type: string }> {
  /**
   * Each message of the parent but `exit`, as it arrives (not queued behind the previous one, so a
   * `stop` can reach a running loop). A rejection is sent to the parent as `fatal`.
   */
  handle(message: Exclude<Command, { type: 'exit' }>): Promise<void> | void;
  /** On `exit`: what to close before the worker disconnects (settled, never rejects the exit). */
  close(): Promise<unknown>;
}

/** Boots the worker with `boot` and runs it until the parent says `exit` or goes away. */
export function runWorker<Command extends { type: string }>(boot: () => Promise<WorkerBody<Command>>): void {
  void boot().then(
    (body) => {
      process.on('message', (message: Command) => {
        if (message.type === 'exit') {
          void Promise.allSettled([body.close()]).then(() => process.disconnect());
        } else {
          // The executor runs `handle` now, and turns a synchronous throw into a rejection too.
          new Promise<void>((resolve) => resolve(body.handle(message as Exclude<Command, { type: 'exit' }>))).catch(
            fatal,
          );
        }
      });
      // Gone parent (or the disconnect above): nothing left to do.
      process.on('disconnect', () => process.exit(0));
      sendToParent({ type: 'ready', pid: process.pid });
    },
    (error: unknown) => {
      fatal(error);
      process.exit(1);
    },
  );
}
