import 'reflect-metadata';
import { Inject, Optional } from '@nestjs/common';
import { Observable } from 'rxjs';
import { cacheNameOf, cacheTokens, executorProperty } from '../cache-names.js';
import type { CacheOperationExecutor } from '../core/cache-operation-executor.js';
import type { CacheMethodPlan, ReturnMode } from '../core/cache-method-plan.js';
import type { TemplateContext } from '../core/key-template.js';
import { methodParameters } from '../core/method-parameters.js';
import { RedisCacheConfigError } from '../errors.js';

/** The plan of a wrapped method, kept on the wrapper function. */
export const CACHE_PLAN = Symbol.for('nestjs-redis-cache:plan');

/** A method the cache can serve: its value arrives later, as a Promise or an Observable. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CacheableMethod = (...args: any[]) => Promise<unknown> | Observable<unknown>;

/**
 * The type every cache decorator returns: applying it to a method that returns a plain value is a
 * compile error (`Type 'number' is not assignable to type 'Promise<unknown> | Observable<unknown>'`).
 */
export type CacheMethodDecorator = <T extends CacheableMethod>(
  target: object,
  propertyKey: string | symbol,
  descriptor: TypedPropertyDescriptor<T>,
) => void;

type PlainFunction = ((...args: unknown[]) => unknown) & { [CACHE_PLAN]?: CacheMethodPlan };

const SYNCHRONOUS_RETURN_TYPES = new Set<unknown>([String, Number, Boolean, Symbol, BigInt, Array]);

/**
 * Adds one cache operation to a method. The first cache decorator on a method replaces
 * `descriptor.value` with a wrapper — at decoration time, so controllers' route handlers (captured
 * by Nest before any lifecycle hook) and `this.other()` calls go through it too; the next ones only
 * add to the wrapper's plan, so decorators compose on one method in any order.
 *
 * Each instance reaches its own application's executor through property injection: no static
 * state, two applications in one process stay apart.
 */
export function addCacheOperation(
  decorator: string,
  target: object,
  propertyKey: string | symbol,
  descriptor: PropertyDescriptor,
  cacheOption: string | undefined,
  add: (plan: CacheMethodPlan, where: string) => void,
): void {
  // A static method's target is the class itself; an instance method's is its prototype.
  const className =
    typeof target === 'function' ? target.name : (target as { constructor: { name: string } }).constructor.name;
  const methodName = String(propertyKey);
  const where = `${className}.${methodName} @${decorator}`;
  const current = descriptor.value as PlainFunction | undefined;
  if (typeof current !== 'function') {
    throw new RedisCacheConfigError(`${where}: cache decorators go on methods`);
  }
  if (typeof target === 'function') {
    throw new RedisCacheConfigError(`${where}: static methods have no instance to cache for; use an instance method`);
  }

  const cache = cacheNameOf(cacheOption, where);
  let plan = current[CACHE_PLAN];
  if (!plan) {
    plan = {
      className,
      methodName,
      parameters: methodParameters(current),
      declaredLength: current.length,
      cache,
      executorProperty: executorProperty(cache),
      ...returnMode(target, propertyKey, current, where),
      puts: [],
      evicts: [],
    };
    descriptor.value = wrap(current, plan);
    injectExecutor(target, cache);
  } else if (plan.cache !== cache) {
    throw new RedisCacheConfigError(
      `${where}: the decorators of one method use one cache, here '${plan.cache}' and '${cache}'; ` +
        `evict from another cache in the method's body (@InjectCache('${cache}'))`,
    );
  }
  add(plan, where);
}

/** What a key template of `plan`'s method is checked against (see KeyTemplate.compile). */
export function templateContext(plan: CacheMethodPlan, requireArgument = false): TemplateContext {
  return { parameters: plan.parameters, declaredLength: plan.declaredLength, requireArgument };
}

/** A batch `@Cacheable` stands alone on its method (see batch-plan.ts), whichever decorator comes first. */
export function refuseOnBatch(plan: CacheMethodPlan, where: string): void {
  if (plan.cacheable?.batch) {
    throw new RedisCacheConfigError(
      `${where}: a method with @Cacheable({ batch }) takes no @CachePut or @CacheEvict: write or evict the ids in another method`,
    );
  }
}

function wrap(original: PlainFunction, plan: CacheMethodPlan): CacheableMethod {
  const { executorProperty } = plan;
  const wrapper = function cachedMethod(this: Record<symbol, CacheOperationExecutor | undefined>, ...args: unknown[]) {
    const executor = this?.[executorProperty];
    // An instance Nest did not create (e.g. `new Service()` in a unit test) has no cache: run as is.
    if (!executor) return original.apply(this, args);
    return executor.execute(plan, this, original, args);
  } as CacheableMethod & { [CACHE_PLAN]?: CacheMethodPlan };
  copyMethodMetadata(original, wrapper);
  Object.defineProperty(wrapper, 'name', { value: original.name });
  wrapper[CACHE_PLAN] = plan;
  return wrapper;
}

/** Keeps `@Get`, guards, pipes and any other metadata that was put on the original function. */
function copyMethodMetadata(from: object, to: object): void {
  for (const key of Reflect.getOwnMetadataKeys(from)) {
    Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, from), to);
  }
}

/**
 * Asks Nest to inject cache `name`'s executor into every instance of the class (property injection,
 * once per class and cache). Optional: without a visible registration Nest leaves the property
 * empty, and the bootstrap explains what is missing (redis-cache.lifecycle.ts) instead of Nest's
 * error about an internal token; an app with no registration at all runs the methods uncached.
 */
function injectExecutor(prototype: object, name: string): void {
  const injected = Symbol.for(`nestjs-redis-cache:executor-injected:${name}`);
  if (Object.prototype.hasOwnProperty.call(prototype, injected)) return;
  Object.defineProperty(prototype, injected, { value: true });
  const property = executorProperty(name);
  Optional()(prototype, property);
  Inject(cacheTokens(name).executor)(prototype, property);
}

/**
 * Promise or Observable, from the design-time return type TypeScript records
 * (`emitDecoratorMetadata`). A declared synchronous type is rejected here, when the class is
 * defined. Without a recorded type (inferred, a union, `import type { Observable }`, plain
 * JavaScript) an `async` function is a Promise for sure; for anything else the mode is left
 * unknown, to be learnt from what the method returns (see `learnReturnMode`).
 */
function returnMode(
  target: object,
  propertyKey: string | symbol,
  method: PlainFunction,
  where: string,
): { mode: ReturnMode | undefined; modeDeclared: boolean } {
  const declared: unknown = Reflect.getMetadata('design:returntype', target, propertyKey);
  if (typeof declared === 'function' && (declared === Observable || declared.prototype instanceof Observable)) {
    return { mode: 'observable', modeDeclared: true };
  }
  if (SYNCHRONOUS_RETURN_TYPES.has(declared)) {
    throw new RedisCacheConfigError(
      `${where}: the method returns a plain ${(declared as { name: string }).name}, which a cache cannot serve; ` +
        `make it async (return a Promise) or return an Observable`,
    );
  }
  const isPromise =
    (typeof declared === 'function' && (declared === Promise || declared.prototype instanceof Promise)) ||
    method.constructor.name === 'AsyncFunction';
  return isPromise ? { mode: 'promise', modeDeclared: true } : { mode: undefined, modeDeclared: false };
}
