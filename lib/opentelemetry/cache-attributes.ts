/**
 * The attribute keys on the cache's spans and metrics. `cache.registration` is the `forRoot` name
 * (`'default'`), `cache.name` the metrics name of the call (`Class.method` or the decorator's `name`).
 */
export const CACHE_ATTRIBUTES = Object.freeze({
  registration: 'cache.registration',
  name: 'cache.name',
  namespace: 'cache.namespace',
  operation: 'cache.operation',
  outcome: 'cache.outcome',
  tier: 'cache.tier',
  fallback: 'cache.fallback',
  /** Spans only, and only with `recordKeys: true`. */
  key: 'cache.key',
  loadBackground: 'cache.load.background',
  loadFailed: 'cache.load.failed',
  leaseResult: 'cache.lease.result',
  errorOperation: 'cache.error.operation',
  invalidationKind: 'cache.invalidation.kind',
  invalidationFailed: 'cache.invalidation.failed',
  l1DropReason: 'cache.l1.drop.reason',
  dbSystemName: 'db.system.name',
} as const);

/** The names of the metrics recorded through the meter (see docs/opentelemetry.md for their attributes). */
export const CACHE_METRICS = Object.freeze({
  calls: 'cache.calls',
  callDuration: 'cache.call.duration',
  loadDuration: 'cache.load.duration',
  leaseWaitDuration: 'cache.lease_wait.duration',
  errors: 'cache.errors',
  invalidations: 'cache.invalidations',
  l1Drops: 'cache.l1.drops',
} as const);

/** What a name beyond `maxNames` is reported as. */
export { OTHER_NAME } from '../metrics/bounded-names.js';
