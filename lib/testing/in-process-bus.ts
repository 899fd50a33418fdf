/** A message: text, or bytes (a lease release that carries an entry, as Redis's binary-safe pub/sub does). */
export type BusMessage = string | Buffer;

/**
 * Pub/sub inside one process, standing in for Redis channels: what the in-process store publishes
 * (lease releases, prefix markers, L1 invalidations) reaches the subscribers of the channel.
 * Delivered in a microtask, in publishing order, to the subscribers of the moment it was published,
 * like a message that arrives on the subscriber's connection after the command that sent it.
 */
export class InProcessBus {
  private readonly channels = new Map<string, Set<(message: BusMessage) => void>>();

  /** Calls `handler` with every message published on `channel` from now on; returns the unsubscribe. */
  subscribe(channel: string, handler: (message: BusMessage) => void): () => void {
    let handlers = this.channels.get(channel);
    if (!handlers) this.channels.set(channel, (handlers = new Set()));
    handlers.add(handler);
    return () => {
      const current = this.channels.get(channel);
      if (!current?.delete(handler)) return;
      if (current.size === 0) this.channels.delete(channel);
    };
  }

  /** Publishes `message` on `channel`; returns how many subscribers will receive it (as PUBLISH does). */
  publish(channel: string, message: BusMessage): number {
    const handlers = [...(this.channels.get(channel) ?? [])];
    if (handlers.length > 0) queueMicrotask(() => handlers.forEach((handler) => handler(message)));
    return handlers.length;
  }
}
