/**
 * Work that goes on while a wait lasts.
 * @module
 */

/**
 * Awaits `p`, calling `onTick()` every `everyMs` until it settles (e.g. a lag check while a
 * reader waits for room). Settles as `p` does; no timer is left behind. An `onTick` that throws
 * stops the ticking, and `p`'s value is replaced by that error. One interval timer per wait and
 * nothing else: readers at a full buffer wait hundreds of times a second.
 */
export async function awaitTicking<T>(
  p: Promise<T>,
  everyMs: number,
  onTick: () => void,
): Promise<T> {
  let failure: { err: unknown } | undefined;
  const timer = setInterval(() => {
    try {
      onTick();
    } catch (err) {
      failure = { err };
      clearInterval(timer);
    }
  }, everyMs);
  let value: T;
  try {
    value = await p;
  } finally {
    clearInterval(timer);
  }
  if (failure !== undefined) throw failure.err;
  return value;
}
