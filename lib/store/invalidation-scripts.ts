import { LuaScript } from './lua-script.js';

// The bookkeeping of invalidation without touching entries (core/cache-tags.ts and
// core/prefix-generations.ts explain the schemes). Three kinds of keys, each script touching exactly
// one, so every script is safe on a Cluster:
//
// - the namespace's epoch key: a counter in microseconds of its node's clock, only ever increasing;
// - a tag key per tag: "entries of this tag loaded before this epoch are invalid";
// - the namespace's prefix-marker hash: prefix -> "entries under it loaded before this epoch are invalid".
//
// Numbers cross between Lua and Redis as decimal strings formatted with %.0f: Lua's own tostring
// keeps 14 digits, and an epoch has 16.

/** KEYS[1] the epoch key. The epoch a load starts in: the larger of the stored epoch and now. */
export const READ_EPOCH = new LuaScript(
  'read-epoch',
  `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local stored = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
return string.format('%.0f', math.max(stored, now))
`,
);

/**
 * KEYS[1] the epoch key; ARGV[1] its PX. A new epoch, above every epoch READ_EPOCH has answered so
 * far (so loads that started before it are told apart from loads that start after it), stored.
 */
export const BUMP_EPOCH = new LuaScript(
  'bump-epoch',
  `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local stored = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local epoch = string.format('%.0f', math.max(stored + 1, now + 1))
redis.call('SET', KEYS[1], epoch, 'PX', ARGV[1])
return epoch
`,
);

/**
 * KEYS[1] a tag key; ARGV: the invalidation's epoch, the least PX to keep it. Raises the tag's
 * "invalid before" epoch (never lowers it) and keeps the key at least that long (longer if entries
 * made it live longer).
 */
export const MARK_TAG = new LuaScript(
  'mark-tag',
  `
local current = tonumber(redis.call('GET', KEYS[1]) or '-1') or -1
local px = tonumber(ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if current >= tonumber(ARGV[1]) then
  if ttl < px then redis.call('PEXPIRE', KEYS[1], px) end
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', math.max(ttl, px))
return 1
`,
);

/**
 * KEYS[1] a tag key; ARGV: the PX the key must at least have left, the writer's load epoch. Before a
 * tagged entry is written: keeps the tag key alive at least as long as the entry (so its marker
 * cannot expire under it), creates it at the writer's epoch when absent, and answers the tag's epoch
 * (above the writer's: the tag was invalidated while the value was loading).
 */
export const TOUCH_TAG = new LuaScript(
  'touch-tag',
  `
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
  return ARGV[2]
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return current
`,
);

/**
 * KEYS[1] the namespace's prefix-marker hash; ARGV: the prefix, the clear's epoch, the epoch before
 * which markers are dropped, the hash's PX, the channel and message announcing it. Raises the
 * prefix's marker ("entries under it loaded before this epoch are invalid"), drops markers older
 * than every entry they could apply to, and publishes the marker for every instance's table.
 */
export const MARK_PREFIX = new LuaScript(
  'mark-prefix',
  `
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
if current < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local oldest = tonumber(ARGV[3])
local markers = redis.call('HGETALL', KEYS[1])
for i = 1, #markers, 2 do
  if (tonumber(markers[i + 1]) or 0) < oldest then redis.call('HDEL', KEYS[1], markers[i]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`,
);

/**
 * PUBLISH ARGV[2] on channel ARGV[1], sent to the node of KEYS[1] (not touched). A plain PUBLISH
 * has no key, so a Cluster client sends it to any node, maybe one that is down; this one goes where
 * the write it announces went, and after it on that connection.
 */
export const PUBLISH_VIA = new LuaScript('publish-via', `return redis.call('PUBLISH', ARGV[1], ARGV[2])`);
