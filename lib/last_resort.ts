/**
 * The last resort: an error nobody caught (a rejected promise without a handler, an exception
 * thrown from a callback) is logged as one `crashed` line through the logger, never as a raw
 * stack past it, and the daemon exits 1 (systemd restarts it).
 * @module
 */
import { describe } from "./errors.ts";
import { EXIT_CRASH } from "./exit_codes.ts";
import type { Logger } from "./log.ts";

/** Installs the handlers; call the returned function with the final logger once it exists. */
export function installLastResort(
  log: Logger,
  exit: (code: number) => void = Deno.exit,
): (next: Logger) => void {
  let current = log;
  const crash = (kind: string, reason: unknown) => {
    current.error("crashed", { kind, error: describe(reason) });
    exit(EXIT_CRASH);
  };
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    crash("unhandled_rejection", e.reason);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    crash("uncaught_exception", e.error ?? e.message);
  });
  return (next) => {
    current = next;
  };
}
