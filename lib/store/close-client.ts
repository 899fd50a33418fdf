import type { Cluster, Redis } from 'ioredis';

/**
 * Closes a connection this module opened: QUIT when it is up, else a plain disconnect (which also
 * stops reconnecting). QUIT resolves on the server's reply, before the socket closes, so this waits
 * for 'end': `app.close()` then leaves no open connection behind.
 */
export async function closeClient(client: Redis | Cluster): Promise<void> {
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
  await client.quit().then(
    () => ended,
    () => client.disconnect(),
  );
}
