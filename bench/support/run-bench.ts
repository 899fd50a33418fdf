import { startLocalRedis, type LocalRedisServer } from '../../tools/local-redis-server.mjs';

/**
 * Runs one benchmark against a throwaway redis-server, which is stopped whatever happens: normal
 * end, error, Ctrl-C, or the deadline. `killChildren` stops the benchmark's own child processes
 * (workers, apps) when it is cut short.
 */
export async function runBench(
  name: string,
  deadlineS: number,
  main: (server: LocalRedisServer) => Promise<void>,
  killChildren: () => void = () => undefined,
): Promise<void> {
  const started = performance.now();
  const server = await startLocalRedis();
  let exitCode = 0;
  const abort = (reason: string, code: number) => {
    console.error(reason);
    killChildren();
    void server.kill().finally(() => process.exit(code));
  };
  const deadline = setTimeout(
    () => abort(`${name}: still running after ${deadlineS} s; stopped`, 1),
    deadlineS * 1_000,
  );
  deadline.unref();
  process.once('SIGINT', () => abort(`${name}: interrupted`, 130));
  process.once('SIGTERM', () => abort(`${name}: terminated`, 143));
  try {
    await main(server);
  } catch (error) {
    console.error(error);
    exitCode = 1;
  } finally {
    await server.stop();
    clearTimeout(deadline);
  }
  console.log(`(whole run ${((performance.now() - started) / 1_000).toFixed(1)} s)`);
  process.exitCode = exitCode;
}
