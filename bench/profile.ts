/**
 * CPU profile of the daemon under one of the benchmark's loads, summed by function and file.
 *
 *   deno run -A bench/profile.ts burst [lines=200000]
 *   deno run -A bench/profile.ts fan [containers=50] [linesPerS=200] [seconds=15]
 *
 * Runs `main.ts` with its permission flags plus `--cpu-prof` on a private dockerd and the real
 * broker, runs the load, stops it with SIGINT and prints the top functions by self time. The
 * `.cpuprofile` stays in the folder printed (open it in Chrome DevTools for the call tree).
 * @module
 */
import { delay } from "../lib/async/delay.ts";
import { daemonFlags } from "../lib/permissions.ts";
import { DockerEngine, TEST_IMAGE } from "../tests/helpers/dockerd.ts";
import { REPO_ROOT } from "../tests/helpers/karotten.ts";
import { RABBIT_URL } from "../tests/helpers/rabbit.ts";
import { BenchBinding } from "./_broker.ts";
import { formatTop, summarizeDir } from "./_cpuprofile.ts";
import { cpuSeconds, memory } from "./_proc.ts";
import { burstScript, pacedScript } from "./_workloads.ts";

const [mode = "burst", ...rest] = Deno.args;
const num = (i: number, fallback: number) => Number(rest[i] ?? fallback);
const TOP = 30;
/** `KT_PROFILE=0`: no profiler (CPU and memory as without it). */
const PROFILE = Deno.env.get("KT_PROFILE") !== "0";
/** `KT_STRACE=1`: count the daemon's system calls during the load (`strace -c -f`). */
const STRACE = Deno.env.get("KT_STRACE") === "1";
/** `KT_V8_FLAGS=...`: passed to the daemon as `--v8-flags=...`. */
const V8_FLAGS = Deno.env.get("KT_V8_FLAGS") ?? "";
/** `KT_DAEMON_ENV="A=1 B=2"`: more environment for the daemon (e.g. `MALLOC_ARENA_MAX=2`). */
const DAEMON_ENV: Record<string, string> = Object.fromEntries(
  (Deno.env.get("KT_DAEMON_ENV") ?? "").split(" ").filter((s) => s.includes("=")).map((s) => {
    const i = s.indexOf("=");
    return [s.slice(0, i), s.slice(i + 1)];
  }),
);

/** The daemon under `--cpu-prof`, its stderr collected line by line. */
class Profiled {
  readonly lines: string[] = [];
  readonly child: Deno.ChildProcess;
  readonly done: Promise<void>;

  constructor(env: Record<string, string>, dir: string) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...(PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : []),
        ...(V8_FLAGS ? [`--v8-flags=${V8_FLAGS}`] : []),
        ...daemonFlags((n) => env[n]),
        "main.ts",
      ],
      cwd: REPO_ROOT,
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "",
        HOME: Deno.env.get("HOME") ?? "",
        ...DAEMON_ENV,
        ...env,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      let rest = "";
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + text).split("\n");
        rest = parts.pop() ?? "";
        this.lines.push(...parts);
      }
    };
    this.done = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => {});
  }

  async waitFor(re: RegExp, ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (!this.lines.some((l) => re.test(l))) {
      if (performance.now() > until) {
        throw new Error(`no log line ${re}; last lines:\n${this.lines.slice(-10).join("\n")}`);
      }
      await delay(20);
    }
  }
}

