import { RedisCacheConfigError } from '../errors.js';
import { encodeNamedArgument } from './argument-encoding.js';
import { boundedKey } from './key-hash.js';
import type { MethodParameters } from './method-parameters.js';

/** The innermost `{...}` groups of a template: placeholders, or literal text such as a hash tag. */
const BRACE_GROUP = /\{([^{}]*)\}/g;
const PATH = '((?:\\.[A-Za-z_$][\\w$]*)*)';
/** `{0}`, `{1.id}`: a positional argument, optionally followed by a property path. */
const POSITIONAL = new RegExp(`^(\\d+)${PATH}$`);
/** `{id}`, `{user.name}`: a parameter by name, optionally followed by a property path. */
const NAMED = new RegExp(`^([A-Za-z_$][\\w$]*)${PATH}$`);
/** Literal text a template may contain: a key's characters, `{}` for Cluster hash tags included. */
const LITERAL_TEXT = /^[A-Za-z0-9:_\-.{}]*$/;

interface Placeholder {
  /** As written in the template, for warnings (`{0.when}`). */
  text: string;
  index: number;
  /** The rest parameter: the placeholder stands for the arguments from `index` on, as an array. */
  rest: boolean;
  path: string[];
}
type TemplatePiece = string | Placeholder;

/** What compiling a template may check it against: the method's parameters, and whether it must use one. */
export interface TemplateContext {
  parameters?: MethodParameters;
  /** The method's `length` (parameters before the first default), when its source could not be read. */
  declaredLength?: number;
  /** A key that names no argument would be shared by every call (`@Cacheable`): refuse it. */
  requireArgument?: boolean;
}

/**
 * A key template compiled once at decoration time into literal pieces and placeholders, so a call
 * only walks a short array. Everything that would make a template name the wrong entry fails here,
 * when the class is defined: unsafe literal text, unbalanced braces, a named placeholder that is not
 * a parameter, a position past the last parameter, and (for `@Cacheable`) a template that names no
 * argument on a method that takes some.
 */
export class KeyTemplate {
  /** The one argument the key depends on, when it is a single positional placeholder without a path. */
  readonly argIndex: number | undefined;

  private constructor(private readonly pieces: readonly TemplatePiece[]) {
    const holes = pieces.filter((piece): piece is Placeholder => typeof piece !== 'string');
    this.argIndex = holes.length === 1 && holes[0].path.length === 0 && !holes[0].rest ? holes[0].index : undefined;
  }

  static compile(template: string, where: string, context: TemplateContext = {}): KeyTemplate {
    const fail = (problem: string) => new RedisCacheConfigError(`${where}: key template '${template}' ${problem}`);
    checkBalanced(template, fail);
    const pieces: TemplatePiece[] = [];
    const literal = (text: string) => {
      if (!LITERAL_TEXT.test(text)) {
        throw fail(
          `has characters outside [A-Za-z0-9:_-.{}] in '${text}'; use a key function to build keys from other text`,
        );
      }
      pieces.push(text);
    };
    let last = 0;
    for (const match of template.matchAll(BRACE_GROUP)) {
      const placeholder = placeholderOf(match[1], context, fail);
      if (!placeholder) continue; // literal text, e.g. a hash tag `{users:}`: kept with the text around it
      if (match.index > last) literal(template.slice(last, match.index));
      pieces.push(placeholder);
      last = match.index + match[0].length;
    }
    if (last < template.length) literal(template.slice(last));
    checkSeparated(pieces, fail);
    const count = context.parameters?.names.length ?? context.declaredLength ?? 0;
    if (context.requireArgument && count > 0 && pieces.every((piece) => typeof piece === 'string')) {
      throw fail(
        'names none of the arguments, so every call would share one entry; add a placeholder ' +
          `('user:{0}' or 'user:{id}'), or use a key function (() => '${template}') for a deliberate constant key`,
      );
    }
    return new KeyTemplate(pieces);
  }

  /** The logical key of a call. Throws UnkeyableValueError for an argument that cannot name it. */
  render(args: readonly unknown[]): string {
    let key = '';
    for (const piece of this.pieces) {
      if (typeof piece === 'string') {
        key += piece;
        continue;
      }
      let value: unknown = piece.rest ? args.slice(piece.index) : args[piece.index];
      for (const property of piece.path)
        value = value == null ? undefined : (value as Record<string, unknown>)[property];
      key +=
        typeof value === 'number' && Number.isSafeInteger(value)
          ? String(value)
          : encodeNamedArgument(value, piece.text);
    }
    return boundedKey(key);
  }
}

/** The placeholder a `{...}` group's text stands for, or undefined when it is literal text. */
function placeholderOf(
  text: string,
  { parameters, declaredLength }: TemplateContext,
  fail: (problem: string) => Error,
): Placeholder | undefined {
  const positional = POSITIONAL.exec(text);
  if (positional) {
    const index = Number(positional[1]);
    const path = pathOf(positional[2]);
    if (parameters) {
      const { names, restIndex } = parameters;
      if (restIndex !== undefined && index >= restIndex) {
        // Past the rest parameter every position exists (or is undefined for a short call).
        return { text: `{${text}}`, index, rest: false, path };
      }
      if (index >= names.length) throw fail(`uses {${index}}, but the method has ${names.length} parameter(s)`);
    } else if (declaredLength !== undefined && declaredLength > 0 && index >= declaredLength) {
      throw fail(`uses {${index}}, but the method has ${declaredLength} parameter(s)`);
    }
    return { text: `{${text}}`, index, rest: false, path };
  }
  const named = NAMED.exec(text);
  if (!named) return undefined;
  const name = named[1];
  if (!parameters) {
    throw fail(
      `uses the named placeholder {${text}}, but the method's parameter names cannot be read; use {0}, {1}...`,
    );
  }
  const index = parameters.names.indexOf(name);
  if (index < 0) {
    const known = parameters.names.map((each, i) => each ?? `{${i}}`).join(', ');
    throw fail(
      `uses {${text}}, but '${name}' is not a parameter of the method (${known || 'none'}); ` +
        `name a parameter, use a position ({0}), or, for a Cluster hash tag, text that is not a bare name ('{${name}:}')`,
    );
  }
  return { text: `{${text}}`, index, rest: index === parameters.restIndex, path: pathOf(named[2]) };
}

function pathOf(text: string | undefined): string[] {
  return text ? text.slice(1).split('.') : [];
}

/**
 * Two placeholders must have a `:` between them: values never contain one, so the key still tells
 * the arguments apart. With `'{0}-{1}'`, `('a-b', 'c')` and `('a', 'b-c')` would share a key.
 */
function checkSeparated(pieces: readonly TemplatePiece[], fail: (problem: string) => Error): void {
  let afterPlaceholder = false;
  let separated = true;
  for (const piece of pieces) {
    if (typeof piece === 'string') {
      if (piece.includes(':')) separated = true;
      continue;
    }
    if (afterPlaceholder && !separated) {
      throw fail("has two placeholders without a ':' between them, so different arguments could share a key");
    }
    afterPlaceholder = true;
    separated = false;
  }
}

function checkBalanced(template: string, fail: (problem: string) => Error): void {
  let depth = 0;
  for (const char of template) {
    if (char === '{') depth++;
    else if (char === '}' && --depth < 0) break;
  }
  if (depth !== 0) throw fail('has unbalanced braces');
}
