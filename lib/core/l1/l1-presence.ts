import { randomBytes } from 'node:crypto';
import type { CacheStore } from '../../store/cache-store.js';
import type { BookkeepingKeys } from '../bookkeeping-keys.js';

/** How long a writer trusts an answer saying that no instance keeps an L1. */
export const ABSENCE_TRUSTED_MS = 500;
/** The shortest time between two checks of the marker (a writer re-asks once the last answer is this old). */
export const CHECK_EVERY_MS = ABSENCE_TRUSTED_MS / 2;
/** How often an instance with an L1 renews its presence marker, and how long the marker lives. */
const HEARTBEAT_MS = 3_000;
const PRESENCE_TTL_MS = 10_000;
/** How soon a marker that could not be written is tried again while L1 keeps nothing. */
const RETRY_MS = 250;
/**
 * How long after its marker was first written an instance starts keeping values in L1: by then no
 * writer trusts an answer that predates the marker, so every write since is announced.
 */
export const PRESENCE_SETTLE_MS = ABSENCE_TRUSTED_MS + 500;

/**
 * Whether writes need announcing, so that a namespace without any in-process tier pays nothing for
 * one (on a Cluster a PUBLISH travels to every node, subscribers or not). An instance with an L1 keeps
 * a marker key alive; a writer announces its changes unless a recent EXISTS found none. The timings,
 * and why no write an L1 could miss goes unannounced: docs/presence-marker.md.
 */
export class L1Presence {
  private readonly key: string;
  /** `performance.now()` when the last EXISTS that found no marker was sent. */
  private absentSince = -Infinity;
  /** `performance.now()` when the last EXISTS was sent, whatever it answered. */
  private checkedAt = -Infinity;
  private checking = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The marker's generation at the last renewal: another one means it was gone in between. */
  private generation: string | undefined;

  constructor(
    keys: BookkeepingKeys,
    private readonly store: CacheStore,
  ) {
    this.key = keys.presence;
  }

  /** True unless a recent answer says no instance keeps an L1. Starts a check when the last one ages. */
  get announcementsWanted(): boolean {
    this.check();
    return performance.now() - this.absentSince >= ABSENCE_TRUSTED_MS;
  }

  /**
   * This instance keeps an L1: writes its marker now and renews it every HEARTBEAT_MS. `settled(true)`
   * is called PRESENCE_SETTLE_MS after a marker was written (L1 may keep values), `settled(false)`
   * when one could not be renewed (it may expire), or was found gone: evicted, deleted, or expired
   * while this process stalled. Writers may then have stopped announcing, so L1 keeps nothing until a
   * marker is written and settles again. What L1 served between the loss and this renewal (at most a
   * heartbeat) is the limit: docs/presence-marker.md.
   */
  advertise(settled: (ready: boolean) => void): void {
    let ready = false;
    const beat = () => {
      if (this.stopped) return;
      // Until a first marker is written (Redis down at boot), retried sooner than the heartbeat.
      this.heartbeat = setTimeout(beat, ready || this.settle ? HEARTBEAT_MS : RETRY_MS);
      this.heartbeat.unref();
      this.store.mark(this.key, PRESENCE_TTL_MS, randomBytes(6).toString('base64url')).then(
        (generation) => {
          if (this.stopped) return;
          const seen = this.generation;
          this.generation = generation;
          if (generation !== seen) {
            // The first marker, or one that was gone since the last renewal (whoever wrote it again,
            // this instance or another that renewed first): settling starts over.
            clearTimeout(this.settle);
            this.settle = undefined;
            if (ready) settled(false);
            ready = false;
          }
          if (ready || this.settle) return;
          this.settle = setTimeout(() => {
            this.settle = undefined;
            ready = !this.stopped;
            if (ready) settled(true);
          }, PRESENCE_SETTLE_MS);
          this.settle.unref();
        },
        () => {
          clearTimeout(this.settle);
          this.settle = undefined;
          if (ready) settled(false);
          ready = false;
        },
      );
    };
    // The first marker once the connection is up (the application starts it right after this).
    void this.store.whenReady().then((up) => up && beat());
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.heartbeat);
    clearTimeout(this.settle);
  }

  /**
   * Asks whether the marker exists, at most once per CHECK_EVERY_MS: while it exists every write
   * would ask again, and only a "none" changes what writers do. Asking less often only keeps them
   * announcing a little longer after the last L1 is gone.
   */
  private check(): void {
    const sent = performance.now();
    if (this.checking || this.stopped || sent - this.checkedAt < CHECK_EVERY_MS) return;
    this.checking = true;
    this.checkedAt = sent;
    this.store.exists(this.key).then(
      (present) => {
        this.checking = false;
        this.absentSince = present ? -Infinity : sent;
      },
      () => {
        this.checking = false;
        this.absentSince = -Infinity;
      },
    );
  }
}
