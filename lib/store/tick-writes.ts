import type { Cluster, Redis } from 'ioredis';
import type { Writable } from 'node:stream';

/** What of an ioredis connection the coalescing reads: its socket, and the replies it still waits for. */
type Connection = Redis & { stream?: Writable; commandQueue?: { length: number } };

/**
 * The commands sent while replies are pending go out in one socket write. With nothing in flight a
 * command is written at once, so a lone call waits for nothing (ioredis's `enableAutoPipelining`
 * costs it an event-loop turn). While replies are pending, the first command corks the socket and
 * `setImmediate` uncorks it at the end of the poll phase: the hits whose replies arrived in one
 * read, and the HTTP requests read in one poll phase, send their GETs in one `writev` instead of one
 * syscall each, and Redis reads them at once too. Standalone connections only (a Cluster's node
 * sockets are ioredis's own business).
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
    const client = this.client as Connection;
    if (client.status !== 'ready' || client.commandQueue?.length === 0) return;
    const stream = client.stream;
    if (stream === undefined || typeof stream.cork !== 'function') return;
    stream.cork();
    this.corked = stream;
    setImmediate(this.uncork);
  }
}
