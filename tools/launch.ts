/**
 * `deno task start` and `deno task compile`: runs `deno run` for `main.ts`, or bundles it
 * (`tools/bundle.ts`) and runs `deno compile` for the bundle, with the daemon's flags for the
 * current environment, each flag one argument (no shell, so a path
 * with spaces or `$(…)` stays one path). A path Deno's comma-separated permission lists cannot
 * hold exits 2 naming the variable. Arguments after the mode go to the daemon as they are
 * (`--dry-run` also gives it a dry run's flags). Signals are passed on to the child; its exit
 * code is ours.
 *
 * Usage: `deno run --allow-env --allow-run=deno tools/launch.ts start|compile [daemon args]`
 * @module
 */
import { ConfigError } from "../lib/errors.ts";
import { EXIT_CONFIG } from "../lib/exit_codes.ts";
import { daemonFlags } from "../lib/permissions.ts";
import { analyseModules, BUNDLE_PATH, bundleDaemon } from "./bundle.ts";

/** Signals passed on to the daemon. */
const FORWARDED: readonly Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGHUP"];

/** The `deno` arguments for `start` or `compile` with these flags and daemon arguments. */
export function denoArgs(
  mode: "start" | "compile",
  flags: readonly string[],
  daemonArgs: readonly string[] = [],
): string[] {
  return mode === "start"
    ? ["run", ...flags, "main.ts", ...daemonArgs]
    : ["compile", ...flags, "--output", "karotten", BUNDLE_PATH, ...daemonArgs];
}

if (import.meta.main) {
  const mode = Deno.args[0];
  if (mode !== "start" && mode !== "compile") {
    console.error("usage: launch.ts start|compile");
    Deno.exit(EXIT_CONFIG);
  }
  const daemonArgs = Deno.args.slice(1);
  let flags: string[];
  try {
    flags = daemonFlags((name) => Deno.env.get(name), {
      dryRun: daemonArgs.includes("--dry-run"),
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`karotten: configuration error: ${err.message}`);
    Deno.exit(EXIT_CONFIG);
  }
  if (mode === "compile") await bundleDaemon(BUNDLE_PATH, Deno.cwd());
  // A daemon that parses modules new to Deno's cache keeps ~7 MiB more for its life: analyse them
  // in a process of their own first. A failure is left for `deno run` to report.
  else await analyseModules("main.ts", Deno.cwd(), "deno").catch(() => {});
  const child = new Deno.Command("deno", {
    args: denoArgs(mode, flags, daemonArgs),
    stdin: "inherit",
  }).spawn();
  for (const sig of FORWARDED) {
    Deno.addSignalListener(sig, () => {
      try {
        child.kill(sig);
      } catch {
        // Already exited: its status follows.
      }
    });
  }
  const status = await child.status;
  Deno.exit(status.signal ? 128 + signalNumber(status.signal) : status.code);
}

function signalNumber(sig: Deno.Signal): number {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[sig as string] ?? 1;
}
