// One command to a local Redis (server, cluster node or sentinel) over a fresh connection, and the
// parsing of INFO-style answers: what the local-redis-cluster and local-redis-sentinel launchers need,
// without pulling a client library into plain .mjs tools.
import { connect } from 'node:net';

const HOST = '127.0.0.1';

/** The `field:value` lines of an INFO-style answer as an object. */
export function parseInfo(text) {
  const fields = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1);
  }
  return fields;
}

/**
 * Sends one command to `port` on loopback over a fresh connection and resolves to its reply: a
 * string (simple, bulk or integer), null (a nil bulk or array) or an array of those; an error reply
 * rejects. Enough RESP for the INFO, CLUSTER and SENTINEL answers the launchers read.
 */
export function command(port, args, timeoutMs = 1_000) {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: HOST });
    let buffer = Buffer.alloc(0);
    const done = (err, value) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`${args.join(' ')} timed out on port ${port}`)));
    socket.once('error', (err) => done(err));
    socket.once('connect', () => {
      const parts = args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
      socket.write(`*${args.length}\r\n${parts.join('')}`);
    });
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      let parsed;
      try {
        parsed = parseReply(buffer, 0);
      } catch (err) {
        return done(new Error(`${args.join(' ')} on port ${port}: ${err.message}`));
      }
      if (parsed) done(null, parsed.value);
    });
  });
}

/** One RESP2 reply from `offset`: `{ value, end }`, or undefined while more bytes are needed. */
function parseReply(buffer, offset) {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[offset]);
  const head = buffer.subarray(offset + 1, lineEnd).toString();
  const next = lineEnd + 2;
  if (type === '+' || type === ':') return { value: head, end: next };
  if (type === '-') throw new Error(head);
  if (type === '$') {
    const length = Number(head);
    if (length < 0) return { value: null, end: next };
    if (buffer.length < next + length + 2) return undefined;
    return { value: buffer.subarray(next, next + length).toString(), end: next + length + 2 };
  }
  if (type === '*') {
    const count = Number(head);
    if (count < 0) return { value: null, end: next };
    const items = [];
    let at = next;
    for (let i = 0; i < count; i++) {
      const item = parseReply(buffer, at);
      if (!item) return undefined;
      items.push(item.value);
      at = item.end;
    }
    return { value: items, end: at };
  }
  throw new Error(`unexpected reply ${JSON.stringify(buffer.toString())}`);
}
