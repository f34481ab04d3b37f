import assert from "node:assert/strict";
import { REPO_ROOT } from "./helpers/karotten.ts";

/** The daemon's source files: `main.ts` and everything under `lib/`. */
function daemonSources(dir = `${REPO_ROOT}lib`): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...daemonSources(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

Deno.test("the daemon's sources are ASCII (V8 keeps any other module text at two bytes a character)", () => {
  const files = [`${REPO_ROOT}main.ts`, ...daemonSources()];
  assert.ok(files.length > 10);
  const offending: string[] = [];
  for (const path of files) {
    Deno.readTextFileSync(path).split("\n").forEach((line, i) => {
      // deno-lint-ignore no-control-regex
      if (/[^\x00-\x7f]/.test(line)) offending.push(`${path.slice(REPO_ROOT.length)}:${i + 1}`);
    });
  }
  assert.deepEqual(offending, []);
});
