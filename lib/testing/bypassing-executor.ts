import { defer, finalize, isObservable, type Observable } from 'rxjs';
import type { CacheEngine } from '../core/cache-engine.js';
import type { CacheMethodPlan } from '../core/cache-method-plan.js';
import { CacheOperationExecutor } from '../core/cache-operation-executor.js';
import { callUncached } from '../core/not-running.js';

/**
 * The executor of RedisCacheTestingModule's `disabled` switch: every decorated call runs its method as
 * if it were not decorated, and is recorded as a `bypass` under its cache name. The plans are still
 * compiled at bootstrap, so a bad TTL or an unknown profile fails the test module as it would the app.
 */
export class BypassingExecutor extends CacheOperationExecutor {
  constructor(private readonly cache: CacheEngine) {
    super(cache);
  }

  override execute(
    plan: CacheMethodPlan,
    instance: object,
    original: (...args: unknown[]) => unknown,
    args: unknown[],
  ): unknown {
    if (!this.cache.isStarted) return callUncached(instance, original, args);
    const { name } = this.compile(plan, instance.constructor);
    const { metrics } = this.cache;
    const started = performance.now();
    const result = original.apply(instance, args);
    if (isObservable(result)) {
      // Counted when a subscription ends, timed from when it began: a cold Observable runs then.
      return defer(() => {
        const subscribed = performance.now();
        return (result as Observable<unknown>).pipe(
          finalize(() => metrics.record(name, 'bypass', performance.now() - subscribed)),
        );
      });
    }
    if (!isThenable(result)) {
      metrics.record(name, 'bypass', performance.now() - started);
      return result;
    }
    const done = () => metrics.record(name, 'bypass', performance.now() - started);
    return Promise.resolve(result).then(
      (value) => {
        done();
        return value;
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
