/** What a batch's load of one item came to: its value, or NOT_LOADED (the method threw or answered out of line). */
export const NOT_LOADED: unique symbol = Symbol('nestjs-redis-cache:not-loaded');
export type ItemLoad = { value: unknown } | typeof NOT_LOADED;

/** Ends one batch's claim: the loaded values in the order of the claimed keys, or NOT_LOADED for all. */
export type SettleClaim = (values: readonly unknown[] | typeof NOT_LOADED) => void;

/**
 * The items batches of this process are loading, by Redis key: a batch that misses an item another
 * batch is loading waits for that load's value instead of loading it again (single-flight per item).
 *
 * One batch's read is several MGETs on a Cluster, answered by different nodes at different times: it
 * may learn of a miss after a load of that key has already been written and settled (its MGET went
 * out before the write). So a settled load's values stay here, as `landed`, until every read that
 * began before it settled has been looked at; nothing else is kept.
 *
 * A write or an invalidation of a key detaches its load (`supersede`, as SingleFlight does for
 * single reads): a batch that asks from then on loads it again rather than joining, or taking the
 * landed value of, a load that read the source before the change. One per cache (the engine's).
 */
export class BatchFlights {
  /** Loads running, by key; `tagged` when the method writes tags (a tag invalidation supersedes it). */
  private readonly loading = new Map<string, { promise: Promise<ItemLoad>; tagged: boolean }>();
  /** Values of settled loads, in the order they settled, with the last read ticket issued by then. */
  private readonly landed = new Map<string, { value: unknown; ticket: number; tagged: boolean }>();
  /** Tickets of the reads not yet looked at, oldest first (a Set keeps insertion order). */
  private readonly reading = new Set<number>();
  private tickets = 0;

  /** Call right before a batch sends its read; pass the ticket to `joined` and `endRead`. */
  startRead(): number {
    const ticket = ++this.tickets;
    this.reading.add(ticket);
    return ticket;
  }

  /** The batch with `ticket` has claimed or joined its misses: values landed before its read are let go. */
  endRead(ticket: number): void {
    this.reading.delete(ticket);
    const oldest = this.reading.values().next().value ?? Infinity;
    for (const [key, { ticket: landedAt }] of this.landed) {
      if (landedAt >= oldest) break;
      this.landed.delete(key);
    }
  }

  /**
   * The load of `redisKey` running now, or the value of one that settled after the read `ticket` was
   * sent (which may not have seen its write); undefined when the caller must load it.
   */
  joined(redisKey: string, ticket: number): Promise<ItemLoad> | ItemLoad | undefined {
    const running = this.loading.get(redisKey);
    if (running) return running.promise;
    const landed = this.landed.get(redisKey);
    return landed !== undefined && landed.ticket >= ticket ? { value: landed.value } : undefined;
  }

  /**
   * Claims `redisKeys` for one load (`tagged` when its values are written with tags); its settle
   * function must be called once the load ended.
   */
  claim(redisKeys: readonly string[], tagged: boolean): SettleClaim {
    const claims = redisKeys.map((key) => {
      let resolve!: (load: ItemLoad) => void;
      const promise = new Promise<ItemLoad>((settle) => (resolve = settle));
      this.loading.set(key, { promise, tagged });
      return { key, promise, resolve };
    });
    return (values) => {
      claims.forEach(({ key, promise, resolve }, i) => {
        // Superseded meanwhile (or claimed anew since): its value is its own batch's, no one else's.
        const current = this.loading.get(key)?.promise === promise;
        if (current) this.loading.delete(key);
        if (current && values !== NOT_LOADED && this.reading.size > 0) {
          // Re-inserted, so `landed` stays in settling order.
          this.landed.delete(key);
          this.landed.set(key, { value: values[i], ticket: this.tickets, tagged });
        }
        resolve(values === NOT_LOADED ? NOT_LOADED : { value: values[i] });
      });
    };
  }

  /**
   * Detaches the load of `redisKey` and forgets its landed value: written or invalidated, the key is
   * loaded again by the next batch that misses it. The batch that claimed it still answers its own
   * callers (they asked before the change), and its write is refused by the epoch check.
   */
  supersede(redisKey: string): void {
    this.loading.delete(redisKey);
    this.landed.delete(redisKey);
  }

  /** `supersede` for every key that starts with `prefix`. */
  supersedePrefix(prefix: string): void {
    for (const key of [...this.loading.keys()]) if (key.startsWith(prefix)) this.loading.delete(key);
    for (const key of [...this.landed.keys()]) if (key.startsWith(prefix)) this.landed.delete(key);
  }

  /** `supersede` for every load whose values are written with tags (known per method, not per value). */
  supersedeTagged(): void {
    for (const [key, { tagged }] of [...this.loading]) if (tagged) this.loading.delete(key);
    for (const [key, { tagged }] of [...this.landed]) if (tagged) this.landed.delete(key);
  }
}
