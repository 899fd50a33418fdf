import { LuaScript } from './lua-script.js';

// The bookkeeping of tag invalidation (core/cache-tags.ts explains the scheme). Two kinds of keys,
// each script touching exactly one, so every script is safe on a Cluster:
//
// - the namespace's epoch key: a counter in microseconds of its node's clock, only ever increasing;
// - a tag key per tag: "entries of this tag loaded before this epoch are invalid".
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
