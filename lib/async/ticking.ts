/**
 * Work that goes on while a wait lasts.
 * @module
 */
import { delay } from "./delay.ts";

/**
 * Awaits `p`, calling `onTick()` every `everyMs` until it settles (e.g. a lag check while a
 * reader waits for room). Settles as `p` does; no timer is left behind.
 */
export async function awaitTicking<T>(
  p: Promise<T>,
  everyMs: number,
  onTick: () => void,
): Promise<T> {
  const stop = new AbortController();
  const ticking = (async () => {
    while (!stop.signal.aborted) {
      try {
        await delay(everyMs, { signal: stop.signal });
      } catch (err) {
        if (stop.signal.aborted) return;
        throw err;
      }
      onTick();
    }
  })();
  try {
    return await p;
  } finally {
    stop.abort();
    await ticking;
  }
}
