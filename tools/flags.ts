/**
 * Prints the daemon's flags (permissions and runtime) for the current environment, space-separated:
 * `deno task start` and `deno task compile` splice them in.
 * @module
 */
import { daemonFlags } from "../lib/permissions.ts";

console.log(daemonFlags((name) => Deno.env.get(name)).join(" "));
