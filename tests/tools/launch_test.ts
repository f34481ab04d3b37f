/**
 * `deno task start` (tools/launch.ts) passes each flag as one argument: paths with spaces, or
 * that look like flags, stay paths; a comma (Deno's permission-list separator) exits 2.
 */
import assert from "node:assert/strict";
import { EXIT_CONFIG } from "../../lib/exit_codes.ts";
import { denoArgs } from "../../tools/launch.ts";
import { BUNDLE_PATH } from "../../tools/bundle.ts";
import { waitFor, withDeadline } from "../helpers/deadline.ts";
import { FakeEngine } from "../helpers/fake_engine.ts";
import { REPO_ROOT } from "../helpers/karotten.ts";
import { freshBinding, RABBIT_URL } from "../helpers/rabbit.ts";

const STEP_TIMEOUT_MS = 30_000;

/** Runs `deno task start` in the repo root with only `env` (plus PATH, HOME, DENO_DIR). */
function taskStart(env: Record<string, string>) {
  const base: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) base[name] = value;
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "start"],
    cwd: REPO_ROOT,
    clearEnv: true,
    env: { ...base, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const text of s.pipeThrough(new TextDecoderStream())) out += text;
  };
  const done = Promise.all([child.status, pump(child.stdout), pump(child.stderr)]).then((
    [status],
  ) => status.code);
  return { child, done, output: () => out };
}

Deno.test("denoArgs keeps every flag one argument", () => {
  const flags = ["--allow-read=/tmp/x --allow-run", "--no-prompt"];
  assert.deepEqual(denoArgs("start", flags), ["run", ...flags, "main.ts"]);
  assert.deepEqual(denoArgs("compile", flags), [
    "compile",
    ...flags,
    "--output",
    "karotten",
    BUNDLE_PATH,
  ]);
});

for (const [name, value] of [["DOCKER_SOCK", "/tmp/a.sock,b"], ["STATE_DIR", "/tmp/x,/etc"]]) {
  Deno.test(`deno task start with a comma in ${name} exits 2 naming it`, async () => {
    const run = taskStart({ RABBITMQ_URL: RABBIT_URL, [name]: value });
    assert.equal(await withDeadline(run.done, STEP_TIMEOUT_MS, "exit"), EXIT_CONFIG);
    const lines = run.output().trim().split("\n");
    assert.equal(lines.length, 1, run.output());
    assert.match(lines[0], new RegExp(`configuration error: ${name}: must not contain a comma`));
  });
}

Deno.test("deno task start with spaces and a flag-like name in the paths runs with exactly them", async () => {
  const engine = await FakeEngine.start("kt i10 sock.");
  const stateDir = await Deno.makeTempDir({ dir: "/tmp", prefix: "kt state --allow-run." });
  const binding = await freshBinding();
  const run = taskStart({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    STATE_DIR: stateDir,
    EXCHANGE: binding.exchange,
  });
  try {
    await waitFor(() => / info ready /.test(run.output()), {
      timeoutMs: STEP_TIMEOUT_MS,
      what: `ready; output so far:\n${run.output()}`,
    });
    assert.ok(engine.sock.includes(" "));
    assert.match(run.output(), new RegExp(`state_dir="${stateDir}"`));
  } finally {
    run.child.kill("SIGTERM");
    const code = await withDeadline(run.done, STEP_TIMEOUT_MS, "exit");
    await engine.close();
    await binding.close();
    await Deno.remove(stateDir, { recursive: true });
    assert.equal(code, 0, run.output());
  }
  assert.doesNotMatch(run.output(), /error|PermissionDenied|NotCapable/, run.output());
});
