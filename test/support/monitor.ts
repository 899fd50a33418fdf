// MONITOR on every server that holds keys: the one redis-server, or each primary of a Cluster (a
// Cluster has no MONITOR of its own: each node reports only what it executes).
import type { Cluster, Redis } from 'ioredis';
import { isCluster, primariesOf } from './redis-topology.js';

export interface MonitoredCommand {
  args: string[];
  /** Who sent it, as MONITOR says: `ip:port` of a client, or 'lua' for a command run by a script. */
  source: string;
}

export interface CommandWatch {
  /** Every command reported so far, on all servers, in the order each server reported them. */
  readonly seen: MonitoredCommand[];
  /**
   * Stops watching once everything sent before this call has been reported: Redis executes commands
   * one at a time and MONITOR reports them in that order, so a marker sent to each server and
   * reported back by each comes after all of them. Call it in a `finally`: it always disconnects.
   */
  stop(): Promise<void>;
}

/**
 * MONITOR on `server` (ioredis's `monitor()`, done here so a failed start can be disconnected), again
 * if ioredis misread the first line (see `watchCommands`).
 */
async function startMonitor(server: Redis, attempts = 3): Promise<Redis> {
  const monitor = server.duplicate({ monitor: true, lazyConnect: false });
  // A misread line can also come right after MONITOR's OK, in the same read, before `watchCommands`
  // listens: an 'error' with no listener would throw. Lines before the start marker do not count
  // anyway; from the marker on, `watchCommands` records errors itself.
  monitor.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      monitor.once('error', reject);
      monitor.once('monitoring', () => {
        monitor.off('error', reject);
        resolve();
      });
    });
    return monitor;
  } catch (error) {
    monitor.disconnect();
    if (attempts <= 1 || !String((error as Error).message).includes('Command queue state error')) throw error;
    return startMonitor(server, attempts - 1);
  }
}

/**
 * Starts MONITOR on each server `redis` (a client of the test Redis) talks to. Resolves once every
 * monitor has reported a start marker: only what is sent after that is in `seen`. (ioredis can
 * misread a line reported in the same read as MONITOR's own OK, "Command queue state error": such a
 * line from before the start marker is dropped, not turned into a failure of the test.)
 */
export async function watchCommands(redis: Redis | Cluster): Promise<CommandWatch> {
  const servers = isCluster(redis) ? await primariesOf(redis) : [redis];
  const monitors = await Promise.all(servers.map((server) => startMonitor(server)));
  const seen: MonitoredCommand[] = [];
  const id = `${process.pid}-${Date.now()}-${Math.random()}`;
  const startMarker = `start-of-watch-${id}`;
  const marker = `end-of-watch-${id}`;
  const errors: Error[] = [];
  let started = 0;
  const startsSeen = monitors.map(
    (monitor) =>
      new Promise<void>((resolve) => {
        let live = false;
        monitor.on('error', (error: Error) => {
          if (live) errors.push(error);
        });
        monitor.on('monitor', (_time: string, args: string[], source: string) => {
          if (args[0]?.toLowerCase() !== 'echo') {
            if (live && started === monitors.length) seen.push({ args, source });
            return;
          }
          if (args[1] === startMarker) {
            live = true;
            started++;
            resolve();
          }
        });
      }),
  );
  await Promise.all(servers.map((server) => server.echo(startMarker)));
  await Promise.all(startsSeen);
  const markersSeen = monitors.map(
    (monitor) =>
      new Promise<void>((resolve) => {
        monitor.on('monitor', (_time: string, args: string[]) => {
          if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) resolve();
        });
      }),
  );
  return {
    seen,
    stop: async () => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('MONITOR did not report the end marker within 5 s')), 5_000);
      });
      try {
        await Promise.race([Promise.all(servers.map((server) => server.echo(marker))), late]);
        await Promise.race([Promise.all(markersSeen), late]);
      } finally {
        clearTimeout(timer);
        // Always: a monitor left connected would keep the test process alive.
        for (const monitor of monitors) monitor.disconnect();
      }
      if (errors.length > 0) throw errors[0];
    },
  };
}
