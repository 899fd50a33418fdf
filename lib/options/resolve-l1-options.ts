import type { L1Settings } from '../core/l1/l1-slot.js';
import { RedisCacheConfigError } from '../errors.js';
import { toPositiveMilliseconds } from './duration.js';

/**
 * Which in-process memory a read-through uses: none, the module's (`ttlMs` when it keeps values
 * longer or shorter than the module says), or one of its own.
 */
export type L1Choice = { kind: 'shared'; ttlMs?: number } | { kind: 'own'; settings: L1Settings } | undefined;

/** The module's `l1` option; problems are pushed to `problems` (the module reports them all at once). */
export function resolveModuleL1(option: unknown, problems: string[]): L1Settings | undefined {
  if (option === undefined) return undefined;
  if (typeof option !== 'object' || option === null) {
    problems.push(`l1 must be { max, ttl }, e.g. { max: 10_000, ttl: '30s' } (got ${String(option)})`);
    return undefined;
  }
  const { max, ttl } = option as { max?: unknown; ttl?: unknown };
  const maxProblem = checkMax(max, 'l1.max');
  if (maxProblem) problems.push(maxProblem);
  const ttlMs = toPositiveMilliseconds(ttl, 's');
  if (ttlMs === undefined) problems.push(ttlProblem('l1.ttl', ttl));
  return maxProblem || ttlMs === undefined ? undefined : { max: max as number, ttlMs };
}

/**
 * A method's or a call's `l1` against the module's: throws a RedisCacheConfigError naming `where`
 * when it asks for what cannot be (the module's memory when there is none, an own memory where only
 * the module's can be used).
 */
export function resolveL1Choice(
  option: unknown,
  moduleL1: L1Settings | undefined,
  where: string,
  { ownAllowed }: { ownAllowed: boolean },
): L1Choice {
  if (option === undefined) return moduleL1 ? { kind: 'shared' } : undefined;
  if (option === false) return undefined;
  const noModuleL1 = () =>
    new RedisCacheConfigError(
      `${where}: l1 uses the module's in-process memory, but RedisCacheModule has no l1 option; ` +
        (ownAllowed
          ? `set l1: { max, ttl } on the module or give this method its own { max, ttl }`
          : `set l1: { max, ttl } on the module`),
    );
  if (option === true) {
    if (!moduleL1) throw noModuleL1();
    return { kind: 'shared' };
  }
  if (typeof option !== 'object' || option === null) {
    throw new RedisCacheConfigError(`${where}: l1 must be true, false or { max?, ttl? } (got ${String(option)})`);
  }
  const { max, ttl } = option as { max?: unknown; ttl?: unknown };
  let ttlMs: number | undefined;
  if (ttl !== undefined) {
    ttlMs = toPositiveMilliseconds(ttl, 's');
    if (ttlMs === undefined) throw new RedisCacheConfigError(`${where}: ${ttlProblem('l1.ttl', ttl)}`);
  }
  if (max === undefined) {
    if (!moduleL1) throw noModuleL1();
    return { kind: 'shared', ttlMs };
  }
  if (!ownAllowed) {
    throw new RedisCacheConfigError(
      `${where}: l1.max sizes a memory of its own, which only a decorated method can have; ` +
        `use the module's (l1: true or { ttl }) or set l1: { max, ttl } on the module`,
    );
  }
  const maxProblem = checkMax(max, 'l1.max');
  if (maxProblem) throw new RedisCacheConfigError(`${where}: ${maxProblem}`);
  ttlMs ??= moduleL1?.ttlMs;
  if (ttlMs === undefined) {
    throw new RedisCacheConfigError(`${where}: l1 needs a ttl (the module has no l1 to take it from)`);
  }
  return { kind: 'own', settings: { max: max as number, ttlMs } };
}

function checkMax(max: unknown, what: string): string | undefined {
  if (typeof max === 'number' && Number.isSafeInteger(max) && max > 0) return undefined;
  return `${what} must be a positive integer: how many values are kept in memory (got ${String(max)})`;
}

function ttlProblem(what: string, ttl: unknown): string {
  return `${what} must be a positive number of seconds or a duration like '30s' (got ${typeof ttl === 'string' ? `'${ttl}'` : String(ttl)})`;
}
