import calculateSlot from 'cluster-key-slot';
import { BookkeepingKeys } from '../../lib/core/bookkeeping-keys.js';
import { ShardChannels } from '../../lib/store/shard-channels.js';
import { slotTags } from '../../lib/store/slot-tags.js';

describe('slotTags', () => {
  it('gives every one of the 16,384 slots a tag that hashes to it', () => {
    const tags = slotTags();
    expect(tags).toHaveLength(16_384);
    tags.forEach((tag, slot) => expect(calculateSlot(tag)).toBe(slot));
    expect(Math.max(...tags.map((tag) => tag.length))).toBeLessThanOrEqual(4);
    expect(slotTags()).toBe(tags);
  });
});

describe('ShardChannels', () => {
  const keysOf = (namespace: string, keyPrefix = '') => new BookkeepingKeys(namespace, { keyPrefix, db: 0 });

  function sharded(namespace: string, keyPrefix = '') {
    const keys = keysOf(namespace, keyPrefix);
    const shards = new ShardChannels(keyPrefix);
    shards.add(keys.prefixChannel, keys.shardChannel('prefixes'), keys.epoch);
    shards.addPerSlot(keys.leaseChannel, `${namespace}:@`, 'lease');
    return { keys, shards };
  }

  it('routes every channel classic until something is added', () => {
    const keys = keysOf('cache');
    const shards = new ShardChannels();
    expect(shards.size).toBe(0);
    expect(shards.route(keys.prefixChannel)).toEqual(['PUBLISH', keys.prefixChannel]);
    expect(shards.routeKeyOf(keys.prefixChannel)).toBeUndefined();
    expect(shards.routeFor(keys.leaseChannel, 'cache:user:1')).toEqual(['PUBLISH', keys.leaseChannel]);
    expect(shards.channelOf(keys.prefixChannel)).toBeUndefined();
    shards.add(keys.prefixChannel, keys.shardChannel('prefixes'), keys.epoch);
    shards.addPerSlot(keys.leaseChannel, 'cache:@', 'lease');
    expect(shards.size).toBe(2);
    expect(shards.routeKeyOf(keys.prefixChannel)).toBe(keys.epoch);
    expect(shards.route(keys.l1Channel)).toEqual(['PUBLISH', keys.l1Channel]);
  });

  it.each([
    ['no keyPrefix', 'cache', ''],
    ['a keyPrefix', 'cache', 'app1:'],
    ['a namespace with a hash tag', '{cache}', ''],
    ['a keyPrefix with a hash tag', 'cache', '{app1}:'],
  ])("puts an announced channel on the namespace's slot, a key's release on the key's slot (%s)", (_, ns, prefix) => {
    const { keys, shards } = sharded(ns, prefix);
    // Scripts get the name as Redis knows it; ioredis is given it like a key and prefixes it.
    const [command, published] = shards.route(keys.prefixChannel);
    expect(command).toBe('SPUBLISH');
    expect(published).toBe(prefix + shards.shardOf(keys.prefixChannel)!);
    expect(calculateSlot(published)).toBe(calculateSlot(prefix + keys.epoch));
    expect(shards.channelOf(published)).toBe(keys.prefixChannel);
    for (const key of [`${ns}:user:1`, `${ns}:user:2`, `${ns}:{user:3}:profile`, `${ns}:#3f2a`]) {
      const [releaseCommand, release] = shards.routeFor(keys.leaseChannel, key);
      expect(releaseCommand).toBe('SPUBLISH');
      expect(release).toBe(prefix + shards.shardFor(keys.leaseChannel, key)!);
      expect(calculateSlot(release)).toBe(calculateSlot(prefix + key));
      // What a subscriber receives it on belongs to the lease channel; ACL patterns `&${prefix}${ns}:*` cover it.
      expect(shards.channelOf(release)).toBe(keys.leaseChannel);
      expect(release.startsWith(`${prefix}${ns}:@`)).toBe(true);
    }
    // Other channels stay classic.
    expect(shards.route(keys.l1Channel)).toEqual(['PUBLISH', keys.l1Channel]);
    expect(shards.routeFor(keys.l1Channel, `${ns}:user:1`)).toEqual(['PUBLISH', keys.l1Channel]);
  });

  it('belongs nothing else to a channel: other namespaces, other prefixes, names made to look alike', () => {
    const { keys, shards } = sharded('cache');
    const release = shards.routeFor(keys.leaseChannel, 'cache:user:1')[1];
    expect(shards.channelOf(release)).toBe(keys.leaseChannel);
    for (const received of [
      release.replace('cache:', 'other:'),
      `app1:${release}`,
      'cache:@{}lease',
      'cache:@{a}b}lease',
      'cache:@{a{b}lease',
      'cache:@lease',
      'cache:@{ab}leases',
      keys.leaseChannel,
      '',
    ]) {
      expect(shards.channelOf(received)).toBeUndefined();
    }
  });

  it('keeps a key classic when an open brace in the keyPrefix keeps the tag from deciding its slot', () => {
    const { keys, shards } = sharded('cache', 'app{1:');
    const key = 'cache:user:1';
    expect(shards.shardFor(keys.leaseChannel, key)).toBeUndefined();
    expect(shards.routeFor(keys.leaseChannel, key)).toEqual(['PUBLISH', keys.leaseChannel]);
  });
});
