/**
 * Freezes `value` and every plain object and array in it, so a caller that mutates a value shared
 * with other callers (single-flight joiners, in-process tier hits) gets a TypeError in strict mode
 * instead of silently changing what the next caller receives. Maps, Sets, Dates and byte arrays
 * cannot be frozen by `Object.freeze` and stay as they are (their contents are frozen, though).
 */
export function deepFreeze<T>(value: T): T {
  freeze(value, new Set());
  return value;
}

function freeze(value: unknown, seen: Set<object>): void {
  if (typeof value !== 'object' || value === null || seen.has(value) || ArrayBuffer.isView(value)) return;
  seen.add(value);
  if (value instanceof Map) {
    for (const [key, item] of value) {
      freeze(key, seen);
      freeze(item, seen);
    }
    return;
  }
  if (value instanceof Set) {
    for (const item of value) freeze(item, seen);
    return;
  }
  if (value instanceof Date) return;
  for (const key of Object.keys(value)) freeze((value as Record<string, unknown>)[key], seen);
  Object.freeze(value);
}
