// Entry point of the sample app: `npm start` (builds first) or `node dist/sample-app/main.js`.
//
// Without REDIS_URL (or REDIS_CLUSTER_NODES) it starts a throwaway local redis-server, so trying the
// app needs nothing but `redis-server` on PATH; the server is stopped again when the app shuts down.
import { Logger, type INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import {
  REDIS_INSTALL_HINT,
  redisServerBinary,
  startLocalRedis,
  type LocalRedisServer,
} from '../tools/local-redis-server.mjs';
import { readSampleAppEnv } from './config/env.js';
import { createSampleApp } from './create-sample-app.js';

const logger = new Logger('SampleApp');

async function bootstrap(): Promise<void> {
  const env = readSampleAppEnv();

  let localRedis: LocalRedisServer | undefined;
  let redisUrl = env.redisUrl;
  if (!redisUrl && !env.redisClusterNodes) {
    if (!redisServerBinary()) {
      console.error(REDIS_INSTALL_HINT);
      process.exit(1);
    }
    localRedis = await startLocalRedis();
    redisUrl = localRedis.url;
  }

  let app: INestApplication | undefined;
  try {
    app = await createSampleApp({
      redisUrl,
      redisClusterNodes: env.redisClusterNodes,
      dbPath: env.dbPath,
      queryDelayMs: env.queryDelayMs,
      namespace: env.namespace,
      adminToken: env.adminToken,
      nodeEnv: env.nodeEnv,
    });
    await app.listen(env.port);
  } catch (error) {
    await app?.close().catch(() => undefined);
    await localRedis?.stop();
    throw error;
  }

  const redisSource = localRedis ? `local redis-server, pid ${localRedis.pid}, stopped on exit` : 'from REDIS_URL';
  const redis = env.redisClusterNodes
    ? `cluster of ${env.redisClusterNodes.map(({ host, port }) => `${host}:${port}`).join(', ')} (from REDIS_CLUSTER_NODES)`
    : `${redactPassword(redisUrl!)} (${redisSource})`;
  const { port } = app.getHttpServer().address() as AddressInfo;
  logger.log(`Listening on http://localhost:${port}`);
  logger.log(`Redis: ${redis}; namespace "${env.namespace}"`);
  logger.log(`SQLite: ${env.dbPath}; artificial read delay ${env.queryDelayMs} ms`);
  if (!env.adminToken) logger.warn('ADMIN_TOKEN is not set: /admin routes are open');

  // Handled here rather than with app.enableShutdownHooks(): the local redis-server must stop
  // after the app has closed its connection to it.
  let shuttingDown = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.log(`${signal} received, shutting down`);
    try {
      await app.close();
    } finally {
      await localRedis?.stop();
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      shutdown(signal).catch((error: unknown) => {
        logger.error(`Shutdown failed: ${String(error)}`);
        process.exitCode = 1;
      });
    });
  }
}

/** Hides the password of `redis://user:password@host` before the URL is logged. */
function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

bootstrap().catch((error: unknown) => {
  logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
