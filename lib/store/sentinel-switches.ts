import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';

/** Where every sentinel announces a failover: `<master> <old-ip> <old-port> <new-ip> <new-port>`. */
const SWITCH_CHANNEL = '+switch-master';
/**
 * How long a demoted primary is left after its failover: by then Sentinel has made it a replica (8-10 s
 * after a manual failover), and an address reused for a primary later is not refused for ever.
 */
const DEMOTED_FOR_MS = 60_000;

/** A Sentinel client's options this follower reads (the client's own: sentinels, master name, NAT map, credentials). */
export type SentinelClientOptions = Pick<
  RedisOptions,
  'sentinels' | 'name' | 'natMap' | 'sentinelUsername' | 'sentinelPassword' | 'sentinelTLS' | 'connectTimeout'
>;

/** A connection the follower may move: ioredis's `Redis` as far as it is used here. */
export interface FollowedConnection {
  readonly status: string;
  readonly stream?: { remoteAddress?: string; remotePort?: number } | undefined;
  on(event: 'ready', listener: () => void): unknown;
  off(event: 'ready', listener: () => void): unknown;
  disconnect(reconnect?: boolean): void;
}

/** One failover as the sentinels announce it (each sentinel says it once, a few ms apart). */
interface Switch {
  /** `old>new`, the same in every sentinel's message about it. */
  readonly key: string;
  /** When its first announcement was heard (`performance.now()`). */
  readonly at: number;
  /**
   * The addresses (`ip:port`) of the primary it demoted, as the client would connect to it (`natMap`
   * applied, a host name looked up); empty until known.
   */
  demoted: ReadonlySet<string>;
}

/**
 * Moves the module's connections off a Sentinel master's primary as soon as the sentinels announce
 * its failover (+switch-master), instead of when the old primary drops its clients: after a manual
 * failover or a partition it stays a writable primary for 8-10 s, and an eviction made there is lost
 * when it resyncs as a replica.
 *
 * ioredis's own `failoverDetector` does this by disconnecting at every +switch-master, of any master,
 * wherever the client is then. Two of those moments break the cache (ioredis 6.0): a disconnect while
 * the client asks a sentinel for the primary ends the client for good (status 'end', never
 * reconnected), and each sentinel announces the failover on its own, up to tens of ms apart, so a
 * client that has already reached the new primary is dropped again (a second outage). This follower
 * leaves a connection only when it is ready and on the demoted primary; one that is connecting asks
 * the sentinels afresh anyway.
 */
export class SentinelSwitches {
  private readonly watchers: Redis[] = [];
  /** The connections followed, each with its 'ready' listener. */
  private readonly followed = new Map<FollowedConnection, () => void>();
  private last: Switch | undefined;

  constructor(private readonly options: SentinelClientOptions) {}

  /** Subscribes to +switch-master on every configured sentinel. */
  start(): void {
    const { sentinels = [], sentinelUsername, sentinelPassword, sentinelTLS, connectTimeout } = this.options;
    for (const { host, port } of sentinels) {
      const watcher = new Redis({
        host,
        port: port ?? 26379,
        username: sentinelUsername,
        password: sentinelPassword,
        tls: sentinelTLS,
        connectTimeout,
        connectionName: 'nestjs-redis-cache',
        // A sentinel that is down or restarting is asked again; the others announce meanwhile.
        retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
        maxRetriesPerRequest: null,
      });
      watcher.on('error', () => undefined);
      watcher.on('message', (_channel: string, message: string) => this.heard(message));
      watcher.subscribe(SWITCH_CHANNEL).catch(() => undefined);
      this.watchers.push(watcher);
    }
  }

  /** Moves `connection` along with the master's failovers until the returned function or `stop` is called. */
  follow(connection: FollowedConnection): () => void {
    const ready = () => this.leaveIfDemoted(connection);
    this.followed.set(connection, ready);
    connection.on('ready', ready);
    return () => this.unfollow(connection);
  }

  /** Closes the sentinels' connections and stops following every connection. */
  stop(): void {
    for (const watcher of this.watchers.splice(0)) watcher.disconnect();
    for (const connection of [...this.followed.keys()]) this.unfollow(connection);
  }

  private unfollow(connection: FollowedConnection): void {
    const ready = this.followed.get(connection);
    if (ready === undefined) return;
    connection.off('ready', ready);
    this.followed.delete(connection);
  }

  /** A sentinel's +switch-master message (`start` subscribes to them). */
  heard(message: string): void {
    const [name, oldHost, oldPort, newHost, newPort] = message.split(' ');
    if (name !== this.options.name || newPort === undefined) return;
    const key = `${oldHost}:${oldPort}>${newHost}:${newPort}`;
    // The same failover told by another sentinel: nothing more to leave.
    if (this.last?.key === key) return;
    const failover: Switch = { key, at: performance.now(), demoted: new Set() };
    this.last = failover;
    void addressesOf(this.natResolved(oldHost, Number(oldPort))).then((demoted) => {
      if (this.last !== failover) return;
      failover.demoted = demoted;
      for (const connection of this.followed.keys()) this.leaveIfDemoted(connection);
    });
  }

  /**
   * Reconnects `connection` (it asks the sentinels for the primary again) when it is on the primary
   * the last failover demoted. Only once it is ready: one that is connecting asks the sentinels
   * afresh anyway, and ioredis 6 ends a client disconnected while it asks a sentinel.
   */
  private leaveIfDemoted(connection: FollowedConnection): void {
    const last = this.last;
    if (!last || connection.status !== 'ready' || performance.now() - last.at > DEMOTED_FOR_MS) return;
    const peer = peerOf(connection);
    if (peer !== undefined && last.demoted.has(peer)) connection.disconnect(true);
  }

  /** Where a client connects for what a sentinel names `host:port` (ioredis's `natMap`). */
  private natResolved(host: string, port: number): { host: string; port: number } {
    const { natMap } = this.options;
    const key = `${host}:${port}`;
    return (typeof natMap === 'function' ? natMap(key) : natMap?.[key]) ?? { host, port };
  }
}

/** `ip:port` for each address of `host` (itself when it is an IP address; none when it cannot be looked up). */
async function addressesOf({ host, port }: { host: string; port: number }): Promise<Set<string>> {
  if (isIP(host)) return new Set([`${host}:${port}`]);
  const found = await lookup(host, { all: true }).catch(() => []);
  return new Set(found.map(({ address }) => `${address}:${port}`));
}

/** `address:port` of the server a connection is on (an IPv4 address without its IPv6 mapping). */
function peerOf(connection: FollowedConnection): string | undefined {
  const { remoteAddress, remotePort } = connection.stream ?? {};
  if (remoteAddress === undefined || remotePort === undefined) return undefined;
  return `${remoteAddress.replace(/^::ffff:/, '')}:${remotePort}`;
}
