/**
 * The response writes this interceptor has in flight, by route key. A response is stored once it has
 * been sent, so the client may ask again before the write lands; a lookup of the same key in this
 * process waits for it first, so a second request that follows a cacheable response is served from
 * the cache. Each write is bounded by the module's `commandTimeout`, and fails open.
 */
export class PendingResponseWrites {
  private readonly writes = new Map<string, Promise<void>>();

  /** Runs `write` (which handles its own errors) as the latest write of `key`, after the one before it. */
  track(key: string, write: () => Promise<void>): void {
    const done = (this.writes.get(key) ?? Promise.resolve()).then(write).catch(() => undefined);
    this.writes.set(key, done);
    void done.finally(() => {
      if (this.writes.get(key) === done) this.writes.delete(key);
    });
  }

  /** Resolves once no write of `key` is in flight. */
  async settled(key: string): Promise<void> {
    await this.writes.get(key);
  }
}
