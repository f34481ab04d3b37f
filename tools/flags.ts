/**
 * Prints the daemon's flags (permissions and runtime) for the current environment, space-separated,
 * for reading (`deno task flags`; `--dry-run` prints a dry run's flags); `deno task start` and
 * `deno task compile` pass them to `deno` as an argument array (`tools/launch.ts`), never through
 * a shell.
 * @module
 */
import { daemonFlags } from "../lib/permissions.ts";

const dryRun = Deno.args.includes("--dry-run");
console.log(daemonFlags((name) => Deno.env.get(name), { dryRun }).join(" "));
