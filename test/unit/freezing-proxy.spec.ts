import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { startLocalRedis, type LocalRedisServer } from '../../tools/local-redis-server.mjs';
import { startFreezingProxy, type FreezingProxy } from '../support/freezing-proxy.js';

// The proxy stands for a NAT that silently dropped a connection: while frozen, bytes stop in both
// directions and neither side learns of it. Checked on raw sockets against an echo server (exact
// bytes, both directions, split commands), then with ioredis against a real redis-server.

/** How long "nothing arrives" is watched for: long for loopback, short for the suite. */
const QUIET_MS = 200;

const quiet = () => new Promise((resolve) => setTimeout(resolve, QUIET_MS));

/** One side of a TCP connection, recording what it received and whether it ended or failed. */
class Peer {
  received = '';
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | undefined;
  private readonly changed = new Set<() => void>();

  constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.update(() => (this.received += chunk)));
    socket.on('end', () => this.update(() => (this.ended = true)));
    socket.on('error', (error) => this.update(() => (this.error = error)));
    socket.on('close', () => this.update(() => (this.closed = true)));
  }

  /** Resolves once `check` holds, re-checked on each event of the socket; fails after 2 s. */
  until(what: string, check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.changed.delete(recheck);
        reject(new Error(`Timed out waiting until ${what} (received ${JSON.stringify(this.received)})`));
      }, 2_000);
      const recheck = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.changed.delete(recheck);
        resolve();
      };
      this.changed.add(recheck);
    });
  }

  /** Resolves once everything received so far ends with `text`. */
  receives(text: string): Promise<void> {
    return this.until(`${JSON.stringify(text)} arrives`, () => this.received.endsWith(text));
  }

  private update(change: () => unknown): void {
    change();
    for (const recheck of [...this.changed]) recheck();
  }
}

/** A TCP echo server that also hands out its side of each connection, to send on its own. */
interface EchoServer {
  port: number;
  /** Its side of each connection accepted so far, in order. */
  peers: Peer[];
  /** Resolves once it accepted `count` connections. */
  accepted(count: number): Promise<Peer>;
  close(): Promise<void>;
}

