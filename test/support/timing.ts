// Time passing on purpose in a spec. Wait for Redis with waitFor (load-helpers.ts), never with this.

/** A promise that resolves after `ms` (used only to make a loader take time, never to wait for Redis). */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
