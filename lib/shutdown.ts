/**
 * Signals -> one root abort. The first SIGTERM or SIGINT stops reading; draining follows in the
 * order `daemon.ts` sets.
 * @module
 */

/** Aborts `controller` on the first SIGTERM or SIGINT; returns a function removing the handlers. */
export function abortOnSignals(
  controller: AbortController,
  onSignal: (signal: Deno.Signal) => void,
): () => void {
  const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
  const handlers = signals.map((sig) => {
    const handler = () => {
      onSignal(sig);
      controller.abort(new DOMException(`received ${sig}`, "AbortError"));
    };
    Deno.addSignalListener(sig, handler);
    return () => Deno.removeSignalListener(sig, handler);
  });
  return () => handlers.forEach((remove) => remove());
}
