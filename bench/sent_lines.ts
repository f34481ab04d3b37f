/**
 * `deno run -A bench/sent_lines.ts`: what the sent-lines records of many busy attached containers
 * hold. `SL_CONTAINERS` containers (default 60) each write `SL_LINES` lines (default 6,000) at
 * `SL_RATE` lines/s (default 500), then stay running and silent; once karotten has had every line
 * confirmed, its JS heap used, external memory (typed arrays' stores) and RSS are read (the
 * lowest heap of a few scrapes, after a settle). Trees alternate (`SL_TREES`: a JSON object of
 * name -> checkout, default this one), `SL_ROUNDS` times (default 2), on one private engine
 * (`KAROTTEN_TEST_ENGINE`: docker or podman) and the broker of `TEST_RABBITMQ_URL`. Prints one JSON line per run and a summary.
 * @module
 */
import { permissionFlags, RUNTIME_FLAGS } from "../lib/permissions.ts";
import { startEngine, type TestEngine } from "../tests/helpers/engine.ts";
import { REPO_ROOT, spawnDaemon } from "../tests/helpers/karotten.ts";
import { freshBinding, RABBIT_URL } from "../tests/helpers/rabbit.ts";
import { waitFor } from "../tests/helpers/deadline.ts";
import { loadAverage, residentSplit } from "./_proc.ts";

const containers = Number(Deno.env.get("SL_CONTAINERS") ?? 60);
const lines = Number(Deno.env.get("SL_LINES") ?? 6_000);
const rate = Number(Deno.env.get("SL_RATE") ?? 500);
const rounds = Number(Deno.env.get("SL_ROUNDS") ?? 2);
const trees: Record<string, string> = JSON.parse(
  Deno.env.get("SL_TREES") ?? JSON.stringify({ this: REPO_ROOT }),
);

/** Ticks of 100 ms: `rate / 10` lines each; then the container waits, silent, until stopped. */
function writerScript(tag: string): string {
  const perTick = Math.max(1, Math.round(rate / 10));
  return `trap "exit 0" TERM; mkfifo /tmp/tick; exec 3<>/tmp/tick; i=1; ` +
    `while [ $i -le ${lines} ]; do j=0; ` +
    `while [ $j -lt ${perTick} ] && [ $i -le ${lines} ]; do echo "sl ${tag} $i"; ` +
    `i=$((i+1)); j=$((j+1)); done; read -t 0.1 -u 3 _; done; read -u 3 _`;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function scrape(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(karotten_[a-z_]+) (\S+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

interface Run {
  tree: string;
  heapUsedMB: number;
  externalMB: number;
  rssMiB: number;
  anonMiB: number;
  seconds: number;
  load: number;
}

async function runOnce(engine: TestEngine, name: string, tree: string): Promise<Run> {
  const binding = await freshBinding();
  const port = freePort();
  const env: Record<string, string> = {
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    METRICS_ADDR: `127.0.0.1:${port}`,
    NO_COLOR: "1",
  };
  const k = spawnDaemon(
    Deno.execPath(),
    ["run", "--quiet", ...RUNTIME_FLAGS, ...permissionFlags((n) => env[n]), "main.ts"],
    env,
    tree,
  );
  const base = `http://127.0.0.1:${port}`;
  const ids: string[] = [];
  const started = performance.now();
  try {
    await k.waitForLog(/ info ready /, 60_000);
    for (let c = 0; c < containers; c++) {
      ids.push(
        await engine.run("-d", "kt/busybox:latest", "sh", "-c", writerScript(`c${c}`)),
      );
    }
    const total = containers * lines;
    await waitFor(async () => {
      try {
        return ((await scrape(base)).karotten_messages_confirmed_total ?? 0) >= total;
      } catch {
        return false;
      }
    }, { timeoutMs: 600_000, intervalMs: 500, what: `${total} lines confirmed` });
    const seconds = (performance.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 5_000));
    let heap = Infinity;
    let external = Infinity;
    for (let i = 0; i < 6; i++) {
      const m = await scrape(base);
      heap = Math.min(heap, m.karotten_js_heap_used_bytes);
      external = Math.min(external, m.karotten_js_external_memory_bytes);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const split = residentSplit(k.pid);
    return {
      tree: name,
      heapUsedMB: heap / 1e6,
      externalMB: external / 1e6,
      rssMiB: split.rssBytes / 2 ** 20,
      anonMiB: split.anonBytes / 2 ** 20,
      seconds,
      load: loadAverage(),
    };
  } finally {
    if (ids.length > 0) await engine.docker("rm", "-f", ...ids);
    await k.stop();
    await binding.close();
  }
}

const engine = await startEngine();
const runs: Run[] = [];
try {
  for (let r = 0; r < rounds; r++) {
    for (const [name, tree] of Object.entries(trees)) {
      const run = await runOnce(engine, name, tree);
      runs.push(run);
      console.log(JSON.stringify(run));
    }
  }
} finally {
  await engine.stop();
}
console.log(
  `${engine.kind}: ${containers} containers x ${lines} lines at ${rate} lines/s, then silent`,
);
for (const name of Object.keys(trees)) {
  const mine = runs.filter((r) => r.tree === name);
  const show = (f: (r: Run) => number) => mine.map((r) => f(r).toFixed(1)).join(", ");
  console.log(
    `${name}: heap used ${show((r) => r.heapUsedMB)} MB; external ${
      show((r) => r.externalMB)
    } MB; RSS ${show((r) => r.rssMiB)} MiB; anon ${show((r) => r.anonMiB)} MiB`,
  );
}
