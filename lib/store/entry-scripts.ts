import { LuaScript } from './lua-script.js';

// The scripts that write an entry's key read the header laid out in core/cache-entry.ts (Lua strings
// count from 1):
//   1: 0xC1 (193) | 2: kind, 18 = entry, 19 = lease placeholder, 20 = tombstone (2-4: the previous
//   format) | 3-10: token | 11-18: lease deadline (float64, Redis ms) | 19-26: the entry's stamp (its
//   fresh-until) | 27-30: load time | 31-38: epoch | 39-46: the key's horizon (float64, Redis µs) |
//   47: flags (returned mode, compression; copied as they are) | 48: tag count | then tags and payload.
//
// Times come from Redis's own clock (TIME), so every process agrees on when a lease ends and on the
// order of writes. None of them overwrites a key that holds anything else than an entry of this
// package (another type, another client's string): a key a user's input could name is never one of
// the module's own (core/bookkeeping-keys.ts), and this is the second guard.
//
// The key's horizon (the Redis time its last write or eviction landed) orders writes: one that began
// before the horizon overlapped another and leaves a tombstone rather than either value. Why, and how
// long a tombstone lives: docs/lease-protocol.md, "Writes, evictions and the horizon".

/** What a key holds, as the scripts below see it, and the helpers they share. */
const HELD = `
local function held(key)
  local head = redis.pcall('GETRANGE', key, 0, 47)
  if type(head) ~= 'string' then
    -- Another type answers WRONGTYPE: not ours. Any other error (NOPERM) is the caller's to see.
    if type(head) == 'table' and head.err and not string.find(head.err, 'WRONGTYPE', 1, true) then error(head) end
    return 'foreign', ''
  end
  if head == '' then
    if redis.call('EXISTS', key) == 1 then return 'foreign', head end
    return 'absent', head
  end
  if string.byte(head, 1) == 193 then
    local kind = string.byte(head, 2)
    if #head == 48 and kind == 18 then return 'entry', head end
    if #head == 48 and kind == 19 then return 'lease', head end
    if #head == 48 and kind == 20 then return 'tombstone', head end
    if #head >= 30 and (kind == 2 or kind == 3 or kind == 4) then return 'previous', head end
  end
  return 'foreign', head
end
local function microseconds()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end
-- The latest Redis time a write or eviction of the key landed at, as far as the key tells (0: none).
local function horizon(state, head)
  if state == 'entry' or state == 'lease' or state == 'tombstone' then return struct.unpack('>d', head, 39) end
  return 0
end
-- The entry with its horizon (when it lands) written into its header: one SET, one write to replicate.
local function landed(entry, at)
  return string.sub(entry, 1, 38) .. struct.pack('>d', at) .. string.sub(entry, 47)
end
-- A header with nothing to serve: a lease placeholder (kind 19) or a tombstone (kind 20).
local function header(kind, token, deadline, at)
  return '\\193' .. string.char(kind) .. token .. struct.pack('>d', deadline) .. string.rep('\\0', 20)
    .. struct.pack('>d', at) .. '\\0\\0'
end
-- The key's remaining PX, or px when that is longer (0 for none).
local function atLeast(key, px)
  return math.max(tonumber(px), redis.call('PTTL', key))
end
`;

/**
 * Appended by `COMPLETE_LEASE` to the key in a release message when the holder gave its lease back
 * without a value (keys never contain NUL): the key still holds nothing new, so waiters need not
 * read it again. A plain key means "read it again": the holder's value, or a write that revoked it.
 */
export const EMPTY_MARK = '\0';

/**
 * The lowest bit of a lease token's last byte: clear in every token a holder sends
 * (`newLeaseToken`), set in the key by `ACQUIRE_LEASE` when it answers HELD, so that `COMPLETE_LEASE`
 * publishes a release only when someone waits for it. Tokens are compared without it.
 */
export const WAITED_BIT = 0x01;

/** A lease token's length: header bytes 3-10 (TOKEN_LENGTH in core/cache-entry.ts). */
export const LEASE_TOKEN_BYTES = 8;

/**
 * The most entry bytes a release message carries (COMPLETE_LEASE): a waiter that receives the value
 * with the release serves it without reading the key again. Larger entries are released by key alone:
 * every instance subscribed to the lease channel receives each release (on a Cluster with classic
 * pub/sub, every node relays it), waiting there or not.
 */
