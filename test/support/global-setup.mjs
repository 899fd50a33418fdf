// Starts one throwaway redis-server for the whole run (unless REDIS_URL points at an existing one)
// and publishes its URL to the test workers as TEST_REDIS_URL. Plain ESM: Jest loads global setup
// outside its module mapper, so this file and the launcher need no transform.
import { startLocalRedis } from '../../tools/local-redis-server.mjs';

export default async function globalSetup() {
  if (process.env.REDIS_URL) {
    process.env.TEST_REDIS_URL = process.env.REDIS_URL;
    return;
  }
  const server = await startLocalRedis();
  globalThis.__REDIS_SERVER__ = server;
  process.env.TEST_REDIS_URL = server.url;
}
