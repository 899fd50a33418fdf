import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { redactSecrets } from '../store/connection-problems.js';
import { CliRedisError } from './cli-io.js';

/** How long the CLI waits for Redis to answer before giving up. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Connects to the Redis at `url` (a Cluster seeded by it when `cluster`), once: no reconnection, so
 * a Redis that is not there ends the command at once with what went wrong (CliRedisError), never
 * with ioredis retrying in the background.
 */
export async function connectForAudit(url: string, cluster: boolean): Promise<Redis | Cluster> {
  const seen: unknown[] = [];
  const common: RedisOptions = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    connectionName: 'nestjs-redis-cache-audit',
  };
  const client = cluster
    ? new Cluster([seedOf(url)], {
        lazyConnect: true,
        clusterRetryStrategy: () => null,
        redisOptions: { ...common, ...credentialsOf(url) },
      })
    : new Redis(url, { ...common, lazyConnect: true, retryStrategy: () => null });
  // Without a listener ioredis prints every connection error itself; they are reported below instead.
  client.on('error', (err: unknown) => seen.push(err));
  if (cluster) client.on('node error', (err: unknown) => seen.push(err));
  try {
    await client.connect();
    return client;
  } catch (err) {
    // Already ended (no retries): disconnect() would only arm a 2 s timer that keeps the process up.
    if (client.status !== 'end') client.disconnect();
    // connect() rejects with "Connection is closed."; the 'error' events say why.
    const cause = seen.find((found) => describe(found) !== '') ?? err;
    const hint = /cluster support disabled/.test(describe(cause))
      ? ' (it is a single server: leave out --cluster)'
      : '';
    throw new CliRedisError(`cannot connect to ${redactSecrets(url)}: ${describe(cause) || 'no answer'}${hint}`, {
      cause,
    });
  }
}

/** One line for an error: its message, its code, or (Node's AggregateError for ::1 and 127.0.0.1) its parts'. */
export function describe(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err ?? '');
  const { message, code, errors } = err as { message?: unknown; code?: unknown; errors?: unknown };
  if (typeof message === 'string' && message !== '') return redactSecrets(message);
  if (Array.isArray(errors) && errors.length > 0) return errors.map(describe).join('; ');
  return typeof code === 'string' ? code : '';
}

/** The seed node of a Cluster URL. */
function seedOf(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 6379) };
}

/** User, password and TLS of a URL, for every node a Cluster discovers (not only the seed). */
function credentialsOf(url: string): RedisOptions {
  const parsed = new URL(url);
  return {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}
