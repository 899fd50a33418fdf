// The connections one redis-server holds, as CLIENT LIST reports them: a spec finds an app's
// subscriber connection from the outside (to kill it) instead of reaching into the module's socket.
import type { Redis } from 'ioredis';
import { waitFor } from './load-helpers.js';

/** The CLIENT ids of the connections to `redis` that hold a subscription (channels, patterns or shard channels). */
export async function subscribedClientIds(redis: Redis): Promise<Set<string>> {
  const list = String(await redis.client('LIST'));
  const ids = new Set<string>();
  for (const line of list.split('\n')) {
    const fields = new Map(
      line
        .trim()
        .split(' ')
        .map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]),
    );
    const subscriptions = ['sub', 'psub', 'ssub'].reduce((sum, name) => sum + Number(fields.get(name) ?? 0), 0);
    if (subscriptions > 0) ids.add(fields.get('id')!);
  }
  return ids;
}

/**
 * Runs `start` (which boots an app) and returns what it returned with the CLIENT id of the one
 * subscribed connection that appeared meanwhile: that app's subscriber. Fails if there is not exactly
 * one within 5 s. Nothing else may subscribe to `redis` meanwhile (jest runs one file at a time).
 */
export async function withNewSubscriber<T>(
  redis: Redis,
  start: () => Promise<T>,
): Promise<T & { subscriberId: string }> {
  const before = await subscribedClientIds(redis);
  const started = await start();
  let added: string[] = [];
  await waitFor('the new app to subscribe', async () => {
    added = [...(await subscribedClientIds(redis))].filter((id) => !before.has(id));
    return added.length > 0;
  });
  // Any second one would be a connection this helper cannot tell apart: say so rather than guess.
  expect(added).toHaveLength(1);
  return { ...started, subscriberId: added[0] };
}
