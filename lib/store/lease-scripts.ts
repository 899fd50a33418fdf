import { LuaScript } from './lua-script.js';

// Both scripts read the header laid out in core/cache-entry.ts (Lua strings count from 1):
//   1: 0xC1 (193) | 2: kind, 2 = entry, 4 = tagged entry, 3 = lease placeholder | 3-10: token | 11-18: lease deadline
//   (float64, Redis clock) | 19-26: the entry's stamp (its fresh-until) | 27-30: load time | 31-: payload.
// Times come from Redis's own clock (TIME), so every process agrees on when a lease ends.

/**
 * Appended by `COMPLETE_LEASE` to the key in a release message when the holder gave its lease back
 * without a value (keys never contain NUL): the key still holds nothing new, so waiters need not
 * read it again. A plain key means "read it again": the holder's value, or a write that revoked it.
 */
export const EMPTY_MARK = '\0';

/** What `ACQUIRE_LEASE` answered (the first element of its reply). */
export const LeaseReply = {
  /** Held by another load: the second element is how many ms its lease has left. */
  HELD: 0,
  /** Acquired: the caller loads and then completes with its token. */
  ACQUIRED: 1,
  /** The key no longer holds what the caller saw (a new value landed, or the entry went): read again. */
  CHANGED: 2,
} as const;

/**
 * KEYS[1] the entry; ARGV: token, lease ms, the stamp of the stale entry the caller saw ('' when it
 * saw none). Absent key: writes a lease placeholder, `SET NX`-like, with PX = lease. The stale entry
 * the caller saw, with no live lease: writes the token and deadline into its header (the value stays
 * readable while it is refreshed) and keeps the key at least as long as the lease.
 */
export const ACQUIRE_LEASE = new LuaScript(
  'acquire-lease',
  `
local key, token, ttl, expect = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
-- pcall: a key of another type (someone else's hash) answers WRONGTYPE; it is replaced like garbage.
local head = redis.pcall('GETRANGE', key, 0, 29)
local ours = type(head) == 'string' and #head == 30 and string.byte(head, 1) == 193
if not ours then
  if expect ~= '' then return {2, 0} end
  local placeholder = '\\193\\3' .. token .. struct.pack('>d', now + ttl) .. string.rep('\\0', 12)
  if head == '' then
    -- Absent: the lock proper, SET NX PX with the token. (An empty string held there: read again.)
    if redis.call('SET', key, placeholder, 'NX', 'PX', ttl) then return {1, 0} end
    return {2, 0}
  end
  -- Not written by this package (readers delete that anyway): take it over.
  redis.call('SET', key, placeholder, 'PX', ttl)
  return {1, 0}
end
local kind = string.byte(head, 2)
local isEntry = kind == 2 or kind == 4
-- Another version of the value than the caller saw (a newer one landed): read it, don't wait for its refresh.
if isEntry and string.sub(head, 19, 26) ~= expect then return {2, 0} end
local leaseUntil = struct.unpack('>d', head, 11)
if leaseUntil > now then return {0, math.ceil(leaseUntil - now)} end
if not isEntry then return {2, 0} end
redis.call('SETRANGE', key, 2, token .. struct.pack('>d', now + ttl))
if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
return {1, 0}
`,
);

/**
 * KEYS[1] the entry; ARGV: token, the new entry ('' to release without a value), its PX, the
 * channel that wakes waiters, and the key as waiters know it. Only while the key still carries the
 * caller's token: it is replaced by the new entry (or, without one, the placeholder deleted / the
 * entry's lease cleared). Otherwise a write or eviction came after the load began, and nothing is
 * written. Publishes in every case: the key, with EMPTY_MARK only when the lease was given back
 * without a value (a revoked lease means a write landed: waiters read it). Returns 1 when the token matched.
 */
export const COMPLETE_LEASE = new LuaScript(
  'complete-lease',
  `
local key, token, entry = KEYS[1], ARGV[1], ARGV[2]
local head = redis.pcall('GETRANGE', key, 0, 9)
local held = type(head) == 'string' and #head == 10 and string.byte(head, 1) == 193 and string.sub(head, 3, 10) == token
if held then
  if entry ~= '' then
    redis.call('SET', key, entry, 'PX', ARGV[3])
  elseif string.byte(head, 2) == 3 then
    redis.call('DEL', key)
  else
    redis.call('SETRANGE', key, 2, string.rep('\\0', 16))
  end
end
local message = ARGV[5]
if held and entry == '' then message = message .. '\\0' end
redis.call('PUBLISH', ARGV[4], message)
return held and 1 or 0
`,
);
