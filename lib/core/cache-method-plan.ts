import type {
  CacheEvictOptions,
  CacheKeyOption,
  CacheableOptions,
  CachePutOptions,
  KeyFromResult,
} from '../options/cache-decorator-options.interface.js';
import { RedisCacheConfigError } from '../errors.js';
import { safeKey, safeValuePart } from './key-hash.js';
import { KeyTemplate } from './key-template.js';
import { normalizeTags } from './cache-tags.js';
import { stableEncode } from './stable-encoding.js';

/** Builds a logical key from a call's arguments (and, for `fromResult`, its result). */
export type KeyBuilder = ((args: readonly unknown[], result?: unknown) => string) & {
  /** Set when the key depends on one argument only, as it is (a template like `'user:{0}'`). */
  argIndex?: number;
};

/** How the decorated method delivers its value, read once from its design-time return type. */
export type ReturnMode = 'promise' | 'observable';

/**
 * Everything the decorators on one method asked for, with keys already compiled. Built at
 * decoration time (so a bad template fails when the class is defined) and attached to the wrapper.
 */
export interface CacheMethodPlan {
  readonly className: string;
  readonly methodName: string;
  readonly mode: ReturnMode;
  /**
   * False when the return type was not recorded (inferred, a union, an `import type`): the method
   * is then served as a Promise, and the bootstrap warns in case it returns an Observable.
   */
  readonly modeDeclared: boolean;
  /** `key` is undefined for the default key, which is built per concrete class (see the executor). */
  cacheable?: { options: CacheableOptions; key?: KeyBuilder };
  readonly puts: { options: CachePutOptions; key: KeyBuilder }[];
  readonly evicts: { options: CacheEvictOptions; key?: KeyBuilder }[];
  /** The executor's last compilation of this plan, for the class it was for (see `CacheOperationExecutor.compile`). */
  lastCompiled?: { executor: object; owner: object; compiled: unknown };
}

/** The default key: `${ClassName}:${methodName}:` followed by a stable encoding of the arguments. */
export function defaultKeyBuilder(className: string, methodName: string): KeyBuilder {
  const head = `${safeValuePart(className)}:${safeValuePart(methodName)}:`;
  return (args) => head + args.map((arg) => safeValuePart(stableEncode(arg))).join(':');
}

/** Compiles a `key` option (template, function or `{ fromResult }`) into a builder. */
export function keyBuilder(option: CacheKeyOption | KeyFromResult, where: string): KeyBuilder {
  if (typeof option === 'string') {
    const template = KeyTemplate.compile(option, where);
    const build: KeyBuilder = (args) => template.render(args);
    build.argIndex = template.argIndex;
    return build;
  }
  if (typeof option === 'function') return (args) => safeKey(String(option(...args)));
  const fromResult = (option as Partial<KeyFromResult> | null)?.fromResult;
  if (typeof fromResult !== 'function') {
    throw new RedisCacheConfigError(
      `${where}: key must be a template string, a function of the arguments or { fromResult }`,
    );
  }
  return (args, result) => safeKey(String(fromResult(result, ...args)));
}

/**
 * Checks a `tags` option when the class is defined: static tags must be valid tags (see
 * `normalizeTags`), anything else than strings or a function is refused.
 */
export function checkTagsOption(tags: unknown, where: string): void {
  if (tags === undefined || typeof tags === 'function') return;
  normalizeTags(tags, where);
}
