// Whether the server processes a spec started (a cluster's, a Sentinel deployment's) are gone after it.

/** Those of `pids` whose process still exists (signal 0 only asks). */
export function stillRunning(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}
