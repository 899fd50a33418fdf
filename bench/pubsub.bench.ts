/**
 * What the cache's pub/sub costs a Redis Cluster: messages handled per node per operation, on a
 * throwaway 3 primaries + 3 replicas cluster (tools/local-redis-cluster.mjs, started here, stopped at
 * the end). A classic PUBLISH on a Cluster travels to every node over the cluster bus, subscribers or
 * not; an SPUBLISH only to the shard that serves its channel's slot.
 *
 * Two Nest application contexts share each namespace, as two instances of an app would (both
 * subscribe). Workloads, each its own window:
 * 1. cold misses: `@Cacheable` (lock on), one caller per key, so nobody waits for the lease;
 * 2. contended misses: 20 callers per key, 10 in each app, so one app waits for the other's load;
 * 3. `@CachePut` writes, both apps with an L1 tier (each write announces its key to the L1s);
 * 4. `invalidateTags(tag)`; 5. `clear('prefix:')`.
 * Each under `shardedPubSub: false` and `true`, in the same run; a library without the option (the
 * commit before it) runs one configuration.
 *
 * Counted per node: its own PUBLISH and SPUBLISH executions (INFO commandstats, which counts a
 * PUBLISH run inside a script too: checked at start) plus the publish messages it received over the
 * cluster bus (CLUSTER INFO `cluster_stats_messages_publish[shard]_received`). Every instance
 * publishes a heartbeat a second on its subscription: an idle window measures that rate per node,
 * and each workload window has it subtracted (the `hb` column: how much was). The tag window starts
 * after one unmeasured invalidation per app, so that whether to announce to L1s (an EXISTS answer
 * trusted 500 ms, l1-presence.ts) is known, as in a steady stream of calls.
 *
 * Run: npm run bench:pubsub
 * Knobs: BENCH_OPS (1,000 cold misses and puts; a fifth of that for contended keys, tag
 * invalidations and clears), BENCH_IDLE_MS (3,000), BENCH_DEADLINE_S (120).
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { subscribe } from 'node:diagnostics_channel';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import {
  CACHE_CHANNELS,
  CachePut,
  CacheService,
  Cacheable,
  RedisCacheModule,
  type CacheLeaseWaitEvent,
  type RedisCacheModuleOptions,
} from '../lib/index.js';
import { resolveCacheOptions } from '../lib/options/resolve-options.js';
import type { LocalRedisCluster, LocalRedisClusterNode } from '../tools/local-redis-cluster.mjs';
import { packageVersion } from './support/package-version.js';

// bench/tsconfig.json copies only tools/local-redis-server.mjs beside the compiled files: the
// cluster launcher is loaded from the sources (.tmp/bench/bench/ -> the repository's root).
const { startLocalRedisCluster } = (await import(
  new URL('../../../tools/local-redis-cluster.mjs', import.meta.url).href
)) as typeof import('../tools/local-redis-cluster.mjs');

const OPS = Number(process.env.BENCH_OPS ?? 1_000);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 3_000);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 120);
const CALLERS_PER_KEY = 20;
/** Long enough that the other app's lease request arrives while the load runs. */
const CONTENDED_LOAD_MS = 50;
/** Calls in flight at once, per workload. */
const CONCURRENCY = 32;
/** Contended keys loaded at once (each with CALLERS_PER_KEY callers). */
const CONTENDED_WAVE = 25;
/** Lets bus messages reach every node before a window's counters are read. */
const SETTLE_MS = 150;

/** The pub/sub counters of one node. */
interface Counters {
  publish: number;
  spublish: number;
  busSent: number;
  busReceived: number;
}
type Snapshot = Counters[];

/** A node and what to call it in the table: P1..P3 by port, Rn the replica of Pn. */
interface LabelledNode extends LocalRedisClusterNode {
  label: string;
  client: Redis;
}

interface Row {
  workload: string;
  config: string;
  ops: number;
  /** Per node: executions + bus publishes received, per op, heartbeats subtracted. */
  handled: number[];
  busSentPerOp: number;
  /** The heartbeat messages subtracted, all nodes, per op. */
  heartbeatPerOp: number;
  note: string;
}

@Injectable()
class BenchCatalog {
  loads = 0;

  @Cacheable({ key: 'cold:{0}', ttl: 600, lock: true })
  async cold(id: number): Promise<{ id: number }> {
    this.loads++;
    return { id };
  }