export const CARRIED_VALUE_MAX_BYTES = 8 * 1024;

/** What `ACQUIRE_LEASE` answered (the first element of its reply). */
export const LeaseReply = {
  /**
   * Held by another load: the second element is how many ms its lease has left, the third the
   * holder's token (WAITED_BIT clear).
   */
  HELD: 0,
  /** Acquired: the caller loads and then completes with its token. */
  ACQUIRED: 1,
  /** The key no longer holds what the caller saw (a new value landed, or the entry went): read again. */
  CHANGED: 2,
  /** The key holds something this package did not write: it is left alone, the caller loads without writing. */
  FOREIGN: 3,
} as const;

/**
 * KEYS[1] the entry; ARGV: token (WAITED_BIT clear), lease ms, the stamp of the stale entry the
 * caller saw ('' when it saw none). A live lease answers HELD with the holder's token, and sets
 * WAITED_BIT in the key's token, so its holder's COMPLETE_LEASE publishes the release the caller
 * waits for. Run with binary replies (LuaScript.runBinary): the token is 8 raw bytes. Nothing to
 * serve there (absent, a tombstone, an expired lease, the previous format): writes a lease
 * placeholder keeping the key's horizon (`SET NX` on an absent key), with PX = lease (or the key's
 * own PX when longer). The stale entry the caller saw, with no live lease: writes the token and
 * deadline into its header (the value stays readable while it is refreshed) and keeps the key at
 * least as long as the lease.
 */
export const ACQUIRE_LEASE = new LuaScript(
  'acquire-lease',
  `
local key, token, ttl, expect = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local state, head = held(key)
if state == 'foreign' then return {3, 0} end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if state == 'entry' or state == 'lease' then
  -- Another version of the value than the caller saw (a newer one landed): read it, don't wait for its refresh.
  if state == 'entry' and string.sub(head, 19, 26) ~= expect then return {2, 0} end
  local leaseUntil = struct.unpack('>d', head, 11)
  if leaseUntil > now then
    -- The caller will wait: the holder's release is published (the token's last bit, WAITED_BIT).
    local last = string.byte(head, 10)
    if last % 2 == 0 then redis.call('SETRANGE', key, 9, string.char(last + 1)) end
    -- And the holder's token as it sent it: a release carrying a value is taken only from that lease.
    return {0, math.ceil(leaseUntil - now), string.sub(head, 3, 9) .. string.char(last - last % 2)}
  end
  if state == 'entry' then
    redis.call('SETRANGE', key, 2, token .. struct.pack('>d', now + ttl))
    if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
    return {1, 0}
  end
end
-- Nothing to serve: the caller saw a value there, which went (read again), or takes the lease.
if expect ~= '' then return {2, 0} end
local placeholder = header(19, token, now + ttl, horizon(state, head))
if state == 'absent' then
  -- The lock proper: SET NX PX with the token.
  if redis.call('SET', key, placeholder, 'NX', 'PX', ttl) then return {1, 0} end
  return {2, 0}
end
redis.call('SET', key, placeholder, 'PX', atLeast(key, ttl))
return {1, 0}
`,
  HELD,
);

/**
 * KEYS[1] the entry; ARGV: token, the new entry ('' to release without a value), its PX, the
 * channel that wakes waiters, the key as waiters know it, how to publish there (PUBLISH, or
 * SPUBLISH on a shard channel of the key's slot: store/shard-channels.ts), and the most entry bytes
 * a release may carry (CARRIED_VALUE_MAX_BYTES; 0: none). Only while the key still
 * carries the caller's token: it is replaced by the new entry, stamped with the time it landed (or,
 * without one, the placeholder removed — a tombstone if it kept a horizon — or the entry's lease
 * cleared). Otherwise a write or eviction came after the load began, and nothing is written.
 * Publishes the release when a caller may wait for it: the key carries the token with WAITED_BIT
 * set (ACQUIRE_LEASE answered HELD to someone), or no longer carries it (whoever waited for this
 * lease is not known); the key, with EMPTY_MARK only when the lease was given back without a value
 * (a revoked lease means a write landed: waiters read it). A stored value of at most ARGV[7] bytes
 * rides along: the key, NUL, the token, the entry as stored (lease-waiters.ts reads it; a waiter
 * takes it only when the token is the one ACQUIRE_LEASE named to it). A release nobody waits for is not sent:
 * on a Cluster a PUBLISH travels to every node. Returns 1 when the token matched (whatever its
 * WAITED_BIT).
 *
 * The load's value needs no horizon check: its lease was taken after the horizon, so it read the
 * source after everything that landed there, and a write landing meanwhile would have revoked it.
 */
