// Starts a throwaway Redis Cluster on loopback ports and stops it again.
//
// Each node is a `startLocalRedis` server with cluster mode on; `redis-cli --cluster create` then
// assigns the slots (and the replicas). Readiness is asked of every node, never waited for by a
// sleep: the launcher returns only once each node reports `cluster_state:ok`, knows every other
// node, and sees all 16384 slots served by a connected primary (and, with replicas, each replica's
// link to its primary is up). Plain ESM with a .d.mts beside it, like local-redis-server.mjs.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { startLocalRedis } from './local-redis-server.mjs';
import { command, parseInfo } from './redis-command.mjs';

const HOST = '127.0.0.1';
const SLOTS = 16384;
/** A port collision between picking a free port and redis-server binding it is retried this often. */
const START_ATTEMPTS = 3;

export const REDIS_CLI_INSTALL_HINT =
  'redis-cli was not found on PATH. It ships with redis-server (Debian/Ubuntu: `sudo apt-get install -y redis-server`, ' +
  'macOS: `brew install redis`).';

export async function startLocalRedisCluster(options = {}) {
  const primaries = options.primaries ?? 3;
  const replicasPerPrimary = options.replicasPerPrimary ?? 0;
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  // redis-cli --cluster create refuses fewer than 3 primaries.
  if (!Number.isInteger(primaries) || primaries < 3)
    throw new Error(`primaries must be an integer >= 3, got ${primaries}`);
  if (!Number.isInteger(replicasPerPrimary) || replicasPerPrimary < 0) {
    throw new Error(`replicasPerPrimary must be an integer >= 0, got ${replicasPerPrimary}`);
  }
  const total = primaries * (1 + replicasPerPrimary);

  const dir = mkdtempSync(join(tmpdir(), 'nestjs-redis-cluster-'));
  const servers = [];
  const stopAll = async () => {
    // The servers' child processes are unref'd: without this timer a script whose last work is
    // `await cluster.stop()` would exit before the nodes did, leaving them and their folders behind.
    const keepAlive = setInterval(() => {}, 1_000);
    try {
      await Promise.all(servers.map((server) => server.stop()));
    } finally {
      clearInterval(keepAlive);
      rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    const started = await Promise.allSettled(Array.from({ length: total }, () => startClusterNode(dir)));
    // Keep every node that did start, so a failure of another still stops it.
    for (const result of started) if (result.status === 'fulfilled') servers.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    await createCluster(servers, replicasPerPrimary, readyTimeoutMs);
    const topology = await waitUntilClusterReady(servers, primaries, replicasPerPrimary, readyTimeoutMs);
    let stopped;
    return {
      nodes: servers.map((server) => ({ host: HOST, port: server.port })),
      primaries: topology.primaries,
      replicas: topology.replicas,
      pids: servers.map((server) => server.pid),
      // A crash of one node (SIGKILL, no shutdown), for failover tests; the others keep running.
      kill: (node) => {
        const server = servers.find((candidate) => candidate.port === node.port);
        if (!server) throw new Error(`no node of this cluster listens on port ${node.port}`);
        return server.kill();
      },
      stop: () => (stopped ??= stopAll()),
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * One cluster node. The cluster bus gets its own free port (`cluster-port`) instead of Redis's
 * default port + 10000, which may be taken, and is past 65535 for any port above 55535 (a good
 * part of Linux's ephemeral range, where free ports come from).
 */
async function startClusterNode(dir) {
  let lastError;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const [port, busPort] = await freePorts(2);
    try {
      // startLocalRedis adds `--save '' --appendonly no` and a temporary --dir of its own.
      return await startLocalRedis({
        port,
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-port',
          String(busPort),
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          // A replica's first sync would otherwise wait 5 s for more replicas to share the transfer.
          '--repl-diskless-sync-delay',
          '0',
        ],
      });
    } catch (err) {
      // Most likely another process took one of the ports in the meantime: pick new ones.
      lastError = err;
    }
  }
  throw lastError;
}

/** `count` distinct free loopback ports: all listened on at once, so none is handed out twice. */
async function freePorts(count) {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve, reject) => {
          const server = createServer();
          server.unref();
          server.on('error', reject);
          server.listen(0, HOST, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => server.address().port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(() => resolve()))));
  return ports;
}

function createCluster(servers, replicasPerPrimary, timeoutMs) {
  const args = [
    '--cluster',
    'create',
    ...servers.map((server) => `${HOST}:${server.port}`),
    '--cluster-replicas',
    String(replicasPerPrimary),
    '--cluster-yes',
  ];
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err?.code === 'ENOENT') return reject(new Error(REDIS_CLI_INSTALL_HINT, { cause: err }));
      // redis-cli exits 0 on some failures, but always ends a good create with this line.
      if (err || !stdout.includes(`[OK] All ${SLOTS} slots covered`)) {
        return reject(
          new Error(`redis-cli --cluster create failed:\n${stdout}\n${stderr}`, { cause: err ?? undefined }),
        );
      }
      resolve();
    });
  });
}

