export default async function clusterGlobalTeardown() {
  await globalThis.__REDIS_CLUSTER__?.stop();
}
