import type {
  CacheEvictOptions,
  CacheKeyOption,
  CacheableOptions,
  CachePutOptions,
  KeyFromResult,
} from '../options/cache-decorator-options.interface.js';
import { RedisCacheConfigError } from '../errors.js';
import { encodeNamedArgument } from './argument-encoding.js';
import { boundedKey, safeKey, stringPart } from './key-hash.js';
import { KeyTemplate, type TemplateContext } from './key-template.js';
import { normalizeTags } from './invalidation/cache-tags.js';
import type { MethodParameters } from './method-parameters.js';

/** Builds a logical key from a call's arguments (and, for `fromResult`, its result). */
export type KeyBuilder = ((args: readonly unknown[], result?: unknown) => string) & {
  /** Set when the key depends on one argument only, as it is (a template like `'user:{0}'`). */
  argIndex?: number;
};

/** How the decorated method delivers its value: a Promise (or a plain value) or an rxjs Observable. */
export type ReturnMode = 'promise' | 'observable';

/**
 * Everything the decorators on one method asked for, with keys already compiled. Built at
 * decoration time (so a bad template fails when the class is defined) and attached to the wrapper.
 */
export interface CacheMethodPlan {
  readonly className: string;
  readonly methodName: string;
  /** The method's parameters as its source names them (undefined when it cannot be read). */
  readonly parameters: MethodParameters | undefined;
  /** The method's `length`: its parameters before the first default. */
  readonly declaredLength: number;
  /** The cache the method's decorators use (their `cache` option; one per method). */
  readonly cache: string;
  /** The instance property its cache's executor is injected into (see cache-names.ts). */
  readonly executorProperty: symbol;
  /**
   * Known when the class is defined from the design-time return type TypeScript recorded, or
   * because the method is `async`. Otherwise (inferred, a union, an `import type`, plain JavaScript)
   * undefined until learnt (see `learnReturnMode`); meanwhile a call returns an Observable that can
   * also be awaited (awaitable-observable.ts).
   */
  mode: ReturnMode | undefined;
  /** True when `mode` was known when the class was defined: it is never learnt then. */
  readonly modeDeclared: boolean;
  /** Set once `mode` was learnt from what the method itself returned: no stored entry overrides it. */
  modeReturned?: boolean;
  /** `key` is undefined for the default key, which is built per concrete class (see the executor). */
  /** `batch`: a list loader's item key (undefined: the default key), see batch-plan.ts. */
  cacheable?: { options: CacheableOptions; key?: KeyBuilder; batch?: { key?: KeyBuilder } };
  readonly puts: { options: CachePutOptions; key: KeyBuilder }[];
  readonly evicts: { options: CacheEvictOptions; key?: KeyBuilder }[];
  /** The executor's last compilation of this plan, for the class it was for (see `CacheOperationExecutor.compile`). */
  lastCompiled?: { executor: object; owner: object; compiled: unknown };
}

/**
 * Learns the mode of a method whose return type was not recorded: from what its body returned in
 * this process (`'returned'`: final), or from the mode an entry it loaded was stored with
 * (`'stored'`: only while nothing better is known; the entry may have been loaded by another
 * method sharing its key). Kept on the plan, so every later call returns the same shape.
 */
export function learnReturnMode(plan: CacheMethodPlan, mode: ReturnMode, from: 'returned' | 'stored'): void {
  if (plan.modeDeclared || plan.modeReturned) return;
  if (from === 'returned') {
    plan.mode = mode;
    plan.modeReturned = true;
  } else {
    plan.mode ??= mode;
  }
}

/**
 * A key function returned something that is not a key (not a non-empty string or a finite number):
 * the call bypasses the cache rather than share the key `'undefined'` with every other such call.
 */
export class InvalidKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidKeyError';
  }
}

/**
 * The default key: `${ClassName}:${methodName}:` followed by each argument's typed encoding
 * (argument-encoding.ts), `:`-separated. Throws UnkeyableValueError for an argument that cannot name a call.
 */
export function defaultKeyBuilder(className: string, methodName: string): KeyBuilder {
  const head = `${stringPart(className)}:${stringPart(methodName)}:`;
  return (args) => {
    let key = head;
    for (let i = 0; i < args.length; i++) key += (i === 0 ? '' : ':') + encodeNamedArgument(args[i], `argument ${i}`);
    return boundedKey(key);
  };
}

/**
 * Compiles a `key` option (template, function or `{ fromResult }`) into a builder. A template is
 * checked against the method's parameters (`context`) now, when the class is defined.
 */
export function keyBuilder(
  option: CacheKeyOption | KeyFromResult,
  where: string,
  context: TemplateContext = {},
): KeyBuilder {
  if (typeof option === 'string') {
    const template = KeyTemplate.compile(option, where, context);
    const build: KeyBuilder = (args) => template.render(args);
    build.argIndex = template.argIndex;
    return build;
  }
  if (typeof option === 'function') return (args) => safeKey(keyText(option(...args)));
  const fromResult = (option as Partial<KeyFromResult> | null)?.fromResult;
  if (typeof fromResult !== 'function') {
    throw new RedisCacheConfigError(
      `${where}: key must be a template string, a function of the arguments or { fromResult }`,
    );
  }
  return (args, result) => safeKey(keyText(fromResult(result, ...args)));
}

/** What a key function returned, as a key: a non-empty string, or a finite number's text. */
function keyText(returned: unknown): string {
  if (typeof returned === 'string' && returned.length > 0) return returned;
  if (typeof returned === 'number' && Number.isFinite(returned)) return String(returned);
  const shown = typeof returned === 'string' ? "''" : typeof returned;
  throw new InvalidKeyError(`the key function returned ${shown}, not a non-empty string`);
}

/**
 * Checks a `tags` option when the class is defined: static tags must be valid tags (see
 * `normalizeTags`), anything else than strings or a function is refused.
 */
export function checkTagsOption(tags: unknown, where: string): void {
  if (tags === undefined || typeof tags === 'function') return;
  normalizeTags(tags, where);
}
