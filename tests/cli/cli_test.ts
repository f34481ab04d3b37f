/** The command line, through the daemon as users start it and through `deno task start`. */
import assert from "node:assert/strict";
import { parseArgs, UsageError } from "../../lib/cli/args.ts";
import { helpText, VARIABLE_HELP } from "../../lib/cli/help.ts";
import { ENV_NAMES } from "../../lib/config.ts";
import { EXIT_CONFIG, EXIT_OK } from "../../lib/exit_codes.ts";
import { VERSION } from "../../lib/version.ts";
import { REPO_ROOT, startKarotten } from "../helpers/karotten.ts";
import { withDeadline } from "../helpers/deadline.ts";

const EXIT_TIMEOUT_MS = 30_000;

Deno.test("parseArgs reads --help, --version and --dry-run and refuses anything else", () => {
  assert.deepEqual(parseArgs([]), { kind: "run", dryRun: false });
  assert.deepEqual(parseArgs(["--dry-run"]), { kind: "run", dryRun: true });
  assert.deepEqual(parseArgs(["--", "--help"]), { kind: "help" });
  assert.deepEqual(parseArgs(["-h"]), { kind: "help" });
  assert.deepEqual(parseArgs(["--version", "--dry-run"]), { kind: "version" });
  assert.deepEqual(parseArgs(["--dry-run", "--help"]), { kind: "help" });
  for (const bad of [["--bogus"], ["run"], ["--dry-run", "--", "x"], ["--help=1"]]) {
    assert.throws(() => parseArgs(bad), UsageError, bad.join(" "));
  }
});

Deno.test("helpText lists every variable the configuration reads, nothing else", () => {
  const text = helpText();
  const listed = [...text.matchAll(/^ {2}([A-Z][A-Z0-9_]+) \(/gm)].map((m) => m[1]);
  assert.deepEqual(listed, [...ENV_NAMES]);
  assert.deepEqual(Object.keys(VARIABLE_HELP).sort(), [...ENV_NAMES].sort());
  for (const line of text.split("\n")) assert.ok(line.length <= 100, `too long: ${line}`);
  assert.match(text, /Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 .*\n.*\n {2}3 /);
});

Deno.test("karotten --help prints the help to stdout and exits 0 without any variable", async () => {
  const k = await startKarotten({}, "main.ts", ["--help"]);
  assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_OK);
  assert.equal(k.stdoutLines.join("\n") + "\n", helpText());
  assert.equal(k.lines.length, k.stdoutLines.length, "nothing on stderr");
});

Deno.test("karotten --version prints its version and exits 0", async () => {
  const k = await startKarotten({}, "main.ts", ["--version"]);
  assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_OK);
  assert.deepEqual(k.stdoutLines, [`karotten ${VERSION} (deno ${Deno.version.deno})`]);
});

Deno.test("karotten with an unknown option prints one line naming it and exits 2", async () => {
  const k = await startKarotten({ RABBITMQ_URL: "amqp://127.0.0.1:1" }, "main.ts", ["--verbose"]);
  assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CONFIG);
  assert.equal(k.lines.length, 1, k.lines.join("\n"));
  assert.match(k.lines[0], /unknown option "--verbose".*--help/);
  assert.deepEqual(k.stdoutLines, []);
});

Deno.test("deno task start -- --help and -- --version reach the daemon", async () => {
  for (const [arg, expect] of [["--help", helpText()], ["--version", `karotten ${VERSION} `]]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "start", "--", arg],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, EXIT_OK, new TextDecoder().decode(out.stderr));
    assert.ok(stdout.startsWith(expect), `${arg}: ${stdout.slice(0, 200)}`);
  }
});