  @Cacheable({ key: 'hot:{0}', ttl: 600, lock: true })
  async contended(id: number): Promise<{ id: number }> {
    this.loads++;
    await sleep(CONTENDED_LOAD_MS);
    return { id };
  }

  @CachePut({ key: 'put:{0}', ttl: 600 })
  async put(id: number, version: number): Promise<{ id: number; version: number }> {
    return { id, version };
  }
}

/** One instance of the app: a Nest application context on the cluster. */
async function startApp(options: RedisCacheModuleOptions): Promise<INestApplicationContext> {
  @Module({ imports: [RedisCacheModule.forRoot(options)], providers: [BenchCatalog] })
  class PubsubBenchModule {}
  return NestFactory.createApplicationContext(PubsubBenchModule, { logger: false });
}

async function readCounters(client: Redis): Promise<Counters> {
  const [clusterInfo, commandStats] = await Promise.all([client.cluster('INFO'), client.info('commandstats')]);
  const field = (text: string, name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  const calls = (command: string) =>
    Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(commandStats)?.[1] ?? 0);
  const bus = (direction: 'sent' | 'received') =>
    field(clusterInfo, `cluster_stats_messages_publish_${direction}`) +
    field(clusterInfo, `cluster_stats_messages_publishshard_${direction}`);
  return { publish: calls('publish'), spublish: calls('spublish'), busSent: bus('sent'), busReceived: bus('received') };
}

const snapshot = (nodes: readonly LabelledNode[]): Promise<Snapshot> =>
  Promise.all(nodes.map((node) => readCounters(node.client)));

const delta = (before: Snapshot, after: Snapshot): Snapshot =>
  after.map((a, i) => ({
    publish: a.publish - before[i].publish,
    spublish: a.spublish - before[i].spublish,
    busSent: a.busSent - before[i].busSent,
    busReceived: a.busReceived - before[i].busReceived,
  }));

/** What a node handled: the publishes it executed and the ones it received from other nodes. */
const handled = (c: Counters) => c.publish + c.spublish + c.busReceived;

/** Runs `op(0..count-1)` with CONCURRENCY calls in flight. */
async function runAll(count: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await op(next++);
    }),
  );
}

/** Per node, counters per ms while the apps only beat their heartbeats. */
async function idleRate(nodes: readonly LabelledNode[], what: string): Promise<Snapshot> {
  const before = await snapshot(nodes);
  const started = performance.now();
  await sleep(IDLE_MS);
  const counted = delta(before, await snapshot(nodes));
  const ms = performance.now() - started;
  const perSecond = (c: Counters) => ((c.publish + c.spublish + c.busReceived) * 1_000) / ms;
  console.log(
    `idle, ${what}: ${counted.reduce((sum, c) => sum + perSecond(c), 0).toFixed(1)} messages/s handled ` +
      `(${counted.map((c, i) => `${nodes[i].label} ${perSecond(c).toFixed(1)}`).join(', ')}); ` +
      `executed: ${counted.reduce((sum, c) => sum + c.publish, 0)} PUBLISH, ` +
      `${counted.reduce((sum, c) => sum + c.spublish, 0)} SPUBLISH in ${(ms / 1_000).toFixed(1)} s`,
  );
  return counted.map((c) => ({
    publish: c.publish / ms,
    spublish: c.spublish / ms,
    busSent: c.busSent / ms,
    busReceived: c.busReceived / ms,
  }));
}

/** One workload's window: the counters' deltas, less the heartbeats' rate × the window. */
async function measure(
  nodes: readonly LabelledNode[],
  heartbeats: Snapshot,
  row: Pick<Row, 'workload' | 'config' | 'ops'>,
  run: () => Promise<string>,
): Promise<Row> {
  const before = await snapshot(nodes);
  const started = performance.now();
  const note = await run();
  await sleep(SETTLE_MS);
  const counted = delta(before, await snapshot(nodes));
  const ms = performance.now() - started;
  const beats = heartbeats.map((rate) => ({
    handled: handled(rate) * ms,
    busSent: rate.busSent * ms,
  }));
  return {
    ...row,
    handled: counted.map((c, i) => (handled(c) - beats[i].handled) / row.ops),
    busSentPerOp: counted.reduce((sum, c, i) => sum + c.busSent - beats[i].busSent, 0) / row.ops,
    heartbeatPerOp: beats.reduce((sum, b) => sum + b.handled, 0) / row.ops,
    note,
  };
}