const engine = await DockerEngine.start();
const dir = await Deno.makeTempDir({ prefix: "kt-prof." });
const daemons: Profiled[] = [];
let binding: BenchBinding | undefined;
try {
  binding = await BenchBinding.open(RABBIT_URL);
  const env: Record<string, string> = {
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    ...(mode === "burst" ? { OVERFLOW: "pause" } : {}),
  };
  const daemon = new Profiled(env, dir);
  daemons.push(daemon);
  await daemon.waitFor(/ info ready /, 30_000);
  await daemon.waitFor(/ info amqp_connected /, 30_000);
  const strace = STRACE
    ? new Deno.Command("strace", {
      args: ["-c", "-f", "-o", `${dir}/strace.txt`, "-p", String(daemon.child.pid)],
      stdout: "null",
      stderr: "null",
    }).spawn()
    : undefined;
  if (strace) await delay(500); // attached to every thread
  const cpu0 = cpuSeconds(daemon.child.pid);
  const start = performance.now();
  let lines: number;
  if (mode === "burst") {
    lines = num(0, 200_000);
    await engine.run("--name", "prof-burst", TEST_IMAGE, "sh", "-c", burstScript(lines, 100, 600));
    while (await binding.count() < lines) await delay(50);
  } else {
    const containers = num(0, 50);
    const perS = num(1, 200);
    const seconds = num(2, 15);
    lines = containers * perS * seconds;
    let got = 0;
    await binding.consume(() => got++);
    const runs = [];
    for (let i = 0; i < containers; i++) {
      runs.push(engine.run(
        "--name",
        `prof-fan-${i}`,
        TEST_IMAGE,
        "sh",
        "-c",
        pacedScript(`f${i}`, perS * seconds, perS / 10, 100, 100),
      ));
    }
    await Promise.all(runs);
    const until = performance.now() + (seconds + 60) * 1000;
    while (got < lines && performance.now() < until) await delay(100);
    if (got < lines) console.error(`only ${got} of ${lines} lines arrived`);
  }
  const cpu = cpuSeconds(daemon.child.pid) - cpu0;
  const wall = (performance.now() - start) / 1000;
  const mem = memory(daemon.child.pid);
  if (Deno.env.get("KT_SMAPS") === "1") console.log(topMappings(daemon.child.pid, 12));
  if (strace) {
    strace.kill("SIGINT");
    await strace.status;
  }
  daemon.child.kill("SIGINT");
  await daemon.child.status;
  await daemon.done;
  console.log(
    `${mode}: ${lines} lines in ${wall.toFixed(1)} s; daemon CPU ${cpu.toFixed(2)} s = ` +
      `${(cpu / lines * 1e6).toFixed(1)} µs/line (profiler ${PROFILE ? "on" : "off"}` +
      `${V8_FLAGS ? `, --v8-flags=${V8_FLAGS}` : ""}); VmHWM ${
        (mem.hwmBytes / 2 ** 20).toFixed(1)
      } MB, ` +
      `VmRSS ${(mem.rssBytes / 2 ** 20).toFixed(1)} MB`,
  );
  if (strace) {
    const table = await Deno.readTextFile(`${dir}/strace.txt`);
    console.log(`system calls (strace -c, whole run; ${lines} lines):\n${table}`);
  }
  for (const summary of await summarizeDir(dir)) {
    console.log(`\nbusy ${summary.busyMs.toFixed(0)} ms sampled; self time by function:`);
    console.log(formatTop(summary.functions, TOP));
    console.log(`\nby file:`);
    console.log(formatTop(summary.files, 15));
  }
  console.log(`\nprofile kept in ${dir}`);
  if (Deno.env.get("KT_PRINT_LOG") === "1") console.log(daemon.lines.join("\n"));
} finally {
  for (const d of daemons) {
    if ((await Promise.race([d.child.status, delay(0).then(() => undefined)])) === undefined) {
      d.child.kill("SIGKILL");
      await d.child.status;
      console.error(`daemon killed; its last lines:\n${d.lines.slice(-15).join("\n")}`);
    }
  }
  try {
    await binding?.close();
  } finally {
    await engine.stop();
  }
}

/** The largest mappings of a process by resident size, as text (`KT_SMAPS=1`). */
function topMappings(pid: number, n: number): string {
  const rows: { name: string; kb: number }[] = [];
  let name = "";
  for (const line of Deno.readTextFileSync(`/proc/${pid}/smaps`).split("\n")) {
    const head = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
    if (head) name = head[1] || "[anon]";
    const rss = line.match(/^Rss:\s+(\d+) kB$/);
    if (rss) rows.push({ name, kb: Number(rss[1]) });
  }
  const byName = new Map<string, { kb: number; count: number }>();
  for (const r of rows) {
    const e = byName.get(r.name) ?? { kb: 0, count: 0 };
    e.kb += r.kb;
    e.count++;
    byName.set(r.name, e);
  }
  const big = rows.filter((r) => r.name === "[anon]").sort((a, b) => b.kb - a.kb).slice(0, n);
  return [...byName].sort((a, b) => b[1].kb - a[1].kb).slice(0, 6)
    .map(([k, v]) => `${(v.kb / 1024).toFixed(1).padStart(7)} MB in ${v.count} mappings: ${k}`)
    .concat(big.map((r) => `${(r.kb / 1024).toFixed(1).padStart(7)} MB one anonymous mapping`))
    .join("\n");
}
