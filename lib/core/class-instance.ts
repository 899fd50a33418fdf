/**
 * The class of a result that would not survive the cache: an instance of a class of the user's comes
 * back from a hit as a plain object (msgpack keeps the fields, not the prototype), so `user.fullName()`
 * works on a miss and throws on a hit. Looked for where it costs nothing: the result itself, the first
 * item of an array and the first value of a Map (`User`, `User[]`, `Map<id, User>`); an instance deeper
 * down is not reported.
 */
export function lostClassOf(result: unknown): string | undefined {
  const sample = Array.isArray(result) ? result[0] : result instanceof Map ? result.values().next().value : result;
  return isLostInstance(sample)
    ? (Object.getPrototypeOf(sample) as { constructor?: { name?: string } }).constructor?.name || 'anonymous class'
    : undefined;
}

/** Types the codec restores, or encodes through what they say (`toJSON`): they come back as they went. */
function isLostInstance(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype === Object.prototype || prototype === null) return false;
  if (Array.isArray(value) || value instanceof Map || value instanceof Set || value instanceof RegExp) return false;
  if (value instanceof Error || ArrayBuffer.isView(value)) return false;
  return typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}
