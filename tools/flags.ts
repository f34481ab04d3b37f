/**
 * Prints the daemon's flags (permissions and runtime) for the current environment, space-separated:
 * `deno task start` and `deno task compile` splice them in. `--dry-run` prints a dry run's flags.
 * @module
 */
import { daemonFlags } from "../lib/permissions.ts";

const dryRun = Deno.args.includes("--dry-run");
console.log(daemonFlags((name) => Deno.env.get(name), { dryRun }).join(" "));
