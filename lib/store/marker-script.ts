import { LuaScript } from './lua-script.js';

/**
 * KEYS[1] a marker (the L1 presence marker: core/l1/l1-presence.ts); ARGV[1] its PX; ARGV[2] a new
 * generation. Renews the marker and returns the generation it holds, or, when it is absent (evicted,
 * deleted, expired), writes it with the new generation and returns that. One key several instances
 * renew: an instance that finds another generation than the one it last saw knows the marker was
 * gone in between, even when another instance wrote it again first.
 */
export const RENEW_MARKER = new LuaScript(
  'renew-marker',
  `
local generation = redis.call('GET', KEYS[1])
if generation then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return generation
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
return ARGV[2]
`,
);
