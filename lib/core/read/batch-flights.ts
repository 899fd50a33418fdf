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
 * began before it settled has been looked at; nothing else is kept. One per application.
 */
export class BatchFlights {
  private readonly loading = new Map<string, Promise<ItemLoad>>();
  /** Values of settled loads, in the order they settled, with the last read ticket issued by then. */
  private readonly landed = new Map<string, { value: unknown; ticket: number }>();
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
    if (running) return running;
    const landed = this.landed.get(redisKey);
    return landed !== undefined && landed.ticket >= ticket ? { value: landed.value } : undefined;
  }

  /** Claims `redisKeys` for one load; its settle function must be called once the load ended. */
  claim(redisKeys: readonly string[]): SettleClaim {
    const claims = redisKeys.map((key) => {
      let resolve!: (load: ItemLoad) => void;
      const promise = new Promise<ItemLoad>((settle) => (resolve = settle));
      this.loading.set(key, promise);
      return { key, promise, resolve };
    });
    return (values) => {
      claims.forEach(({ key, promise, resolve }, i) => {
        if (this.loading.get(key) === promise) this.loading.delete(key);
        if (values !== NOT_LOADED && this.reading.size > 0) {
          // Re-inserted, so `landed` stays in settling order.
          this.landed.delete(key);
          this.landed.set(key, { value: values[i], ticket: this.tickets });
        }
        resolve(values === NOT_LOADED ? NOT_LOADED : { value: values[i] });
      });
    };
  }
}
