/** What a method's source says of its parameters, for checking and resolving key templates. */
export interface MethodParameters {
  /** Each parameter's name, in order; undefined for a destructured one (`{ id }`, `[a, b]`). */
  readonly names: readonly (string | undefined)[];
  /** The index of a rest parameter (`...ids`), if the last one is. */
  readonly restIndex: number | undefined;
}

/**
 * The parameters of `method`, read from its source text (`Function.prototype.toString`, which the
 * compiled JavaScript keeps: `async findOne(id, options = {}) {`). Undefined when the text cannot be
 * read that way (a native or bound function): templates then cannot use named placeholders.
 */
export function methodParameters(method: (...args: never[]) => unknown): MethodParameters | undefined {
  let source: string;
  try {
    source = Function.prototype.toString.call(method);
  } catch {
    return undefined;
  }
  if (source.includes('[native code]')) return undefined;
  const open = source.indexOf('(');
  if (open < 0) return undefined;
  const list = parameterList(source, open);
  if (list === undefined) return undefined;
  const parts = splitTopLevel(list)
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  const names: (string | undefined)[] = [];
  let restIndex: number | undefined;
  parts.forEach((part, index) => {
    let text = part;
    if (text.startsWith('...')) {
      restIndex = index;
      text = text.slice(3).trim();
    }
    const name = /^([A-Za-z_$][\w$]*)/.exec(text)?.[1];
    names.push(name);
  });
  return { names, restIndex };
}

/** The text between the `(` at `open` and its matching `)`, skipping strings, comments and nesting. */
function parameterList(source: string, open: number): string | undefined {
  let depth = 0;
  for (let i = open; i < source.length; i++) {
    const char = source[i];
    if (char === '"' || char === "'" || char === '`') {
      i = skipString(source, i);
      continue;
    }
    if (char === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      if (end < 0) return undefined;
      i = end + 1;
      continue;
    }
    if (char === '/' && source[i + 1] === '/') {
      const end = source.indexOf('\n', i);
      if (end < 0) return undefined;
      i = end;
      continue;
    }
    if (char === '(' || char === '[' || char === '{') depth++;
    else if (char === ')' || char === ']' || char === '}') {
      depth--;
      if (depth === 0) return char === ')' ? stripComments(source.slice(open + 1, i)) : undefined;
    }
  }
  return undefined;
}

/** The index of the quote that closes the string starting at `start`. */
function skipString(source: string, start: number): number {
  const quote = source[start];
  for (let i = start + 1; i < source.length; i++) {
    if (source[i] === '\\') i++;
    else if (source[i] === quote) return i;
  }
  return source.length;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
}

/** Splits a parameter list at the commas that are not inside brackets, braces, parentheses or strings. */
function splitTopLevel(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const char = list[i];
    if (char === '"' || char === "'" || char === '`') i = skipString(list, i);
    else if (char === '(' || char === '[' || char === '{') depth++;
    else if (char === ')' || char === ']' || char === '}') depth--;
    else if (char === ',' && depth === 0) {
      parts.push(list.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(list.slice(start));
  return parts;
}
