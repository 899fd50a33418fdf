// A TCP proxy for tests that can be "frozen": it stops passing bytes on some or all of its
// connections while keeping both sockets open, as a NAT or a load balancer does when it silently
// drops an idle connection's mapping (no FIN, no RST: bytes simply stop arriving). The client then
// holds a connection that looks healthy and never answers, which only a timeout or a health check
// can tell; a reset (resetAll) is the loud failure to compare with.
import { connect, createServer, type Socket } from 'node:net';

export interface FreezingProxy {
  /** The loopback port the proxy listens on. */
  readonly port: number;
  /** Redis URL through the proxy, e.g. redis://127.0.0.1:<port>/<db> (db optional). */
  url(db?: number): string;
  /**
   * Stops forwarding in both directions on the selected connections, keeping both sockets open
   * (nothing is closed, nothing is sent). 'all' = every connection open now and any opened while
   * frozen; 'subscribers' = only the connections open now on which the client has sent a SUBSCRIBE,
   * SSUBSCRIBE or PSUBSCRIBE command (a connection opened later is not frozen: a new connection gets
   * a new NAT mapping, which is how a client recovers from a dead one).
   */
  freeze(which?: 'all' | 'subscribers'): void;
  /**
   * Resumes forwarding. Bytes that arrived while frozen are dropped (as a dead NAT mapping drops
   * them), NOT delivered late, by default; `thaw({ deliver: true })` delivers them in order instead.
   */
  thaw(options?: { deliver?: boolean }): void;
  /** Destroys every proxied connection (both sides) with an RST, as a reset would. */
  resetAll(): void;
  /** Number of proxied connections open now, and how many of them are marked as subscribers. */
  connections(): { open: number; subscribers: number };
  /** Destroys every connection and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** One proxied connection: the client's socket, the proxy's own to the target, and its freeze state. */
interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  frozen: boolean;
  /** Set once the client sent a (S|P)SUBSCRIBE, and never cleared: the test asks which connection *was* one. */
  subscriber: boolean;
  /** The last bytes the client sent (latin1: one char per byte), so a command split across chunks is seen. */
  tail: string;
  /** Bytes that arrived while frozen, in arrival order, each with the socket it was headed for. */
  held: Array<{ to: Socket; data: Buffer }>;
}

// A (S|P)SUBSCRIBE as the first element of a RESP array, or as the first word of an inline command:
// a line start that does not follow a `$<length>` header (the lines after one are bulk values, e.g.
// SET's "subscribe"). The tail starts as '\n' so that an inline command opening the stream is at a
// line start too. Both forms need the name's end, so UNSUBSCRIBE or "subscribed" do not match.
const SUBSCRIBE = /\*\d+\r\n\$\d+\r\n[sp]?subscribe\r\n|(?<!\$\d+\r)\n[ \t]*[sp]?subscribe[ \t\r\n]/i;
/** More than the longest match (`*<count>\r\n$10\r\npsubscribe\r\n`) and its look-behind, with room for long counts. */
const TAIL_LENGTH = 64;

export function startFreezingProxy(target: { host: string; port: number }): Promise<FreezingProxy> {
  const links = new Set<Link>();
  // Set by freeze('all'): connections accepted meanwhile are frozen from their first byte.
  let freezeNew = false;

  const isOpen = (link: Link) => !link.client.destroyed && !link.upstream.destroyed;

  const relay = (link: Link, from: Socket, to: Socket) => {
    from.on('data', (data: Buffer) => {
      if (from === link.client && !link.subscriber) {
        const seen = link.tail + data.toString('latin1');
        link.subscriber = SUBSCRIBE.test(seen);
        link.tail = seen.slice(-TAIL_LENGTH);
      }
      if (link.frozen) link.held.push({ to, data });
      else if (to.writable) to.write(data);
    });
    // A peer's own close is passed on even while frozen: the proxy keeps no half-dead connections
    // around (their far side is out of a test's sight anyway), and close() has nothing left to chase.
    // After an error (e.g. a reset) the other side is destroyed at once; a clean end is passed on as a
    // FIN once the bytes still pending are written.
    from.on('error', () => to.destroy());
    from.on('end', () => to.end());
    from.on('close', (hadError) => {
      if (hadError) to.destroy();
      else to.end();
      if (from.destroyed && to.destroyed) links.delete(link);
    });
  };

  const server = createServer((client) => {
    // Connected to the target even when frozen: the client's connect succeeds, as it would through
    // a NAT, and only the bytes go nowhere.
    const upstream = connect(target);
    const link: Link = { client, upstream, frozen: freezeNew, subscriber: false, tail: '\n', held: [] };
    links.add(link);
    relay(link, client, upstream);
    relay(link, upstream, client);
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({
        port,
        url: (db) => `redis://127.0.0.1:${port}${db === undefined ? '' : `/${db}`}`,
        freeze(which = 'all') {
          if (which === 'all') freezeNew = true;
          for (const link of links) if (which === 'all' || link.subscriber) link.frozen = true;
        },
        thaw({ deliver = false } = {}) {
          freezeNew = false;
          for (const link of links) {
            // Written in arrival order before anything newer, so each direction keeps its byte order.
            if (deliver) for (const { to, data } of link.held) if (to.writable) to.write(data);
            link.held = [];
            link.frozen = false;
          }
        },
        resetAll() {
          // Both sides at once: their 'close' handlers run later, so neither gets a polite FIN first.
          for (const link of links) {
            for (const socket of [link.client, link.upstream]) if (!socket.destroyed) socket.resetAndDestroy();
          }
        },
        connections() {
          const open = [...links].filter(isOpen);
          return { open: open.length, subscribers: open.filter((link) => link.subscriber).length };
        },
        close: () =>
          new Promise<void>((done) => {
            for (const link of links) {
              link.client.destroy();
              link.upstream.destroy();
            }
            links.clear();
            // Its callback waits for the accepted sockets, all destroyed above; it errs (ignored) once closed.
            server.close(() => done());
          }),
      });
    });
  });
}