async function startEchoServer(): Promise<EchoServer> {
  const peers: Peer[] = [];
  const server: Server = createServer((socket) => {
    const peer = new Peer(socket);
    socket.on('data', (chunk) => socket.writable && socket.write(chunk));
    peers.push(peer);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    peers,
    async accepted(count) {
      while (peers.length < count) await once(server, 'connection');
      return peers[count - 1];
    },
    close: () =>
      new Promise((resolve) => {
        for (const peer of peers) peer.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('the freezing proxy, on raw TCP', () => {
  let echo: EchoServer;
  let proxy: FreezingProxy;
  const clients: Peer[] = [];

  /** A client connected through the proxy, once the echo server accepted its connection. */
  async function connectClient(): Promise<Peer> {
    const peer = new Peer(connect({ host: '127.0.0.1', port: proxy.port }));
    clients.push(peer);
    await once(peer.socket, 'connect');
    await echo.accepted(clients.length);
    return peer;
  }

  beforeEach(async () => {
    echo = await startEchoServer();
    proxy = await startFreezingProxy({ host: '127.0.0.1', port: echo.port });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
    await proxy.close();
    await echo.close();
  });

  it('forwards bytes both ways and gives its Redis URL', async () => {
    const client = await connectClient();
    client.socket.write('hello');
    await client.receives('hello');
    expect(echo.peers[0].received).toBe('hello');
    expect(proxy.connections()).toEqual({ open: 1, subscribers: 0 });
    expect(proxy.url()).toBe(`redis://127.0.0.1:${proxy.port}`);
    expect(proxy.url(3)).toBe(`redis://127.0.0.1:${proxy.port}/3`);
  });

  it('freeze() stops bytes in both directions with both sockets left open; thaw() drops what was held', async () => {
    const client = await connectClient();
    const server = echo.peers[0];
    proxy.freeze();
    client.socket.write('lost-up');
    server.socket.write('lost-down');
    await quiet();
    expect(server.received).toBe('');
    expect(client.received).toBe('');
    // Nothing was closed or sent: neither side can tell.
    expect([client.ended, client.closed, client.error]).toEqual([false, false, undefined]);
    expect([server.ended, server.closed, server.error]).toEqual([false, false, undefined]);
    expect(proxy.connections()).toEqual({ open: 1, subscribers: 0 });

    proxy.thaw();
    client.socket.write('after');
    await client.receives('after');
    // The held bytes never arrive, neither before nor after the new ones.
    expect(server.received).toBe('after');
    expect(client.received).toBe('after');
  });

  it('thaw({ deliver: true }) delivers the held bytes in order', async () => {
    const client = await connectClient();
    const server = echo.peers[0];
    proxy.freeze();
    server.socket.write('push;');
    client.socket.write('a');
    client.socket.write('b');
    client.socket.write('c');
    await quiet();
    expect(client.received).toBe('');

    proxy.thaw({ deliver: true });
    await client.receives('abc');
    expect(server.received).toBe('abc');
    expect(client.received).toBe('push;abc');
  });

  it('freezes a connection accepted while frozen, though it connects to the target', async () => {
    proxy.freeze('all');
    const client = await connectClient(); // waits for the echo server to accept it
    client.socket.write('lost');
    await quiet();
    expect(echo.peers[0].received).toBe('');
    expect(client.received).toBe('');

    proxy.thaw();
    client.socket.write('after');
    await client.receives('after');
    expect(client.received).toBe('after');
  });

  it('marks connections that sent (S|P)SUBSCRIBE, even split across chunks, and freezes only those', async () => {
    const split = await connectClient();
    const inline = await connectClient();
    const sharded = await connectClient();
    const plain = await connectClient();

    // A RESP SUBSCRIBE cut in the middle of its name: the echo of the first part shows that the
    // proxy got it as a chunk of its own before the rest was sent.
    split.socket.write('*2\r\n$9\r\nSUBS');
    await split.receives('SUBS');
    expect(proxy.connections().subscribers).toBe(0);
    split.socket.write('CRIBE\r\n$2\r\nch\r\n');
    await split.receives('ch\r\n');
    inline.socket.write('PING\r\n  psubscribe news.*\r\n');
    await inline.receives('news.*\r\n');
    sharded.socket.write('*2\r\n$10\r\nsSubscribe\r\n$2\r\nch\r\n');
    await sharded.receives('ch\r\n');
    // Not commands named SUBSCRIBE: a value, an inline argument, UNSUBSCRIBE, a longer name.
    plain.socket.write('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9\r\nsubscribe\r\n');
    plain.socket.write('GET subscribe\r\nUNSUBSCRIBE\r\n*1\r\n$11\r\nPUNSUBSCRIBE\r\nsubscribed\r\n');
    await plain.receives('subscribed\r\n');
    expect(proxy.connections()).toEqual({ open: 4, subscribers: 3 });

    // Still a subscriber after unsubscribing: the mark stays.
    split.socket.write('UNSUBSCRIBE\r\n');
    await split.receives('UNSUBSCRIBE\r\n');
    expect(proxy.connections()).toEqual({ open: 4, subscribers: 3 });

    proxy.freeze('subscribers');
    for (const client of [split, inline, sharded, plain]) client.socket.write('frozen?');
    await plain.receives('frozen?');
    await quiet();
    for (const client of [split, inline, sharded]) expect(client.received.endsWith('frozen?')).toBe(false);
    // A connection opened after freeze('subscribers') is not frozen.
    const later = await connectClient();
    later.socket.write('later');
    await later.receives('later');

    proxy.thaw();
    split.socket.write('back');
    await split.receives('back');
  });

  it('resetAll() resets both sides of every connection; new connections still work', async () => {
    const first = await connectClient();
    const second = await connectClient();
    proxy.freeze();
    proxy.resetAll();
    for (const peer of [first, second, ...echo.peers]) {
      await peer.until('the connection is closed', () => peer.closed);
      expect(peer.error?.code).toBe('ECONNRESET');
    }
    expect(proxy.connections()).toEqual({ open: 0, subscribers: 0 });

    proxy.thaw();
    const third = await connectClient();
    third.socket.write('again');
    await third.receives('again');
  });

  it('close() ends every connection and stops listening', async () => {
    const client = await connectClient();
    await proxy.close();
    await client.until('the connection is closed', () => client.closed);
    await echo.peers[0].until('the target side is closed', () => echo.peers[0].closed);
    const refused = new Peer(connect({ host: '127.0.0.1', port: proxy.port }));
    await refused.until('the connection is refused', () => refused.closed);
    expect(refused.error?.code).toBe('ECONNREFUSED');
    await proxy.close(); // idempotent (afterEach closes it again)
  });
});

describe('the freezing proxy, in front of redis-server', () => {
  let redis: LocalRedisServer;
  let proxy: FreezingProxy;
  const clients: Redis[] = [];

  const client = (url: string, options: { commandTimeout?: number } = {}) => {
    const created = new Redis(url, { maxRetriesPerRequest: 1, ...options });
    clients.push(created);
    return created;
  };

  beforeAll(async () => {
    redis = await startLocalRedis();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  beforeEach(async () => {
    proxy = await startFreezingProxy({ host: '127.0.0.1', port: redis.port });
  });

  afterEach(async () => {
    proxy.thaw();
    for (const created of clients.splice(0)) {
      const ended = created.status === 'end' ? Promise.resolve() : once(created, 'end');
      created.disconnect();
      await ended;
    }
    await proxy.close();
  });

  it('a frozen connection stays open and ready, and its commands time out unanswered', async () => {
    const frozen = client(proxy.url(), { commandTimeout: 200 });
    expect(await frozen.ping()).toBe('PONG');
    let closes = 0;
    frozen.on('close', () => closes++);

    proxy.freeze('all');
    await expect(frozen.ping()).rejects.toThrow('Command timed out');
    expect(frozen.status).toBe('ready');
    expect(closes).toBe(0);
    expect(proxy.connections().open).toBe(1);

    // Thawed (the late PONG dropped): a new connection goes through again.
    proxy.thaw();
    expect(await client(proxy.url(1)).ping()).toBe('PONG');
  });

  it("freeze('subscribers') cuts off the subscriber alone", async () => {
    const subscriber = client(proxy.url());
    const plain = client(proxy.url());
    const direct = client(redis.url);
    const messages: string[] = [];
    subscriber.on('message', (_channel: string, message: string) => messages.push(message));
    await subscriber.subscribe('news');
    expect(await plain.ping()).toBe('PONG');
    // The path works before the freeze.
    const first = once(subscriber, 'message');
    await direct.publish('news', 'before');
    await first;
    expect(proxy.connections()).toEqual({ open: 2, subscribers: 1 });

    proxy.freeze('subscribers');
    expect(await plain.ping()).toBe('PONG');
    // Redis still counts the subscriber and sends it the message; the proxy lets none of it through.
    expect(await direct.publish('news', 'during')).toBe(1);
    await quiet();
    expect(messages).toEqual(['before']);
    expect(subscriber.status).toBe('ready');
    expect(proxy.connections()).toEqual({ open: 2, subscribers: 1 });
  });
});