/**
 * Polls every node until it sees the whole cluster healthy. Returns the primaries and replicas as
 * the cluster assigned them (redis-cli picks which node becomes a replica of which).
 */
async function waitUntilClusterReady(servers, primaries, replicasPerPrimary, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let problem;
  for (;;) {
    try {
      const views = await Promise.all(
        servers.map((server) => nodeView(server.port, servers.length, replicasPerPrimary)),
      );
      problem = views.find((view) => view.problem)?.problem;
      if (!problem) {
        const topology = views[0].topology;
        if (topology.primaries.length === primaries) return topology;
        problem = `${topology.primaries.length} primaries instead of ${primaries}`;
      }
    } catch (err) {
      problem = err.message;
    }
    if (Date.now() > deadline) throw new Error(`Redis Cluster not ready after ${timeoutMs} ms: ${problem}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** What one node thinks of the cluster: `{ problem }` while something is not ready, else `{ topology }`. */
async function nodeView(port, total, replicasPerPrimary) {
  const info = parseInfo(await command(port, ['CLUSTER', 'INFO']));
  const where = `${HOST}:${port}`;
  if (info.cluster_state !== 'ok') return { problem: `${where} cluster_state:${info.cluster_state}` };
  if (Number(info.cluster_slots_ok) !== SLOTS) return { problem: `${where} cluster_slots_ok:${info.cluster_slots_ok}` };
  if (Number(info.cluster_known_nodes) !== total) {
    return { problem: `${where} knows ${info.cluster_known_nodes} of ${total} nodes` };
  }

  // CLUSTER NODES: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot> ...`
  const lines = (await command(port, ['CLUSTER', 'NODES'])).trim().split('\n');
  const entries = lines.map((line) => {
    const [id, address, flags, masterId, , , , link, ...slots] = line.split(' ');
    return { id, port: Number(address.split('@')[0].split(':').pop()), flags: flags.split(','), masterId, link, slots };
  });
  const unhealthy = entries.find(
    (entry) =>
      entry.link !== 'connected' || entry.flags.some((flag) => ['fail', 'fail?', 'handshake', 'noaddr'].includes(flag)),
  );
  if (unhealthy) return { problem: `${where} sees ${HOST}:${unhealthy.port} as ${unhealthy.flags} ${unhealthy.link}` };

  const masters = entries.filter((entry) => entry.flags.includes('master'));
  const covered = new Set();
  for (const master of masters) {
    for (const range of master.slots) {
      if (range.startsWith('[')) continue; // a slot being migrated or imported
      const [from, to = from] = range.split('-').map(Number);
      for (let slot = from; slot <= to; slot++) covered.add(slot);
    }
  }
  if (covered.size !== SLOTS) return { problem: `${where} sees ${covered.size} of ${SLOTS} slots served` };
  for (const master of masters) {
    const replicas = entries.filter((entry) => entry.masterId === master.id).length;
    if (replicas !== replicasPerPrimary) {
      return { problem: `${where} sees ${replicas} replicas of ${HOST}:${master.port}, not ${replicasPerPrimary}` };
    }
  }

  const self = entries.find((entry) => entry.flags.includes('myself'));
  if (self?.flags.includes('slave')) {
    const replication = parseInfo(await command(port, ['INFO', 'replication']));
    if (replication.master_link_status !== 'up') return { problem: `${where} replica link is not up yet` };
  }

  const toNode = (entry) => ({ host: HOST, port: entry.port });
  return {
    topology: {
      primaries: masters.map(toNode).sort((a, b) => a.port - b.port),
      replicas: entries
        .filter((entry) => entry.flags.includes('slave'))
        .map(toNode)
        .sort((a, b) => a.port - b.port),
    },
  };
}
