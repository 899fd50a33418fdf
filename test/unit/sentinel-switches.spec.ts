// The Sentinel failover follower's rules, on stand-in connections: which +switch-master message moves
// which connection. The real failovers are sentinel.spec.ts's.
import { EventEmitter } from 'node:events';
import { SentinelSwitches, type FollowedConnection } from '../../lib/store/sentinel-switches.js';

/** A connection that records its reconnects; `on(server)` puts it there, ready. */
class StandIn extends EventEmitter implements FollowedConnection {
  status = 'wait';
  stream: { remoteAddress?: string; remotePort?: number } | undefined;
  reconnects = 0;

  at(address: string, port: number, status = 'ready'): this {
    this.stream = { remoteAddress: address, remotePort: port };
    this.status = status;
    if (status === 'ready') this.emit('ready');
    return this;
  }

  disconnect(reconnect?: boolean): void {
    if (reconnect) this.reconnects++;
    this.status = 'reconnecting';
  }
}

/** Lets the follower look the demoted primary's address up (a promise, even for an IP address). */
const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('SentinelSwitches', () => {
  const follower = (natMap?: Record<string, { host: string; port: number }>) =>
    new SentinelSwitches({ name: 'mymaster', sentinels: [], natMap });

  it('reconnects a ready connection on the demoted primary, once however many sentinels announce the switch', async () => {
    const switches = follower();
    const onOld = new StandIn().at('127.0.0.1', 6379);
    const onNew = new StandIn().at('127.0.0.1', 6380);
    switches.follow(onOld);
    switches.follow(onNew);

    switches.heard('mymaster 127.0.0.1 6379 127.0.0.1 6380');
    await settled();
    expect([onOld.reconnects, onNew.reconnects]).toEqual([1, 0]);
    // The other sentinels tell the same switch after the first connection reached the new primary.
    onOld.at('127.0.0.1', 6380);
    switches.heard('mymaster 127.0.0.1 6379 127.0.0.1 6380');
    switches.heard('mymaster 127.0.0.1 6379 127.0.0.1 6380');
    await settled();
    expect([onOld.reconnects, onNew.reconnects]).toEqual([1, 0]);
  });

  it('never disconnects a connection that is connecting, and reconnects it if it becomes ready on the demoted primary', async () => {
    const switches = follower();
    const connecting = new StandIn().at('127.0.0.1', 6379, 'connecting');
    switches.follow(connecting);

    switches.heard('mymaster 127.0.0.1 6379 127.0.0.1 6380');
    await settled();
    expect(connecting.reconnects).toBe(0);
    // A sentinel that had not switched yet named the old primary: leaving it as soon as it is ready.
    connecting.at('::ffff:127.0.0.1', 6379);
    expect(connecting.reconnects).toBe(1);
    connecting.at('127.0.0.1', 6380);
    expect(connecting.reconnects).toBe(1);
  });

  it("ignores another master's switch, a garbled message, and a connection no longer followed", async () => {
    const switches = follower();
    const followed = new StandIn().at('127.0.0.1', 6379);
    const left = new StandIn().at('127.0.0.1', 6379);
    switches.follow(followed);
    switches.follow(left)();

    switches.heard('othermaster 127.0.0.1 6379 127.0.0.1 6380');
    switches.heard('mymaster 127.0.0.1');
    await settled();
    expect(followed.reconnects).toBe(0);
    switches.heard('mymaster 127.0.0.1 6379 127.0.0.1 6380');
    await settled();
    expect([followed.reconnects, left.reconnects]).toEqual([1, 0]);
  });

  it('compares through natMap, as the client connects', async () => {
    const switches = follower({ '10.0.0.1:6379': { host: '127.0.0.1', port: 16379 } });
    const mapped = new StandIn().at('127.0.0.1', 16379);
    switches.follow(mapped);

    switches.heard('mymaster 10.0.0.1 6379 10.0.0.2 6379');
    await settled();
    expect(mapped.reconnects).toBe(1);
  });

  it('looks a host name up, and follows the switch back', async () => {
    const switches = follower();
    const connection = new StandIn().at('127.0.0.1', 6379);
    switches.follow(connection);

    switches.heard('mymaster localhost 6379 localhost 6380');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(connection.reconnects).toBe(1);
    connection.at('127.0.0.1', 6380);
    switches.heard('mymaster localhost 6380 localhost 6379');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(connection.reconnects).toBe(2);
  });
});