/** Which counters one PUBLISH, one PUBLISH inside EVAL and one SPUBLISH move, on which nodes. */
async function probeCounting(nodes: readonly LabelledNode[]): Promise<void> {
  const origin = nodes[0];
  const probes: Array<[string, () => Promise<unknown>]> = [
    [`PUBLISH on ${origin.label}`, () => origin.client.publish('pubsub-bench:probe', 'x')],
    [
      `EVAL on ${origin.label} running PUBLISH`,
      () => origin.client.eval("return redis.call('PUBLISH', ARGV[1], ARGV[2])", 0, 'pubsub-bench:probe', 'x'),
    ],
    [`SPUBLISH on ${origin.label} (a channel of its slots)`, () => origin.client.spublish(ownChannel(origin), 'x')],
    [
      `EVAL on ${origin.label} running SPUBLISH`,
      () => origin.client.eval("return redis.call('SPUBLISH', KEYS[1], ARGV[1])", 1, ownChannel(origin), 'x'),
    ],
  ];
  console.log('\nWhat one message moves (no app running), per node: executions / bus sent / bus received');
  console.log(`${''.padEnd(40)}${nodes.map((n) => n.label.padStart(10)).join('')}`);
  for (const [label, send] of probes) {
    const before = await snapshot(nodes);
    await send();
    await sleep(SETTLE_MS);
    const counted = delta(before, await snapshot(nodes));
    console.log(
      `${label.padEnd(40)}${counted
        .map((c) => `${c.publish + c.spublish}/${c.busSent}/${c.busReceived}`.padStart(10))
        .join('')}`,
    );
  }
}

/** A channel name in a slot `node` serves, found once by asking the node for CLUSTER KEYSLOT. */
const ownChannels = new Map<string, string>();
function ownChannel(node: LabelledNode): string {
  const channel = ownChannels.get(node.label);
  if (!channel) throw new Error(`no channel found for ${node.label}`);
  return channel;
}
async function findOwnChannel(node: LabelledNode): Promise<void> {
  // Each range lists its primary first, then its replicas.
  const mine = (await node.client.cluster('SLOTS')).filter(([, , primary]) => primary?.[1] === node.port);
  for (let i = 0; i < 10_000; i++) {
    const channel = `pubsub-bench:probe:${i}`;
    const slot = Number(await node.client.cluster('KEYSLOT', channel));
    if (mine.some(([from, to]) => slot >= from && slot <= to)) {
      ownChannels.set(node.label, channel);
      return;
    }
  }
  throw new Error(`no channel of ${node.label}'s slots found`);
}

/** The nodes labelled P1..P3 (primaries by port) and R1..R3 (the replica of each), connected. */
async function labelNodes(cluster: LocalRedisCluster): Promise<LabelledNode[]> {
  const connect = (node: LocalRedisClusterNode) => new Redis({ host: node.host, port: node.port, lazyConnect: false });
  const primaries = cluster.primaries.map((node, i) => ({ ...node, label: `P${i + 1}`, client: connect(node) }));
  const replicas: LabelledNode[] = [];
  for (const node of cluster.replicas) {
    const client = connect(node);
    const masterPort = Number(/^master_port:(\d+)/m.exec(await client.info('replication'))?.[1]);
    const index = primaries.findIndex((primary) => primary.port === masterPort);
    replicas.push({ ...node, label: `R${index + 1}`, client });
  }
  replicas.sort((a, b) => a.label.localeCompare(b.label));
  return [...primaries, ...replicas];
}

/** Counts the callers that waited for another app's load, per namespace (the keys they waited on). */
const waitedKeys = new Map<string, Set<string>>();
subscribe(CACHE_CHANNELS.leaseWait, (message) => {
  const { namespace, key } = message as CacheLeaseWaitEvent;
  if (!waitedKeys.has(namespace)) waitedKeys.set(namespace, new Set());
  waitedKeys.get(namespace)!.add(key);
});

