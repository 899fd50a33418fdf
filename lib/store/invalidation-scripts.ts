import { LuaScript } from './lua-script.js';

// The bookkeeping of invalidation without touching entries (core/invalidation/cache-tags.ts and
// core/invalidation/prefix-generations.ts explain the schemes). Its keys share one Cluster slot
// (core/bookkeeping-keys.ts), so a script may touch several of them:
//
// - the namespace's epoch key: microseconds of its node's clock, only ever increasing; it holds the
//   latest epoch an invalidation took;
// - a tag key per tag: "entries of this tag loaded before this epoch are invalid";
// - the prefix markers: a sorted set ordered by text, members `prefix NUL epoch`: "entries under
//   this prefix loaded before this epoch are invalid". Ordered by text, the markers under a prefix
//   are one range, so a clear drops the narrower markers it supersedes without reading the others.
//
// Each of them may be evicted (maxmemory) or deleted by hand. Every script treats a missing one as
// "everything before now may have been invalidated": a missing tag key is recreated at the latest
// epoch, missing markers at a whole-namespace clear. So losing bookkeeping costs misses, never
// serves an entry an invalidation was meant to hide.
//
// Numbers cross between Lua and Redis as decimal strings formatted with %.0f: Lua's own tostring
// keeps 14 digits, and an epoch has 16.

const EPOCHS = `
local function now()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local function digits(number)
  return string.format('%.0f', number)
end
-- A new epoch, above every epoch taken or read before (stored, and kept pxMs).
local function bump(key, pxMs)
  local stored = tonumber(redis.call('GET', key) or '0') or 0
  local epoch = math.max(stored + 1, now() + 1)
  redis.call('SET', key, digits(epoch), 'PX', pxMs)
  return epoch
end
-- The latest epoch an invalidation took: the stored one, or (lost too) now, stored again.
local function latest(key, pxMs)
  local stored = tonumber(redis.call('GET', key) or '')
  if stored then return stored end
  local clock = now()
  redis.call('SET', key, digits(clock), 'PX', pxMs)
  return clock
end
-- Publishes on a classic channel, or by sharded pub/sub on a shard channel of this slot (the store's
-- choice: store/shard-channels.ts).
local function announce(command, channel, message)
  if command == 'SPUBLISH' then redis.call('SPUBLISH', channel, message)
  else redis.call('PUBLISH', channel, message) end
end
-- Prefix markers that are missing (never written, or lost) start as a marker of the whole namespace
-- at the latest epoch: every invalidation a lost marker held took an epoch no later than that.
-- Returns that marker's message when it wrote one, else nil.
local function ensureMarkers(epochKey, markers, epochPx, markersPx)
  if redis.call('EXISTS', markers) == 1 then return nil end
  local epoch = digits(latest(epochKey, epochPx))
  redis.call('ZADD', markers, 0, '\\0' .. epoch)
  redis.call('PEXPIRE', markers, markersPx)
  return epoch .. ' '
end
`;

/**
 * KEYS[1] the epoch key; ARGV[1] its PX. The epoch a load starts in: the larger of the stored epoch
 * and now. A missing epoch key (expired, evicted) is stored again at now, which is above every epoch
 * taken before: a tag key found missing later is recreated at it (ADMIT_TAGS), not at a later now
 * that would refuse this load's value.
 */
export const READ_EPOCH = new LuaScript(
  'read-epoch',
  `
local stored = redis.call('GET', KEYS[1])
local clock = now()
if not stored then
  redis.call('SET', KEYS[1], digits(clock), 'PX', ARGV[1])
  return digits(clock)
end
return digits(math.max(tonumber(stored) or 0, clock))
`,
  EPOCHS,
);

/**
 * KEYS[1] the epoch key, KEYS[2..] the tag keys; ARGV: the epoch key's PX, the least PX of a tag
 * key, then for each announcement the publishing command (PUBLISH or SPUBLISH), a channel and the
 * head and tail of the message announcing the new epoch (`head epoch tail`). Takes a new epoch and
 * raises every tag's "invalid before" epoch to it, keeping each tag key at least as long as asked
 * (longer if its entries made it live longer). Returns the epoch.
 */
export const INVALIDATE_TAGS = new LuaScript(
  'invalidate-tags',
  `
local epoch = digits(bump(KEYS[1], ARGV[1]))
local least = tonumber(ARGV[2])
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], epoch, 'PX', math.max(redis.call('PTTL', KEYS[i]), least))
end
for i = 3, #ARGV, 4 do announce(ARGV[i], ARGV[i + 1], ARGV[i + 2] .. ' ' .. epoch .. ' ' .. ARGV[i + 3]) end
return epoch
`,
  EPOCHS,
);

/**
 * KEYS[1] the epoch key, KEYS[2..] the tag keys; ARGV: the epoch key's PX, the PX the tag keys must
 * at least have left, the writer's load epoch. Before a tagged entry is written: keeps each tag key
 * alive at least as long as the entry (so its marker cannot expire under it) and answers 1 when no
 * tag was invalidated after the load began, 0 otherwise.
 *
 * A missing tag key may have been evicted after an invalidation, so it is recreated at the latest
 * epoch any invalidation took (the epoch key; if that is missing too, now, which it is then set to):
 * entries loaded before that count as invalidated. A value that is not a number counts as invalid too.
 */
