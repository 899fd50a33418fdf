import type { Cluster, Redis } from 'ioredis';
import type { Writable } from 'node:stream';

/**
 * Commands sent in one tick go out in one socket write. The first command of a tick corks the
 * connection's socket and a `process.nextTick` uncorks it, after every command of the tick was
 * queued: at concurrency 64, the hits whose replies arrived in one read send their next GETs in one
 * `writev` instead of one syscall each; alone, a command waits for nothing but the end of its tick
 * (ioredis's `enableAutoPipelining` waits a turn of the event loop). Standalone connections only
 * (a Cluster's node sockets are ioredis's own business).
 */
export class TickWrites {
  private corked: Writable | undefined;
  private readonly uncork = () => {
    const stream = this.corked;
    this.corked = undefined;
    stream?.uncork();
  };

  constructor(private readonly client: Redis | Cluster) {}

  /** Call right before sending a command. */
  coalesce(): void {
    if (this.corked !== undefined) return;
    const client = this.client as Redis & { stream?: Writable };
    const stream = client.status === 'ready' ? client.stream : undefined;
    if (stream === undefined || typeof stream.cork !== 'function') return;
    stream.cork();
    this.corked = stream;
    process.nextTick(this.uncork);
  }
}
