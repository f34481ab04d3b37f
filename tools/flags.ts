/**
 * Prints the daemon's permission flags for the current environment, space-separated:
 * `deno task start` and `deno task compile` splice them in.
 * @module
 */
import { permissionFlags } from "../lib/permissions.ts";

console.log(permissionFlags((name) => Deno.env.get(name)).join(" "));
