/**
 * The only way karotten sleeps: `delay` rejects on abort, `sleep` answers whether the time ran
 * out (for loops that end on abort).
 * @module
 */

/** Resolves after `ms`, or rejects with `signal.reason` as soon as the signal aborts. */
export function delay(ms: number, options: { signal?: AbortSignal } = {}): Promise<void> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Waits `ms`; resolves true when the time ran out, false as soon as `signal` aborts. */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await delay(ms, { signal });
    return true;
  } catch (err) {
    if (signal.aborted) return false;
    throw err;
  }
}
