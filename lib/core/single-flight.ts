/**
 * Coalesces concurrent work on the same key within this process: while a load for a key is running,
 * every other caller for that key awaits the same promise instead of starting its own. The entry
 * is removed as soon as the work settles, so nothing is cached here — this only shares work in flight.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  run(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running) return running;
    const started = work();
    this.inFlight.set(key, started);
    const forget = () => {
      this.inFlight.delete(key);
    };
    // Both branches handled: a rejection reaches the callers through `started`, not through this chain.
    started.then(forget, forget);
    return started;
  }

  get size(): number {
    return this.inFlight.size;
  }
}
