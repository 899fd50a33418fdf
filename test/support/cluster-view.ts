// What one node of a Redis Cluster says about the cluster (CLUSTER INFO, CLUSTER NODES), for tests
// that watch a failover happen: which node is primary of which slots, and whether the cluster is ok.
import { Redis } from 'ioredis';

export interface ClusterNodeView {
  id: string;
  port: number;
  flags: string[];
  /** The id of its primary, for a replica; '-' for a primary. */
  primaryId: string;
  /** Slot ranges it serves, as [from, to] (inclusive). */
  slots: Array<[number, number]>;
}

export interface ClusterView {
  /** CLUSTER INFO's cluster_state: 'ok' once every slot is served. */
  state: string;
  nodes: ClusterNodeView[];
}

/** Asks the node on `port` (a fresh connection, closed again); rejects when it does not answer. */
export async function clusterView(port: number): Promise<ClusterView> {
  const node = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
  node.on('error', () => undefined);
  try {
    const info = (await node.cluster('INFO')) as string;
    const state = /cluster_state:(\w+)/.exec(info)?.[1] ?? 'unknown';
    // `<id> <ip:port@cport> <flags> <primary id> <ping> <pong> <epoch> <link> <slot ranges...>`
    const nodes = ((await node.cluster('NODES')) as string)
      .trim()
      .split('\n')
      .map((line) => {
        const [id, address, flags, primaryId, , , , , ...slots] = line.split(' ');
        return {
          id,
          port: Number(address.split('@')[0].split(':').pop()),
          flags: flags.split(','),
          primaryId,
          slots: slots
            .filter((range) => !range.startsWith('[')) // slots being migrated
            .map((range) => {
              const [from, to = from] = range.split('-').map(Number);
              return [from, to] as [number, number];
            }),
        };
      });
    return { state, nodes };
  } finally {
    node.disconnect();
  }
}

/** Whether `slot` falls in one of `ranges`. */
export function servesSlot(ranges: Array<[number, number]>, slot: number): boolean {
  return ranges.some(([from, to]) => slot >= from && slot <= to);
}

/**
 * Whether the node on `port` sees the cluster ok with node `heirId` a primary serving slots: a
 * replica's promotion done, as that node knows it.
 */
export async function promotedAsSeenBy(port: number, heirId: string): Promise<boolean> {
  const view = await clusterView(port);
  const promoted = view.nodes.find((node) => node.id === heirId);
  return view.state === 'ok' && !!promoted?.flags.includes('master') && promoted.slots.length > 0;
}
