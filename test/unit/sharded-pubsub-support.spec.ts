import { Cluster } from 'ioredis';
import { shardedPubSubRefusal } from '../../lib/store/sharded-pubsub-support.js';

describe('shardedPubSubRefusal', () => {
  const options = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true }).options;

  it('takes this ioredis on a Redis 7 or later, or one whose version is not known yet', () => {
    expect('shardedSubscribers' in options).toBe(true);
    expect(shardedPubSubRefusal(options, 7)).toBeUndefined();
    expect(shardedPubSubRefusal(options, 8)).toBeUndefined();
    expect(shardedPubSubRefusal(options, undefined)).toBeUndefined();
  });

  it('refuses a Redis before 7, saying so and what to set on every instance', () => {
    expect(shardedPubSubRefusal(options, 6)).toBe(
      'Redis 6 has no sharded pub/sub (7+): set shardedPubSub: false (on every instance sharing the namespace: they must agree)',
    );
  });

  it('refuses an ioredis before 5.6, whose Cluster options have no shardedSubscribers', () => {
    const { shardedSubscribers: _, ...before56 } = options;
    expect(shardedPubSubRefusal(before56, 7)).toMatch(/^this ioredis has no sharded subscribers \(5\.6\+\): /);
  });
});
