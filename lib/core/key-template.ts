import { RedisCacheConfigError } from '../errors.js';
import { SAFE_KEY_PART } from '../options/cache-defaults.js';
import { safeValuePart } from './key-hash.js';
import { stableEncode } from './stable-encoding.js';

/** `{0}`, `{1.id}`, `{0.author.name}`: a positional argument, optionally followed by a property path. */
const PLACEHOLDER = /\{(\d+)((?:\.[A-Za-z_$][\w$]*)*)\}/g;

type TemplatePiece = string | { index: number; path: string[] };

/**
 * A key template compiled once at decoration time into literal pieces and placeholders, so a call
 * only walks a short array. Literal text is checked for unsafe characters here, not per call.
 */
export class KeyTemplate {
  /** The one argument the key depends on, when it is a single placeholder without a path. */
  readonly argIndex: number | undefined;

  private constructor(private readonly pieces: readonly TemplatePiece[]) {
    const holes = pieces.filter((piece) => typeof piece !== 'string');
    this.argIndex = holes.length === 1 && holes[0].path.length === 0 ? holes[0].index : undefined;
  }

  static compile(template: string, where: string): KeyTemplate {
    const pieces: TemplatePiece[] = [];
    let last = 0;
    for (const match of template.matchAll(PLACEHOLDER)) {
      if (match.index > last) pieces.push(literal(template.slice(last, match.index), template, where));
      pieces.push({ index: Number(match[1]), path: match[2] ? match[2].slice(1).split('.') : [] });
      last = match.index + match[0].length;
    }
    if (last < template.length) pieces.push(literal(template.slice(last), template, where));
    return new KeyTemplate(pieces);
  }

  render(args: readonly unknown[]): string {
    let key = '';
    for (const piece of this.pieces) {
      if (typeof piece === 'string') {
        key += piece;
        continue;
      }
      let value: unknown = args[piece.index];
      for (const property of piece.path)
        value = value == null ? undefined : (value as Record<string, unknown>)[property];
      key +=
        typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : safeValuePart(stableEncode(value));
    }
    return key;
  }
}

function literal(text: string, template: string, where: string): string {
  if (!SAFE_KEY_PART.test(text)) {
    throw new RedisCacheConfigError(
      `${where}: key template '${template}' has characters outside [A-Za-z0-9:_-.{}] in '${text}'; ` +
        `use a key function to build keys from other text`,
    );
  }
  return text;
}
