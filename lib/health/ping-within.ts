import type { Cluster, Redis } from 'ioredis';
import { redactSecrets } from '../store/connection-problems.js';

/** What one PING found: an answer and how long it took, or why there was none. */
export type PingOutcome =
  | { readonly answered: true; readonly latencyMs: number }
  | { readonly answered: false; readonly reason: string; readonly latencyMs?: number };

const PONG = Symbol('pong');
const TIMED_OUT = Symbol('timed out');

/**
 * PINGs `client` and waits for PONG at most `timeoutMs`, whatever the client's own timeouts: a
 * paused or overloaded server must not hold a health endpoint. Never rejects, and leaves no timer.
 */
export async function pingWithin(client: Redis | Cluster, timeoutMs: number): Promise<PingOutcome> {
  // A client that is not connected fails a PING at once or, with its offline queue on, keeps it
  // until it reconnects: one more queued command per health check for as long as Redis is away.
  if (client.status !== 'ready') {
    return { answered: false, reason: `Redis is not connected (client status '${client.status}')` };
  }
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
  });
  // Settles either way, so an answer that comes after the timeout is dropped, not an unhandled rejection.
  const ping = client.ping().then(
    (): typeof PONG => PONG,
    (err: unknown) => ({ err }),
  );
  try {
    const answer = await Promise.race([ping, timedOut]);
    const latencyMs = Math.round((performance.now() - started) * 100) / 100;
    if (answer === PONG) return { answered: true, latencyMs };
    if (answer === TIMED_OUT) return { answered: false, reason: `Redis did not answer PING within ${timeoutMs} ms` };
    const reason = `PING failed: ${redactSecrets(messageOf(answer.err))}`;
    // An error reply (LOADING, NOAUTH...) is an answer, and its latency is real; a closed connection's is not.
    return isReplyError(answer.err) ? { answered: false, reason, latencyMs } : { answered: false, reason };
  } finally {
    clearTimeout(timer);
  }
}

function messageOf(err: unknown): string {
  return typeof (err as Error | undefined)?.message === 'string' ? (err as Error).message : String(err);
}

/** By name: ioredis's ReplyError may come from another copy of the package (redis-errors). */
function isReplyError(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'ReplyError';
}
