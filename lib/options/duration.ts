/**
 * Duration parsing shared by every option that takes a time.
 *
 * A bare number means seconds for how long something is kept (`ttl`, `nullTtl`, ...) and
 * milliseconds for how long something is waited for (`commandTimeout`, ...): the caller says which
 * with `bareNumberUnit`. Strings always carry their unit: `'1500ms'`, `'90s'`, `'5m'`, `'1h'`, `'7d'`.
 */

/** A duration string with a unit: `'500ms'`, `'90s'`, `'5m'`, `'1h'`, `'7d'` (decimals allowed: `'1.5h'`). */
export type DurationString = `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;

/** True when `value` is a string that parses as a duration (used to tell durations from profile names). */
export function isDurationString(value: string): boolean {
  return DURATION_PATTERN.test(value);
}

/**
 * Milliseconds for a number or duration string, or `undefined` when it is not one
 * (the caller turns that into an error naming the option).
 */
export function toMilliseconds(value: unknown, bareNumberUnit: 's' | 'ms'): number | undefined {
  if (typeof value === 'number') return bareNumberUnit === 's' ? value * 1_000 : value;
  if (typeof value !== 'string') return undefined;
  const match = DURATION_PATTERN.exec(value);
  if (!match) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** A duration that must be positive and finite; `undefined` when it is not. */
export function toPositiveMilliseconds(value: unknown, bareNumberUnit: 's' | 'ms'): number | undefined {
  const ms = toMilliseconds(value, bareNumberUnit);
  return ms !== undefined && Number.isFinite(ms) && ms > 0 ? ms : undefined;
}
