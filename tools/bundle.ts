/**
 * The daemon as one JavaScript file: `deno bundle --platform=deno main.ts`, amqplib included, no
 * source map. `deno task compile` compiles this file rather than `main.ts`, so the binary loads
 * one module at start instead of resolving npm packages through Deno's CommonJS loader and
 * keeping each module's inline source map: under `deno run`, 3-4 MiB less RSS idle and ~3 MiB
 * less at a burst's peak, at the same CPU per line (README, Benchmarks). The benchmark runs this
 * file as its stand-in for the compiled binary.
 *
 * Usage: `deno run --allow-read --allow-run=deno tools/bundle.ts [output]`
 * @module
 */

/** Where `deno task compile` writes the bundle it compiles (relative to the repo root). */
export const BUNDLE_PATH = "build/karotten.js";

/** The `deno` arguments that bundle the daemon (`main.ts`, from `cwd`) into `output`. */
export function bundleArgs(output: string): string[] {
  return ["bundle", "--quiet", "--platform=deno", "--output", output, "main.ts"];
}

/**
 * Bundles the daemon of the checkout at `cwd` into `output` (relative to `cwd`, or absolute) with
 * the `deno` at `deno`; throws with `deno bundle`'s own message when it fails.
 */
export async function bundleDaemon(
  output: string,
  cwd: string,
  deno = "deno",
): Promise<void> {
  const { code, stderr } = await new Deno.Command(deno, {
    args: bundleArgs(output),
    cwd,
    stdin: "null",
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    const text = new TextDecoder().decode(stderr).trim();
    throw new Error(`deno bundle failed (exit ${code}): ${text}`);
  }
}

if (import.meta.main) {
  await bundleDaemon(Deno.args[0] ?? BUNDLE_PATH, Deno.cwd());
}

/**
 * Has `deno` analyse the modules of `script` (in `cwd`) into its cache (`deno cache`), in a process
 * of its own, before a daemon runs it. A `deno run` of a module the cache does not hold yet parses
 * it at start, and the malloc arena of the thread that parsed it keeps ~8 MiB resident for good (a
 * new bundle: 60 against 51 MiB idle), which the burst's `VmHWM` counts: the first run after each
 * change of the code read ~8 MiB high. That is not the burst: the compiled binary the bundle stands
 * in for loads its modules from itself without that analysis, and `deno run main.ts` pays it once
 * per new version of a module.
 */
export async function analyseModules(
  script: string,
  cwd: string,
  deno: string = Deno.execPath(),
): Promise<void> {
  const { code, stderr } = await new Deno.Command(deno, {
    args: ["cache", "--quiet", script],
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    const text = new TextDecoder().decode(stderr).trim();
    throw new Error(`deno cache ${script} failed (exit ${code}): ${text}`);
  }
}
