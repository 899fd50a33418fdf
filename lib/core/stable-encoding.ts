/**
 * A deterministic string for any argument value: object keys sorted, Map entries and Set members
 * sorted by their encoding, so `{a:1,b:2}` and `{b:2,a:1}` produce the same cache key.
 * Strings, numbers, booleans, bigints, null and undefined render as themselves so simple keys stay
 * readable in Redis (`UsersService:findOne:42`).
 */
export function stableEncode(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'undefined';
    default:
      return value === null ? 'null' : structural(value, new Set());
  }
}

function structural(value: unknown, seen: Set<object>): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'function' || typeof value === 'symbol') return `<${typeof value}>`;
    return JSON.stringify(value) ?? 'undefined';
  }
  if (seen.has(value)) return '<cycle>';
  seen.add(value);
  try {
    if (value instanceof Date) return `Date(${value.toISOString()})`;
    if (Array.isArray(value)) return `[${value.map((item) => structural(item, seen)).join(',')}]`;
    if (value instanceof Map) {
      const entries = [...value].map(([k, v]) => `${structural(k, seen)}=>${structural(v, seen)}`).sort();
      return `Map{${entries.join(',')}}`;
    }
    if (value instanceof Set)
      return `Set{${[...value]
        .map((item) => structural(item, seen))
        .sort()
        .join(',')}}`;
    if (ArrayBuffer.isView(value))
      return `Bytes(${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')})`;
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${structural((value as Record<string, unknown>)[key], seen)}`);
    return `{${entries.join(',')}}`;
  } finally {
    seen.delete(value);
  }
}
