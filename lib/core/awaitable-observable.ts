import { Observable } from 'rxjs';

/**
 * What a decorated call returns while its method's mode is unknown: the return type was not
 * recorded (inferred, a union, `import type { Observable }`, plain JavaScript) and nothing told yet
 * whether the method returns a Promise or an Observable (see `learnReturnMode`). The wrapper must
 * answer before the method has run, and on a hit it never runs: so the answer is both an rxjs
 * Observable (`isObservable`, `instanceof Observable`, `pipe`) and a thenable (`await`, `.then`).
 *
 * The call starts at once, as a Promise method's would (a caller that never awaits it still gets
 * its write or eviction). Awaiting it gives that call's value (`undefined` for an Observable that
 * completed empty); so does its first subscription, which emits the value and completes. A later
 * subscription (a second subscriber, a `retry`) runs the call again, as the cold Observable of a
 * declared Observable method would.
 *
 * @example
 * const user = await users.find(1); // the method returned a Promise
 * users.find(1).pipe(map((user) => user.name)).subscribe(render); // or an Observable
 */
export class AwaitableObservable extends Observable<unknown> implements PromiseLike<unknown> {
  private readonly value: Promise<unknown>;

  /**
   * @param first the call, already started; it resolves to `empty` when an Observable completed without a value
   * @param again starts the call again, for a later subscription
   */
  constructor(first: Promise<unknown>, again: () => Promise<unknown>, empty: unknown) {
    let firstTaken = false;
    super((subscriber) => {
      const settling = firstTaken ? again() : first;
      firstTaken = true;
      settling.then(
        (value) => {
          if (value !== empty) subscriber.next(value);
          subscriber.complete();
        },
        (err: unknown) => subscriber.error(err),
      );
    });
    this.value = first.then((value) => (value === empty ? undefined : value));
    // A call nobody awaits or subscribes to does not end the process with an unhandled rejection
    // (an Observable left alone never errors); whoever awaits it still gets the error.
    this.value.catch(() => undefined);
  }

  then<R1 = unknown, R2 = never>(
    onFulfilled?: ((value: unknown) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.value.then(onFulfilled, onRejected);
  }

  catch<R = never>(onRejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<unknown> {
    return this.value.catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<unknown> {
    return this.value.finally(onFinally);
  }
}