export const COMPLETE_LEASE = new LuaScript(
  'complete-lease',
  `
local key, token, entry = KEYS[1], ARGV[1], ARGV[2]
local state, head = held(key)
-- The token as the holder sent it (its last bit clear): a waiter may have set that bit since.
local mine = (state == 'entry' or state == 'lease') and string.sub(head, 3, 9) == string.sub(token, 1, 7)
  and math.floor(string.byte(head, 10) / 2) == math.floor(string.byte(token, 8) / 2)
local waited = not mine or string.byte(head, 10) % 2 == 1
local carried = ''
if mine then
  if entry ~= '' then
    local stored = landed(entry, microseconds())
    redis.call('SET', key, stored, 'PX', ARGV[3])
    -- The waiters' value, with the token they were told holds the lease: they need not GET it.
    if waited and #stored <= (tonumber(ARGV[7]) or 0) then carried = '\\0' .. token .. stored end
  elseif state == 'lease' then
    local at = horizon(state, head)
    if at > 0 then redis.call('SET', key, header(20, string.rep('\\0', 8), 0, at), 'KEEPTTL')
    else redis.call('DEL', key) end
  else
    redis.call('SETRANGE', key, 2, string.rep('\\0', 16))
  end
end
if waited then
  local message = ARGV[5] .. carried
  if mine and entry == '' then message = message .. '\\0' end
  -- pcall: a release that cannot be published (a node without SPUBLISH) costs waiters time; failing
  -- the script after its write would have the lease given back again and again.
  if ARGV[6] == 'SPUBLISH' then redis.pcall('SPUBLISH', ARGV[4], message)
  else redis.pcall('PUBLISH', ARGV[4], message) end
end
return mine and 1 or 0
`,
  HELD,
);

/** What `WRITE_ENTRY` did. */
export const WriteReply = {
  /** The entry was written. */
  WRITTEN: 1,
  /**
   * A write or eviction landed there after this write began: which saw the newer data is unknown,
   * so the key became a tombstone (a miss) rather than keep either value.
   */
  TOMBSTONED: 2,
  /** The key holds something this package did not write: left alone, nothing written. */
  FOREIGN: 3,
} as const;

/**
 * KEYS[1] the entry; ARGV: the entry, its PX, when the write began (an invalidation epoch read before
 * the method ran: microseconds of Redis's clock), and optionally a channel and a message to publish
 * once done ('' for none).
 *
 * A `@CachePut` or `CacheService.set`: writes the entry if it began after the key's horizon (see
 * above), which revokes any load's lease there; otherwise leaves a tombstone with the horizon now.
 */
export const WRITE_ENTRY = new LuaScript(
  'write-entry',
  `
local key, entry, px, start = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local state, head = held(key)
if state == 'foreign' then return 3 end
local now = microseconds()
local reply = 1
if horizon(state, head) >= start then
  redis.call('SET', key, header(20, string.rep('\\0', 8), 0, now), 'PX', px)
  reply = 2
else
  redis.call('SET', key, landed(entry, now), 'PX', px)
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return reply
`,
  HELD,
);

/**
 * KEYS[1] the entry; ARGV: the tombstone's PX. An eviction: whatever the key held of this
 * package (an entry, a lease placeholder, nothing) becomes a tombstone with the horizon now, so a
 * write that began before the eviction and lands after it is not kept. A key of anything else is left
 * alone. Returns 1 when it held a value (or a lease placeholder), 0 otherwise.
 */
export const EVICT_ENTRY = new LuaScript(
  'evict-entry',
  `
local key = KEYS[1]
local state = held(key)
if state == 'foreign' then return 0 end
redis.call('SET', key, header(20, string.rep('\\0', 8), 0, microseconds()), 'PX', ARGV[1])
if state == 'entry' or state == 'lease' or state == 'previous' then return 1 end
return 0
`,
  HELD,
);
