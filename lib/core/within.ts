/**
 * `work`'s value, or `late` once `ms` passed first (its timer cleared either way). `work` keeps
 * running; a rejection it makes before `ms` reaches the caller, one after is the caller's to handle.
 */
export async function within<T, L>(work: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<L>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms), late);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
