/**
 * The daemon's exit codes (documented in the README).
 * @module
 */

/** Stopped by SIGTERM/SIGINT after draining. */
export const EXIT_OK = 0;
/** An unexpected internal error. */
export const EXIT_CRASH = 1;
/** Bad configuration, or the exchange does not exist at start. */
export const EXIT_CONFIG = 2;
/** The Docker engine failed `pingFailuresToExit` pings in a row. */
export const EXIT_ENGINE_UNREACHABLE = 3;
