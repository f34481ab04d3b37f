/**
 * `promtool` (Debian package `prometheus`) for the tests of the metrics and the alerting rules.
 * @module
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "./karotten.ts";

/** Runs `promtool ...args` (Debian package `prometheus`); fails loudly when it is missing. */
export async function promtool(args: string[], stdin?: string): Promise<string> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("promtool", {
      args,
      cwd: REPO_ROOT,
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    throw new Error("promtool is missing: apt-get install prometheus", { cause: err });
  }
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `promtool ${args.join(" ")} failed:\n${text}`);
  return text;
}
