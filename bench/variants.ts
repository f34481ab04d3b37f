/**
 * `deno run -A bench/variants.ts`: karotten under several runtime settings, one after the other
 * on each workload of `versus.ts`, in one run on one private engine and the broker
 * (`TEST_RABBITMQ_URL`): what a V8 flag, a malloc setting or another code tree changes in CPU per
 * line, lines/s and memory, measured side by side.
 *
 * `BENCH_VARIANTS`: a JSON array of `{name, v8?, deno?, env?, tree?}`: `v8` replaces the daemon's
 * V8 flags (`RUNTIME_FLAGS`), `deno` its other runtime flags, `env` is added to its environment,
 * `tree` is another checkout to run `main.ts` from. Default: the shipped settings against a few V8 and malloc candidates.
 * `BENCH_PHASES` names the parts (`burst`, `idle`, …; default `burst,idle`). Prints the figures
 * as JSON and a table.
 * @module
 */
import { ConnectionPool } from "../lib/docker/conn.ts";
import { DockerClient } from "../lib/docker/api.ts";
import { permissionFlags, RUNTIME_FLAGS } from "../lib/permissions.ts";
import { DockerEngine } from "../tests/helpers/dockerd.ts";
import { REPO_ROOT, spawnDaemon } from "../tests/helpers/karotten.ts";
import { RABBIT_URL } from "../tests/helpers/rabbit.ts";
import { loadAverage } from "./_proc.ts";
import { type Contender, runVersus, VERSUS_PARTS, type VersusPart } from "./versus.ts";
import { versusTable } from "./report_versus.ts";
import { analyseModules } from "../tools/bundle.ts";

/** One runtime setting of the daemon. */
interface Variant {
  /** Column name. */
  name: string;
  /** V8 flags instead of `RUNTIME_FLAGS` (each `--flag`, joined into one `--v8-flags=`). */
  v8?: string[];
  /** `deno run` flags instead of the shipped ones of `RUNTIME_FLAGS` (`--no-code-cache`). */
  deno?: string[];
  /** Added to the daemon's environment. */
  env?: Record<string, string>;
  /** A checkout to run `main.ts` from instead of this one. */
  tree?: string;
}

const SHIPPED_V8 = RUNTIME_FLAGS.filter((f) => f.startsWith("--v8-flags="))
  .flatMap((f) => f.slice("--v8-flags=".length).split(","));
/** The shipped runtime flags other than V8's (`deno` flags), unless a variant names its own. */
const SHIPPED_DENO = RUNTIME_FLAGS.filter((f) => !f.startsWith("--v8-flags="));

/** Candidates measured for the README's note (none of them is shipped: see Benchmarks). */
const DEFAULT_VARIANTS: Variant[] = [
  { name: "shipped", v8: SHIPPED_V8 },
  { name: "mmap64k", v8: SHIPPED_V8, env: { MALLOC_MMAP_THRESHOLD_: "65536" } },
  { name: "single-gc", v8: [...SHIPPED_V8, "--single-threaded-gc"] },
  { name: "size", v8: [...SHIPPED_V8, "--optimize-for-size"] },
  { name: "old48", v8: [...SHIPPED_V8, "--max-old-space-size=48"] },
];

function variantContender(v: Variant): Contender {
  return {
    name: v.name,
    attached: / info attached /,
    metrics: v.tree === undefined,
    start: async (engine, exchange, extra = {}) => {
      const env: Record<string, string> = {
        RABBITMQ_URL: RABBIT_URL,
        DOCKER_SOCK: engine.sock,
        EXCHANGE: exchange,
        NO_COLOR: "1",
        ...(v.env ?? {}),
        ...extra,
      };
      const v8 = v.v8 ?? SHIPPED_V8;
      await analyseModules("main.ts", v.tree ?? REPO_ROOT);
      const k = spawnDaemon(
        Deno.execPath(),
        [
          "run",
          "--quiet",
          ...(v.deno ?? SHIPPED_DENO),
          ...permissionFlags((n) => env[n]),
          ...(v8.length > 0 ? [`--v8-flags=${v8.join(",")}`] : []),
          "main.ts",
        ],
        env,
        v.tree ?? REPO_ROOT,
      );
      try {
        await k.waitForLog(/ info ready /, 30_000);
        await k.waitForLog(/ info amqp_connected /, 30_000);
      } catch (err) {
        await k.stop();
        throw err;
      }
      return k;
    },
  };
}

if (import.meta.main) {
  const variants: Variant[] = JSON.parse(Deno.env.get("BENCH_VARIANTS") ?? "null") ??
    DEFAULT_VARIANTS;
  const parts = (Deno.env.get("BENCH_PHASES") ?? "burst,idle").split(",").map((s) => s.trim())
    .filter((s): s is VersusPart => (VERSUS_PARTS as readonly string[]).includes(s));
  const t0 = performance.now();
  const progress = (what: string) =>
    console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${what}`);
  progress(`variants ${variants.map((v) => v.name).join(", ")}; load ${loadAverage()}`);
  const engine = await DockerEngine.start();
  const pool = new ConnectionPool(engine.sock, { maxIdle: 2, idleTimeoutMs: 60_000 });
  try {
    const v = await runVersus(
      engine,
      new DockerClient(pool, 15_000),
      parts,
      progress,
      variants.map(variantContender),
    );
    console.log(JSON.stringify({ variants, results: v }, null, 2));
    console.log(versusTable(v, variants[0].name));
    console.log(`load after: ${loadAverage()}`);
  } finally {
    pool.clear();
    await engine.stop();
  }
}
