/**
 * karotten's version, printed by `--version` and in the `starting` log line.
 * @module
 */

/** The release version. */
export const VERSION = "0.2.0";