async function runConfiguration(
  cluster: LocalRedisCluster,
  nodes: readonly LabelledNode[],
  config: string,
  sharded: boolean | undefined,
): Promise<Row[]> {
  const rows: Row[] = [];
  const base = (namespace: string): RedisCacheModuleOptions & { shardedPubSub?: boolean } => ({
    redis: { cluster: { nodes: cluster.nodes } },
    namespace,
    ttl: '10m',
    lock: true,
    ...(sharded === undefined ? {} : { shardedPubSub: sharded }),
  });
  const tag = config.replace(/\W+/g, '-');

  // No L1 anywhere in this namespace: @Cacheable misses, tag invalidations, prefix clears.
  const plainNamespace = `pubsub-bench-${tag}`;
  const plain = await Promise.all([startApp(base(plainNamespace)), startApp(base(plainNamespace))]);
  try {
    const catalogs = plain.map((app) => app.get(BenchCatalog));
    const caches = plain.map((app) => app.get(CacheService));
    // One of each, unmeasured: scripts loaded, prefix markers created.
    await catalogs[0].cold(-1);
    await caches[0].invalidateTags('bench-tag');
    await caches[1].clear('bench-prefix:');
    await sleep(500);
    const heartbeats = await idleRate(nodes, `${config}, two apps without L1`);

    rows.push(
      await measure(nodes, heartbeats, { workload: 'cold miss, nobody waits', config, ops: OPS }, async () => {
        const loads = catalogs[0].loads + catalogs[1].loads;
        await runAll(OPS, (i) => catalogs[i % 2].cold(i));
        return `${catalogs[0].loads + catalogs[1].loads - loads} loads`;
      }),
    );

    const keys = Math.max(1, Math.round(OPS / 5));
    rows.push(
      await measure(
        nodes,
        heartbeats,
        { workload: `contended miss, ${CALLERS_PER_KEY} callers/key`, config, ops: keys },
        async () => {
          const loads = catalogs[0].loads + catalogs[1].loads;
          const waitedBefore = waitedKeys.get(plainNamespace)?.size ?? 0;
          for (let wave = 0; wave < keys; wave += CONTENDED_WAVE) {
            const calls: Array<Promise<unknown>> = [];
            for (let id = wave; id < Math.min(keys, wave + CONTENDED_WAVE); id++) {
              for (let c = 0; c < CALLERS_PER_KEY; c++) calls.push(catalogs[c % 2].contended(id));
            }
            await Promise.all(calls);
          }
          const waited = (waitedKeys.get(plainNamespace)?.size ?? 0) - waitedBefore;
          return `${catalogs[0].loads + catalogs[1].loads - loads} loads, ${waited} keys waited on`;
        },
      ),
    );

    // Whether a tag invalidation is announced to L1s is answered by an EXISTS of the namespace's
    // presence marker, trusted 500 ms: after a pause, the calls sent before its answer announce (one
    // classic PUBLISH each). One unmeasured call per app, answered, starts the window as a steady
    // stream of calls would.
    await Promise.all(caches.map((cache) => cache.invalidateTags('warm-up')));
    await sleep(20);
    const invalidations = Math.max(1, Math.round(OPS / 5));
    rows.push(
      await measure(nodes, heartbeats, { workload: 'invalidateTags(tag)', config, ops: invalidations }, async () => {
        await runAll(invalidations, (i) => caches[i % 2].invalidateTags('bench-tag'));
        return '';
      }),
    );
    rows.push(
      await measure(nodes, heartbeats, { workload: "clear('prefix:')", config, ops: invalidations }, async () => {
        await runAll(invalidations, (i) => caches[i % 2].clear('bench-prefix:'));
        return '';
      }),
    );
    const errors = caches.reduce((sum, cache) => sum + cache.stats().errors, 0);
    if (errors !== 0) throw new Error(`${config}: ${errors} cache errors`);
  } finally {
    await Promise.all(plain.map((app) => app.close()));
  }

  // Both instances keep an L1: every write is announced to them.
  const l1Namespace = `pubsub-bench-${tag}-l1`;
  const l1Options = { ...base(l1Namespace), l1: { max: 1_000, ttl: '1m' as const } };
  const withL1 = await Promise.all([startApp(l1Options), startApp(l1Options)]);
  try {
    const catalogs = withL1.map((app) => app.get(BenchCatalog));
    await catalogs[0].put(-1, 0);
    // L1 keeps values once its presence marker has settled (about 1 s); the idle window covers it.
    await sleep(500);
    const heartbeats = await idleRate(nodes, `${config}, two apps with L1`);
    rows.push(
      await measure(nodes, heartbeats, { workload: '@CachePut, L1 on both apps', config, ops: OPS }, async () => {
        await runAll(OPS, (i) => catalogs[i % 2].put(i, 1));
        return '';
      }),
    );
    const errors = withL1.reduce((sum, app) => sum + app.get(CacheService).stats().errors, 0);
    if (errors !== 0) throw new Error(`${config}, L1: ${errors} cache errors`);
  } finally {
    await Promise.all(withL1.map((app) => app.close()));
  }
  return rows;
}

