/**
 * A watchdog: its signal aborts when `kick()` has not been called for `ms`.
 * @module
 */

/** A kickable deadline. */
export interface Watchdog {
  /** Aborts (with a `TimeoutError`) after `ms` without a kick, or when the parent aborts. */
  readonly signal: AbortSignal;
  /** Restarts the countdown. */
  kick(): void;
  /** Stops the countdown for good (the signal then only follows the parent). */
  stop(): void;
}

/** Starts a watchdog of `ms` under `parent`. */
export function watchdog(ms: number, parent: AbortSignal): Watchdog {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const fire = () => controller.abort(new DOMException(`no activity for ${ms} ms`, "TimeoutError"));
  const kick = () => {
    clearTimeout(timer);
    if (!controller.signal.aborted) timer = setTimeout(fire, ms);
  };
  const stop = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  parent.addEventListener("abort", stop, { once: true });
  kick();
  return { signal: AbortSignal.any([parent, controller.signal]), kick, stop };
}
