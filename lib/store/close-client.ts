import type { Cluster, Redis } from 'ioredis';

/** How long a QUIT may take before the connection is dropped instead. */
const QUIT_WAIT_MS = 1_000;

/**
 * Closes a connection this module opened: QUIT when it is up, else a plain disconnect (which also
 * stops reconnecting). QUIT resolves on the server's reply, before the socket closes, so this waits
 * for 'end': `app.close()` then leaves no open connection behind. A connection that looks up but no
 * longer answers (a paused server, a dead NAT mapping) is dropped after QUIT_WAIT_MS: closing the
 * app never hangs on Redis.
 */
export async function closeClient(client: Redis | Cluster): Promise<void> {
  // Already closed for good: disconnect() would only arm ioredis's 2 s timer for a socket that is gone.
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  // A Sentinel client's failover detector keeps subscriptions on the sentinels that QUIT leaves open
  // (ioredis#1362), reconnecting every minute: disconnect() closes them together with the connection.
  if ((client.options as { failoverDetector?: boolean }).failoverDetector) {
    client.disconnect();
    return ended;
  }
  let timer: NodeJS.Timeout | undefined;
  const tooLong = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      client.disconnect();
      resolve();
    }, QUIT_WAIT_MS);
  });
  await Promise.race([
    client.quit().then(
      () => ended,
      () => client.disconnect(),
    ),
    tooLong,
  ]);
  clearTimeout(timer);
}