function printRows(nodes: readonly LabelledNode[], rows: readonly Row[]): void {
  const num = (value: number) => (Math.abs(value) < 0.005 ? '0.00' : value.toFixed(2));
  const header = [
    'workload'.padEnd(32),
    'config'.padEnd(14),
    'ops'.padStart(6),
    ...nodes.map((node) => node.label.padStart(7)),
    'sum'.padStart(7),
    'bus tx'.padStart(7),
    'hb'.padStart(6),
    '  checks',
  ];
  console.log(header.join(''));
  for (const row of rows) {
    const sum = row.handled.reduce((a, b) => a + b, 0);
    console.log(
      [
        row.workload.padEnd(32),
        row.config.padEnd(14),
        String(row.ops).padStart(6),
        ...row.handled.map((value) => num(value).padStart(7)),
        num(sum).padStart(7),
        num(row.busSentPerOp).padStart(7),
        num(row.heartbeatPerOp).padStart(6),
        row.note ? `  ${row.note}` : '',
      ].join(''),
    );
  }
}

async function main(cluster: LocalRedisCluster): Promise<void> {
  const nodes = await labelNodes(cluster);
  try {
    console.log(
      `node ${process.version}, @nestjs/core ${packageVersion('@nestjs/core')}, ioredis ${packageVersion('ioredis')}, ` +
        `${(await nodes[0].client.info('server')).match(/^redis_version:(\S+)/m)?.[1] ?? '?'} cluster of ` +
        `${cluster.primaries.length} primaries + ${cluster.replicas.length} replicas on loopback; ` +
        `${cpus().length} CPUs (${cpus()[0]?.model.trim()})`,
    );
    console.log(`nodes: ${nodes.map((node) => `${node.label} :${node.port}`).join(', ')}`);
    await findOwnChannel(nodes[0]);
    await probeCounting(nodes);

    // The commit before the option ignores it: one configuration, as it always published.
    const hasOption = 'shardedPubSub' in resolveCacheOptions({});
    const configs: Array<[string, boolean | undefined]> = hasOption
      ? [
          ['sharded:false', false],
          ['sharded:true', true],
        ]
      : [['no option', undefined]];
    const rows: Row[] = [];
    for (const [config, sharded] of configs) rows.push(...(await runConfiguration(cluster, nodes, config, sharded)));

    console.log(
      '\nPub/sub messages handled per node per operation: PUBLISH/SPUBLISH executed there + publish messages it' +
        '\nreceived over the cluster bus. sum: all nodes; bus tx: bus messages sent, all nodes; hb: heartbeat' +
        `\nmessages subtracted (all nodes, per op), from an idle window of ${IDLE_MS} ms with the same two apps.`,
    );
    // Grouped by workload, the configurations side by side.
    const workloads = [...new Set(rows.map((row) => row.workload))];
    printRows(
      nodes,
      workloads.flatMap((workload) => rows.filter((row) => row.workload === workload)),
    );
  } finally {
    await Promise.all(nodes.map((node) => node.client.quit()));
  }
}

const started = performance.now();
const cluster = await startLocalRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
const abort = (reason: string, code: number) => {
  console.error(reason);
  void cluster.stop().finally(() => process.exit(code));
};
const deadline = setTimeout(
  () => abort(`pubsub.bench: still running after ${DEADLINE_S} s; stopped`, 1),
  DEADLINE_S * 1_000,
);
deadline.unref();
process.once('SIGINT', () => abort('pubsub.bench: interrupted', 130));
process.once('SIGTERM', () => abort('pubsub.bench: terminated', 143));
try {
  await main(cluster);
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await cluster.stop();
  clearTimeout(deadline);
}
console.log(`(whole run ${((performance.now() - started) / 1_000).toFixed(1)} s)`);
