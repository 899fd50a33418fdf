// Starts a throwaway Sentinel deployment on loopback ports and stops it again: a primary, one replica
// of it and three sentinels monitoring it under one master name.
//
// The primary and the replica are `startLocalRedis` servers; the sentinels are `redis-server <conf>
// --sentinel` processes (a sentinel must have a config file of its own, which it rewrites as it
// learns the topology). The sentinels judge an unanswering primary down after `downAfterMs` (1 s by
// default instead of Redis's 30 s), so a test sees a failover complete within a few seconds.
// Readiness is asked, never waited for by a sleep: the launcher returns once the replica's link is up
// and every sentinel names the primary, sees the replica and knows both other sentinels (without
// that, a failover could not be authorised). Plain ESM with a .d.mts beside it, like
// local-redis-server.mjs.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { REDIS_INSTALL_HINT, freePort, killOnExit, redisServerBinary, startLocalRedis } from './local-redis-server.mjs';
import { command, parseInfo } from './redis-command.mjs';

const HOST = '127.0.0.1';
/** A port collision between picking a free port and a sentinel binding it is retried this often. */
const START_ATTEMPTS = 3;
/** The last bytes of each sentinel's log kept for error messages (its +sdown, +odown, +switch-master...). */
const LOG_TAIL_BYTES = 8_192;

