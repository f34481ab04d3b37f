/**
 * The command line: `--help`, `--version`, `--dry-run`; anything else is a usage error (exit 2).
 * @module
 */

/** What the command line asks for. */
export type CliCommand =
  | { kind: "run"; dryRun: boolean }
  | { kind: "help" }
  | { kind: "version" };

/** An argument karotten does not know. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Parses the arguments (a leading `--`, as `deno task start -- --help` passes it, is skipped).
 * `--help` and `--version` win over everything else. Throws `UsageError` for any other argument.
 */
export function parseArgs(args: readonly string[]): CliCommand {
  let dryRun = false;
  let help = false;
  let version = false;
  for (const [i, arg] of args.entries()) {
    if (arg === "--" && i === 0) continue;
    if (arg === "--help" || arg === "-h") help = true;
    else if (arg === "--version" || arg === "-V") version = true;
    else if (arg === "--dry-run") dryRun = true;
    else if (arg.startsWith("-")) throw new UsageError(`unknown option "${arg}"`);
    else throw new UsageError(`unexpected argument "${arg}"`);
  }
  if (help) return { kind: "help" };
  if (version) return { kind: "version" };
  return { kind: "run", dryRun };
}
