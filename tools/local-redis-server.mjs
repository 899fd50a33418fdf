// Starts a throwaway `redis-server` on a free loopback port and stops it again.
//
// Used by the test suite (jest global setup, fault tests) and by the sample app when no REDIS_URL
// is given, so both find Redis the same way. Nothing is persisted (no RDB, no AOF) and the working
// folder is a fresh temporary one, removed on stop. Plain ESM with a .d.mts beside it: Jest's global
// setup loads it without any transform, and `tsc` copies it into dist/ for the sample app.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_INSTALL_HINT =
  'redis-server was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`, ' +
  'macOS: `brew install redis`) or set REDIS_URL to an existing server, e.g. REDIS_URL=redis://127.0.0.1:6379.';

export function redisServerBinary() {
  const found = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return found.error ? undefined : 'redis-server';
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startLocalRedis(options = {}) {
  const binary = redisServerBinary();
  if (!binary) throw new Error(REDIS_INSTALL_HINT);
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-redis-cache-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    ...(options.args ?? []),
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk.toString()));
  // The server must not keep the parent's event loop alive, nor outlive it when the parent exits
  // without stopping it (an uncaught error, process.exit): see killOnExit.
  child.unref();
  child.stderr.unref?.();
  killOnExit(child, dir);

  try {
    await waitUntilReady(port, child, options.readyTimeoutMs ?? 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`redis-server did not start on port ${port}: ${err.message}\n${stderr}`, { cause: err });
  }

  let stopped = false;
  const exited = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
    });
  const finish = async (signal) => {
    if (stopped) return;
    stopped = true;
    // Keep the event loop alive until the server has exited and its folder is removed (the child
    // is unref'd while it runs, so nothing else would).
    child.ref();
    child.kill(signal);
    const escalate = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited();
    clearTimeout(escalate);
    running.delete(child);
    rmSync(dir, { recursive: true, force: true });
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    stop: () => finish('SIGTERM'),
    kill: () => finish('SIGKILL'),
  };
}

/** Servers started here and not stopped yet, with their folders. */
const running = new Map();

/**
 * Kills the servers (and sentinels: local-redis-sentinel.mjs) still running when this process exits,
 * and removes their folder if they have one: 'exit' handlers run on a normal end, on process.exit()
 * and after an uncaught error (not on a signal without a handler, nor on SIGKILL). Synchronous, as an
 * 'exit' handler must be.
 */
export function killOnExit(child, dir) {
  if (running.size === 0 && !killOnExit.installed) {
    killOnExit.installed = true;
    process.on('exit', () => {
      for (const [server, folder] of running) {
        server.kill('SIGKILL');
        if (folder) rmSync(folder, { recursive: true, force: true });
      }
    });
  }
  running.set(child, dir);
  child.once('exit', () => running.delete(child));
}

// Readiness by asking PING, never by sleeping a fixed time.
async function waitUntilReady(port, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    if (await ping(port)) return;
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}
