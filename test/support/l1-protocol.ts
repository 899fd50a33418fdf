// What test/integration/l1-processes.spec.ts and its child processes (l1-worker.ts) say to each other
// over Node's IPC channel. Shared by both sides; the worker's copy is compiled by tsc.

/** The stats name of the worker's `@Cacheable doc(id)` (`CacheService.stats().byName[...]`). */
export const DOC_METHOD = 'Documents.doc';

/** What `doc(id)` returns: the version of the document in the worker's in-memory database. */
export interface Doc {
  id: string;
  version: number;
}

/** What `doc(id)` has been counted in the worker's stats (see CacheNameStats). */
export interface DocCounts {
  hits: number;
  misses: number;
  l1Hits: number;
}

/** The first read of a version during a watch. */
export interface Sighting {
  version: number;
  /** Wall clock (ms since the epoch, sub-ms: `performance.timeOrigin + performance.now()`) when the read returned. */
  at: number;
  /** The method's counts right after that read. */
  counts: DocCounts;
  /**
   * The longest time between two reads returning since the previous sighting (ms): how long the
   * worker itself was held up (descheduled, a GC pause) while it waited for this version.
   */
  longestPauseMs: number;
}

/** What a worker's reads of one `watch` got, from its start to its `stop`. */
export interface WatchReport {
  /** Reads made (each a call of `doc(id)`). */
  reads: number;
  /** The method's counts when the watch began and when it stopped. */
  before: DocCounts;
  after: DocCounts;
  /** Executions of `doc` (loads from the worker's own database) during the watch. */
  loads: number;
  /** The first read of each version higher than every one read before, in order (the first read included). */
  sightings: Sighting[];
  /** Reads that returned a lower version than one returned before: how many, and the first few. */
  regressions: number;
  firstRegressions: Array<{ after: number; got: number; at: number }>;
  errors: string[];
}

/** Parent to worker. */
export type ParentMessage =
  /** Read `doc(id)` until a read is served from L1 (a miss, a Redis hit that is kept, an L1 hit). */
  | { type: 'warm'; id: string }
  /** `update(id, version)` through `@CachePut`, then report when it resolved. */
  | { type: 'update'; id: string; version: number }
  /** Read `doc(id)` in a loop, about once a millisecond, until `stop`; report each new version. */
  | { type: 'watch'; id: string }
  | { type: 'stop' }
  | { type: 'exit' };

/** Worker to parent. */
export type WorkerMessage =
  /** Booted, and its L1 is serving (subscribed to the other instances' invalidations). */
  | { type: 'ready'; pid: number }
  | { type: 'warmed'; pid: number; doc: Doc; reads: number; counts: DocCounts }
  /** `resolvedAt`: wall clock as in `Sighting.at`, right after the put resolved. */
  | { type: 'updated'; pid: number; doc: Doc; resolvedAt: number }
  /** Sent during a watch for each sighting, as it happens. */
  | { type: 'saw'; pid: number; version: number; at: number; longestPauseMs: number }
  | { type: 'watched'; pid: number; report: WatchReport }
  | { type: 'fatal'; pid: number; error: string };
