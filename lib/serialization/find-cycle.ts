/**
 * Finds a circular reference in a value before it is packed.
 *
 * msgpackr (without `structuredClone`) has no cycle check: it recurses until the stack overflows,
 * writing the cycle's contents once per level on the way down. For a cycle through a wide object
 * that is seconds of CPU and gigabytes of buffer before the `RangeError` arrives, so cycles are
 * looked for first. The walk follows what msgpackr will write: own and inherited enumerable
 * properties of objects, array items, Map keys and values, Set values. It does not descend into
 * typed arrays or objects with a `toJSON()` method (Date, Buffer, ORM entities...), because msgpackr
 * encodes those through their extension or `toJSON()`, not their fields.
 */

/** One step of the path to a cycle, outermost first. */
type PathSegment = string | number | { mapKey: unknown } | { mapValue: unknown } | typeof SET_ENTRY;

const SET_ENTRY = Symbol('set entry');

/**
 * Returns a readable path (`$.author.posts[0].author`) to the first reference that points back to
 * one of its own ancestors, or `undefined` when the value has no cycle. Shared references that are
 * not cycles (the same Date twice, a diamond) are fine and not reported.
 *
 * Deeply nested values can make the recursion overflow the stack; the `RangeError` is left to the
 * caller, which reports it as an unencodable value like msgpackr would.
 *
 * @example
 * const a: Record<string, unknown> = { id: 1 };
 * a.self = a;
 * findCycle(a); // '$.self'
 * findCycle({ x: [1, 2] }); // undefined
 */
export function findCycle(root: object): string | undefined {
  const segments = visit(root, []);
  return segments && formatPath(segments.reverse());
}

/**
 * Depth-first walk keeping the current path of objects in `ancestors`. A plain array beats a Set
 * here: real cache values are a handful of levels deep, and `includes` over a few entries is
 * cheaper than hashing every object. The path to a cycle is built only while unwinding from a hit,
 * in reverse, so the walk allocates nothing for values without one.
 */
function visit(node: object, ancestors: object[]): PathSegment[] | undefined {
  if (ancestors.includes(node)) return [];
  ancestors.push(node);
  const found = visitChildren(node, ancestors);
  ancestors.pop();
  return found;
}

function visitChildren(node: object, ancestors: object[]): PathSegment[] | undefined {
  let found: PathSegment[] | undefined;
  // Plain objects first: they are most of what gets cached, and msgpackr ignores their toJSON too.
  if (node.constructor === Object) return visitProperties(node, ancestors);
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const child: unknown = node[i];
      if (isObject(child) && (found = visit(child, ancestors))) return appended(found, i);
    }
  } else if (node instanceof Map) {
    for (const [key, value] of node) {
      if (isObject(key) && (found = visit(key, ancestors))) return appended(found, { mapKey: key });
      if (isObject(value) && (found = visit(value, ancestors))) {
        return appended(found, { mapValue: key });
      }
    }
  } else if (node instanceof Set) {
    for (const value of node) {
      if (isObject(value) && (found = visit(value, ancestors))) return appended(found, SET_ENTRY);
    }
  } else if (!isOpaque(node)) {
    return visitProperties(node, ancestors);
  }
  return undefined;
}

/** `for...in`, like msgpackr's record writer: inherited enumerable properties count too. */
function visitProperties(node: object, ancestors: object[]): PathSegment[] | undefined {
  let found: PathSegment[] | undefined;
  for (const key in node) {
    const child: unknown = (node as Record<string, unknown>)[key];
    if (isObject(child) && (found = visit(child, ancestors))) return appended(found, key);
  }
  return undefined;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

/** Objects msgpackr writes as a unit: typed arrays and Buffers, anything with `toJSON()`. */
function isOpaque(node: object): boolean {
  return ArrayBuffer.isView(node) || typeof (node as { toJSON?: unknown }).toJSON === 'function';
}

function appended(segments: PathSegment[], segment: PathSegment): PathSegment[] {
  segments.push(segment);
  return segments;
}

function formatPath(segments: PathSegment[]): string {
  let path = '$';
  for (const segment of segments) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else if (typeof segment === 'string') path += `.${segment}`;
    else if (segment === SET_ENTRY) path += '.<Set entry>';
    else if ('mapKey' in segment) path += `.<Map key ${describeKey(segment.mapKey)}>`;
    else path += `.get(${describeKey(segment.mapValue)})`;
  }
  return path;
}

function describeKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'object' && key !== null) return key.constructor?.name ?? 'object';
  return String(key);
}