export const ADMIT_TAGS = new LuaScript(
  'admit-tags',
  `
local floor = digits(latest(KEYS[1], ARGV[1]))
local px, loadEpoch = tonumber(ARGV[2]), tonumber(ARGV[3])
local admitted = 1
for i = 2, #KEYS do
  local marker = redis.call('GET', KEYS[i])
  if not marker then
    marker = floor
    redis.call('SET', KEYS[i], floor, 'PX', px)
  elseif redis.call('PTTL', KEYS[i]) < px then
    redis.call('PEXPIRE', KEYS[i], px)
  end
  if (tonumber(marker) or math.huge) > loadEpoch then admitted = 0 end
end
return admitted
`,
  EPOCHS,
);

/**
 * KEYS[1] the epoch key, KEYS[2] the prefix markers; ARGV: the epoch key's PX, the prefix, the
 * markers' PX (also how long a marker matters), how many markers are kept at most, and the
 * publishing command (PUBLISH or SPUBLISH) and channel announcing markers.
 *
 * Takes a new epoch and marks the prefix with it, dropping the markers under the prefix (all older:
 * this one supersedes them). Missing markers first become a marker of the whole namespace at the
 * latest epoch (see ensureMarkers), announced too. A set that outgrows its cap once the markers too
 * old to matter are dropped becomes one marker of the whole namespace at the new epoch: wider, so
 * never less safe. Publishes `epoch prefix` (the prefix it marked, `''` for all) and returns it.
 */
export const MARK_PREFIX = new LuaScript(
  'mark-prefix',
  `
local markers = KEYS[2]
local created = ensureMarkers(KEYS[1], markers, ARGV[1], ARGV[3])
if created then announce(ARGV[5], ARGV[6], created) end
local epoch = bump(KEYS[1], ARGV[1])
local prefix = ARGV[2]
redis.call('ZREMRANGEBYLEX', markers, '[' .. prefix, '[' .. prefix .. '\\255')
redis.call('ZADD', markers, 0, prefix .. '\\0' .. digits(epoch))
local cap = tonumber(ARGV[4])
if redis.call('ZCARD', markers) > cap then
  local oldest = epoch - tonumber(ARGV[3]) * 1000
  for _, member in ipairs(redis.call('ZRANGE', markers, 0, -1)) do
    local at = string.find(member, '\\0', 1, true)
    if (tonumber(string.sub(member, at + 1)) or 0) < oldest then redis.call('ZREM', markers, member) end
  end
  if redis.call('ZCARD', markers) > cap then
    prefix = ''
    redis.call('DEL', markers)
    redis.call('ZADD', markers, 0, '\\0' .. digits(epoch))
  end
end
redis.call('PEXPIRE', markers, ARGV[3])
local message = digits(epoch) .. ' ' .. prefix
announce(ARGV[5], ARGV[6], message)
return message
`,
  EPOCHS,
);

/**
 * KEYS[1] the epoch key, KEYS[2] the prefix markers; ARGV: the epoch key's PX, the markers' PX, the
 * publishing command (PUBLISH or SPUBLISH) and channel announcing markers. Returns Redis's clock
 * (µs) and every marker (`prefix NUL epoch`), and keeps them another PX. Missing markers first
 * become a marker of the whole namespace at the latest epoch (see ensureMarkers), announced:
 * entries loaded before that epoch count as invalidated.
 */
export const READ_PREFIXES = new LuaScript(
  'read-prefixes',
  `
local markers = KEYS[2]
local clock = digits(now())
local created = ensureMarkers(KEYS[1], markers, ARGV[1], ARGV[2])
if created then announce(ARGV[3], ARGV[4], created) end
redis.call('PEXPIRE', markers, ARGV[2])
local found = redis.call('ZRANGE', markers, 0, -1)
table.insert(found, 1, clock)
return found
`,
  EPOCHS,
);

/**
 * PUBLISH ARGV[2] on channel ARGV[1], sent to the node of KEYS[1] (not touched). A plain PUBLISH
 * has no key, so a Cluster client sends it to any node, maybe one that is down; this one goes where
 * the write it announces went, and after it on that connection.
 */
export const PUBLISH_VIA = new LuaScript('publish-via', `return redis.call('PUBLISH', ARGV[1], ARGV[2])`);

/**
 * SPUBLISH ARGV[2] on shard channel ARGV[1] (of KEYS[1]'s slot), sent to the node of KEYS[1] (not
 * touched): the route the announcements of the scripts on that key take, redirections (ASK, while
 * the slot moves) included. A heartbeat sent this way is heard only where they are.
 */
export const SPUBLISH_VIA = new LuaScript('spublish-via', `return redis.call('SPUBLISH', ARGV[1], ARGV[2])`);