export async function startLocalRedisSentinel(options = {}) {
  const masterName = options.masterName ?? 'mymaster';
  const sentinelCount = options.sentinels ?? 3;
  const quorum = options.quorum ?? Math.floor(sentinelCount / 2) + 1;
  const downAfterMs = options.downAfterMs ?? 1_000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 10_000;
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  if (!Number.isInteger(sentinelCount) || sentinelCount < 1) {
    throw new Error(`sentinels must be an integer >= 1, got ${sentinelCount}`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(masterName)) throw new Error(`masterName must be a plain name, got '${masterName}'`);

  const dir = mkdtempSync(join(tmpdir(), 'nestjs-redis-sentinel-'));
  const servers = [];
  const sentinels = [];
  const stopAll = async () => {
    // Every child is unref'd: without this timer a script whose last work is `await deployment.stop()`
    // would exit before the processes did, leaving them and their folders behind.
    const keepAlive = setInterval(() => {}, 1_000);
    try {
      await Promise.all([...sentinels, ...servers].map((member) => member.stop()));
    } finally {
      clearInterval(keepAlive);
      rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    // A replica's first sync would otherwise wait 5 s for more replicas to share the transfer; the
    // replica gets the same setting because it is the one that serves syncs after a failover.
    const syncNow = ['--repl-diskless-sync-delay', '0'];
    const primary = await startLocalRedis({ args: syncNow });
    servers.push(primary);
    const replica = await startLocalRedis({ args: [...syncNow, '--replicaof', HOST, String(primary.port)] });
    servers.push(replica);
    await poll('the replica to sync with the primary', readyTimeoutMs, () => replicaProblem(replica.port));

    const monitor = { masterName, primaryPort: primary.port, quorum, downAfterMs, failoverTimeoutMs };
    const started = await Promise.allSettled(
      Array.from({ length: sentinelCount }, (_, i) => startSentinel(dir, i, monitor)),
    );
    for (const result of started) if (result.status === 'fulfilled') sentinels.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    await poll('the sentinels to agree on the deployment', readyTimeoutMs, () =>
      sentinelsProblem(sentinels, masterName, primary.port, replica.port),
    );

    const askPrimary = async () => {
      // Any sentinel that answers will do; the first that does is asked.
      let lastError;
      for (const sentinel of sentinels) {
        try {
          return await masterAddress(sentinel.port, masterName);
        } catch (err) {
          lastError = err;
        }
      }
      throw lastError;
    };
    const waitForPromotion = (fromPort, timeoutMs = 30_000) =>
      waitUntilPromoted(sentinels, masterName, fromPort, timeoutMs);

    let stopped;
    return {
      masterName,
      sentinels: sentinels.map((sentinel) => ({ host: HOST, port: sentinel.port })),
      primary,
      replica,
      pids: [...servers, ...sentinels].map((member) => member.pid),
      currentPrimary: askPrimary,
      waitForPromotion,
      failover: async (timeoutMs = 30_000) => {
        const from = await askPrimary();
        await command(sentinels[0].port, ['SENTINEL', 'FAILOVER', masterName]);
        return waitForPromotion(from.port, timeoutMs);
      },
      sentinelLogs: () => sentinels.map((sentinel) => sentinel.log()),
      stop: () => (stopped ??= stopAll()),
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** One sentinel on a free port, with its config file in `dir`; retried on a port collision. */
async function startSentinel(dir, index, monitor) {
  let lastError;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    try {
      return await spawnSentinel(dir, index, await freePort(), monitor);
    } catch (err) {
      // Most likely another process took the port in the meantime: pick a new one.
      lastError = err;
    }
  }
  throw lastError;
}

async function spawnSentinel(dir, index, port, { masterName, primaryPort, quorum, downAfterMs, failoverTimeoutMs }) {
  const binary = redisServerBinary();
  if (!binary) throw new Error(REDIS_INSTALL_HINT);
  const conf = join(dir, `sentinel-${index}-${port}.conf`);
  writeFileSync(
    conf,
    [
      `port ${port}`,
      `bind ${HOST}`,
      `dir ${dir}`,
      `sentinel monitor ${masterName} ${HOST} ${primaryPort} ${quorum}`,
      `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
      `sentinel failover-timeout ${masterName} ${failoverTimeoutMs}`,
      `sentinel parallel-syncs ${masterName} 1`,
      '',
    ].join('\n'),
  );
  // A sentinel logs to stdout; the tail is kept so a failover that does not happen can be explained.
  const child = spawn(binary, [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk) => {
    log = (log + chunk.toString()).slice(-LOG_TAIL_BYTES);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  // Like startLocalRedis: never keeps the parent's event loop alive, never outlives the parent.
  child.unref();
  child.stdout.unref?.();
  child.stderr.unref?.();
  killOnExit(child);

  try {
    await poll(`sentinel on port ${port} to answer PING`, 10_000, async () => {
      if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
      return (await command(port, ['PING']).catch(() => '')) === 'PONG' ? undefined : 'no PONG yet';
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`redis sentinel did not start on port ${port}: ${err.message}\n${log}`, { cause: err });
  }

  let stopped;
  const exited = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
    });
  const stop = async () => {
    child.ref();
    child.kill('SIGTERM');
    const escalate = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited();
    clearTimeout(escalate);
  };
  return { port, pid: child.pid ?? -1, log: () => log, stop: () => (stopped ??= stop()) };
}

/** Why the replica is not ready yet, or undefined once it is in sync. */
async function replicaProblem(port) {
  const info = parseInfo(await command(port, ['INFO', 'replication']));
  if (info.role !== 'slave') return `role is ${info.role}`;
  if (info.master_link_status !== 'up') return `master_link_status:${info.master_link_status}`;
  return undefined;
}

/** Why some sentinel does not see the deployment as started yet, or undefined once all do. */
async function sentinelsProblem(sentinels, masterName, primaryPort, replicaPort) {
  for (const { port } of sentinels) {
    const where = `sentinel ${HOST}:${port}`;
    const address = await masterAddress(port, masterName);
    if (address.port !== primaryPort) return `${where} names ${address.host}:${address.port} as the primary`;
    const master = pairs(await command(port, ['SENTINEL', 'MASTER', masterName]));
    if (master.flags !== 'master') return `${where} flags the primary ${master.flags}`;
    if (Number(master['num-other-sentinels']) !== sentinels.length - 1) {
      return `${where} knows ${master['num-other-sentinels']} of ${sentinels.length - 1} other sentinels`;
    }
    const replicas = (await command(port, ['SENTINEL', 'REPLICAS', masterName])).map(pairs);
    const replica = replicas.find((entry) => Number(entry.port) === replicaPort);
    if (!replica) return `${where} has not discovered the replica yet`;
    if (replica.flags !== 'slave' || replica['master-link-status'] !== 'ok') {
      return `${where} sees the replica as ${replica.flags}, link ${replica['master-link-status']}`;
    }
  }
  return undefined;
}

/**
 * Resolves once every sentinel names a primary other than `fromPort` — the same one — and that server
 * answers as a primary: what a client asking any sentinel now connects to.
 */
async function waitUntilPromoted(sentinels, masterName, fromPort, timeoutMs) {
  let promoted;
  try {
    await poll(`a primary other than port ${fromPort}`, timeoutMs, async () => {
      const answers = await Promise.all(
        sentinels.map(({ port }) => masterAddress(port, masterName).catch((err) => ({ error: err.message }))),
      );
      const ports = new Set(answers.map((answer) => answer.port));
      if (ports.size !== 1 || ports.has(undefined)) return `sentinels answer ${JSON.stringify(answers)}`;
      const [address] = answers;
      if (address.port === fromPort) return `sentinels still name port ${fromPort}`;
      const info = parseInfo(await command(address.port, ['INFO', 'replication']));
      if (info.role !== 'master') return `${address.host}:${address.port} is still a ${info.role}`;
      promoted = address;
      return undefined;
    });
  } catch (err) {
    const logs = sentinels.map((sentinel) => `--- sentinel ${sentinel.port}\n${sentinel.log()}`).join('\n');
    throw new Error(`${err.message}\n${logs}`, { cause: err });
  }
  return promoted;
}

async function masterAddress(port, masterName) {
  const reply = await command(port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName]);
  if (!Array.isArray(reply)) throw new Error(`sentinel ${HOST}:${port} does not monitor '${masterName}'`);
  return { host: reply[0], port: Number(reply[1]) };
}

/**
 * Calls `check` every 25 ms until it resolves to undefined (ready); otherwise it resolves to, or
 * throws, what is not ready yet, which the timeout error then names.
 */
async function poll(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let problem;
    try {
      problem = await check();
    } catch (err) {
      problem = err.message;
    }
    if (problem === undefined) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${problem}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A flat `[field, value, field, value, ...]` reply (SENTINEL MASTER, each of SENTINEL REPLICAS) as an object. */
function pairs(list) {
  const fields = {};
  for (let i = 0; i + 1 < list.length; i += 2) fields[list[i]] = list[i + 1];
  return fields;
}
