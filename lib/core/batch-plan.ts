import { RedisCacheConfigError } from '../errors.js';
import type { CacheableOptions } from '../options/cache-decorator-options.interface.js';
import { keyBuilder, type CacheMethodPlan, type KeyBuilder } from './cache-method-plan.js';

/**
 * Options a batch cannot honour: its ids are read in one MGET and loaded in one call, without leases,
 * stale windows or the in-process tier (see the README, "Batch reads").
 */
const NOT_FOR_BATCHES = [
  'key',
  'lock',
  'lockTtl',
  'lockWait',
  'earlyRefresh',
  'staleWhileRevalidate',
  'grace',
  'timeout',
] as const;

/**
 * Checks `@Cacheable({ batch })` when the class is defined and compiles the key of one item: a
 * template where `{0}` is the item (`'user:{0}'`, `'post:{0.id}'`), or a function of the item.
 * Undefined key: the default key, built per concrete class by the executor.
 */
export function compileBatch(options: CacheableOptions, plan: CacheMethodPlan, where: string): { key?: KeyBuilder } {
  const { batch } = options;
  const fail = (problem: string) => new RedisCacheConfigError(`${where}: batch ${problem}`);
  if (batch !== true && (typeof batch !== 'object' || batch === null)) {
    throw fail("must be true or { key } (the key of one id: 'user:{0}')");
  }
  for (const option of NOT_FOR_BATCHES) {
    if (options[option] !== undefined) {
      throw fail(
        option === 'key'
          ? "reads take the key of one id in batch.key ({ batch: { key: 'user:{0}' } }), not key"
          : `reads do not support ${option}: the ids are read in one round trip and loaded in one call`,
      );
    }
  }
  if (options.l1 !== undefined && options.l1 !== false) throw fail('reads do not use the in-process tier (l1)');
  if (plan.puts.length > 0 || plan.evicts.length > 0) {
    throw fail('methods take no @CachePut or @CacheEvict: write or evict the ids in another method');
  }
  const { parameters, declaredLength } = plan;
  if (parameters?.restIndex === 0 || (parameters ? parameters.names.length === 0 : declaredLength === 0)) {
    throw fail('methods take the array of ids as their first parameter (findUsers(ids: number[]))');
  }
  const key = batch === true ? undefined : batch.key;
  if (key === undefined) return {};
  if (typeof key === 'function') return { key: keyBuilder(key, where) };
  if (typeof key !== 'string') throw fail('key must be a template string or a function of one id');
  checkItemPlaceholders(key, fail);
  // Rendered for one item at a time: `{0}` is the item, nothing else exists.
  return { key: keyBuilder(key, where, { declaredLength: 1 }) };
}

/**
 * A batch key is rendered for one id at a time: `{0}` (or `{0.path}`) is the id, and no other
 * argument exists for it. Checked here for a message that says so; the rest (text, braces) is
 * KeyTemplate's to check.
 */
function checkItemPlaceholders(template: string, fail: (problem: string) => Error): void {
  const rule = `{0} is the id ({0.id} a property of it); other arguments cannot be referenced`;
  let namesId = false;
  for (const [, text] of template.matchAll(/\{([^{}]*)\}/g)) {
    if (/^0(\.|$)/.test(text)) namesId = true;
    else if (/^\d/.test(text)) throw fail(`key '${template}' uses {${text}}, but it is rendered for each id: ${rule}`);
    else if (/^[A-Za-z_$][\w$]*(\.|$)/.test(text)) {
      throw fail(
        `key '${template}' uses the named placeholder {${text}}, but it is rendered for each id: ${rule}; ` +
          `for a Cluster hash tag, write text that is not a bare name ('{${text}:}')`,
      );
    }
  }
  if (!namesId) throw fail(`key '${template}' names no id, so every id would share one entry: ${rule}`);
}
