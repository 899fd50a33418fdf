import {
  context,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Tracer,
} from '@opentelemetry/api';
import type {
  CacheCallEvent,
  CacheErrorEvent,
  CacheEventSource,
  CacheLeaseWaitEvent,
  CacheLoadEndEvent,
} from '../events/cache-events.js';
import type { BoundedNames } from '../metrics/bounded-names.js';
import { CACHE_ATTRIBUTES as ATTR } from './cache-attributes.js';
import type { CacheListeners } from './cache-subscriptions.js';
import { PendingChildren, type PendingChild } from './pending-children.js';
import { PendingErrors, type PendingError } from './pending-errors.js';

/**
 * Turns the cache's messages into spans. Every span is back-dated: a message is published the moment
 * the work is over, so a span ends at `Date.now()` and begins `durationMs` before. (Not at the
 * message's `startTime`: the cache mostly reads it off `performance.now()`, a clock that drifts from
 * the wall clock the SDK's own spans start on as the process ages.) A call's span has for parent the
 * context active when its message is published, which is the caller's (publication is synchronous, in
 * the call's own async flow), so it sits under the request span that made the call. A load or lease
 * wait happens inside a call and is published before it: it is held until its call's message, and
 * becomes a child of the call's span (pending-children.ts); a background refresh, which outlives the
 * call that started it, sits under the context it finished in.
 */
export class CacheSpans {
  private readonly pending = new PendingErrors();
  private readonly children = new PendingChildren((child) => this.child(child, child.context));

  constructor(
    private readonly tracer: Tracer,
    private readonly names: BoundedNames,
    private readonly recordKeys: boolean,
  ) {}

  listeners(): CacheListeners {
    return {
      call: (event) => this.call(event),
      loadEnd: (event) => this.held('load', event),
      leaseWait: (event) => this.held('leaseWait', event),
      error: (event) => this.pending.add(event, performance.now()),
    };
  }

  /** Exports what still waits for its call (the instrumentation stops). */
  flush(): void {
    this.children.flush();
  }

  /** A load or lease wait: held for its call, but for a background refresh (no call is waiting for it). */
  private held(kind: PendingChild['kind'], event: CacheLoadEndEvent | CacheLeaseWaitEvent): void {
    const child: PendingChild = { kind, event, end: Date.now(), at: performance.now(), context: context.active() };
    if (kind === 'load' && (event as CacheLoadEndEvent).background) this.child(child, child.context);
    else this.children.add(child);
  }

  /**
   * `cache.read UsersService.find`: one call, with the failures published inside it as exception
   * events, and its loads and lease waits as child spans.
   */
  private call(event: CacheCallEvent): void {
    const [end, now] = [Date.now(), performance.now()];
    const began = now - event.durationMs;
    const failures = this.pending.take(event, began);
    const children = this.children.take(event, began);
    const span = this.tracer.startSpan(
      `cache.${event.operation} ${this.names.bound(event.name)}`,
      {
        kind: SpanKind.INTERNAL,
        startTime: end - event.durationMs,
        attributes: {
          ...this.common(event, event.name, event.key),
          [ATTR.operation]: event.operation,
          [ATTR.outcome]: event.outcome,
          [ATTR.tier]: event.tier,
          [ATTR.fallback]: event.fallback,
        },
      },
      context.active(),
    );
    for (const { event: failure, at } of failures) {
      span.addEvent('exception', exceptionAttributes(failure), end - (now - at));
    }
    if (failures.length > 0 || event.outcome === 'error') {
      span.setStatus({ code: SpanStatusCode.ERROR, message: failures[0] && statusMessage(failures[0]) });
    }
    if (children.length > 0) {
      const within = trace.setSpan(context.active(), span);
      for (const child of children) this.child(child, within);
    }
    span.end(end);
  }

  private child(child: PendingChild, parent: Context): void {
    if (child.kind === 'load') this.load(child.event as CacheLoadEndEvent, child.end, parent);
    else this.leaseWait(child.event as CacheLeaseWaitEvent, child.end, parent);
  }

  /** `cache.load UsersService.find`: the method (or loader) running for the cache, ended at `end`. */
  private load(event: CacheLoadEndEvent, end: number, parent: Context): void {
    const span = this.tracer.startSpan(
      `cache.load ${this.names.bound(event.name)}`,
      {
        kind: SpanKind.INTERNAL,
        startTime: end - event.durationMs,
        attributes: {
          ...this.common(event, event.name, event.key),
          [ATTR.loadBackground]: event.background,
          [ATTR.loadFailed]: event.failed,
        },
      },
      parent,
    );
    // The method's error went to the caller; the message only says that it threw.
    if (event.failed) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end(end);
  }

  /** `cache.lease_wait UsersService.find`: waiting for another caller's load of the key, ended at `end`. */
  private leaseWait(event: CacheLeaseWaitEvent, end: number, parent: Context): void {
    const span = this.tracer.startSpan(
      `cache.lease_wait ${this.names.bound(event.name)}`,
      {
        kind: SpanKind.INTERNAL,
        startTime: end - event.durationMs,
        attributes: { ...this.common(event, event.name, event.key), [ATTR.leaseResult]: event.result },
      },
      parent,
    );
    span.end(end);
  }

  private common(source: CacheEventSource, name: string, key: string | undefined): Attributes {
    const attributes: Attributes = {
      [ATTR.registration]: source.cache,
      [ATTR.namespace]: source.namespace,
      [ATTR.name]: name,
      [ATTR.dbSystemName]: 'redis',
    };
    if (this.recordKeys && key !== undefined) attributes[ATTR.key] = key;
    return attributes;
  }
}

/** The semantic conventions' `exception` event, with the cache operation that failed. */
function exceptionAttributes({ operation, error }: CacheErrorEvent): Attributes {
  const { type, message } = describe(operation, error);
  return { 'exception.type': type, 'exception.message': message, [ATTR.errorOperation]: operation };
}

function statusMessage({ event }: PendingError): string {
  return `${event.operation}: ${describe(event.operation, event.error).message}`;
}

function describe(operation: CacheErrorEvent['operation'], error: unknown): { type: string; message: string } {
  if (error instanceof Error) return { type: error.name, message: error.message };
  if (error === undefined) {
    return operation === 'foreign'
      ? { type: 'ForeignValue', message: 'the key holds a value the cache did not write' }
      : { type: 'Unknown', message: `${operation} failed` };
  }
  return { type: typeof error, message: String(error) };
}
