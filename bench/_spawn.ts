/**
 * A daemon spawned by the benchmark other than through `startKarotten`: the performance peer
 * (`KAROTTEN_BENCH_PEER`), or karotten with other runtime flags. It is handed out as the same
 * `Karotten` handle the workloads take: its pid, the lines it printed, a wait for a line, a stop.
 * @module
 */
import type { Karotten } from "../tests/helpers/karotten.ts";

/** How long `stop()` waits after SIGTERM before it sends SIGKILL. */
const KILL_AFTER_MS = 10_000;

/**
 * Spawns `command args` in `cwd` with a clean environment (`PATH`, `HOME`, `DENO_DIR`, then
 * `env`) and collects what it prints (stdout and stderr) line by line.
 */
export function spawnDaemon(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  cwd?: string,
): Karotten {
  const base: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) base[name] = value;
  }
  const child = new Deno.Command(command, {
    args: [...args],
    cwd,
    clearEnv: true,
    env: { ...base, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return new Spawned(child);
}

class Spawned implements Karotten {
  readonly lines: string[] = [];
  readonly stdoutLines: string[] = [];
  readonly pid: number;
  readonly exited: Promise<number>;
  readonly #child: Deno.ChildProcess;
  #done = false;
  readonly #waiters = new Set<(line: string | null) => void>();

  constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.pid = child.pid;
    this.exited = (async () => {
      const [status] = await Promise.all([
        child.status,
        this.#pump(child.stdout, this.stdoutLines),
        this.#pump(child.stderr),
      ]);
      this.#done = true;
      for (const w of [...this.#waiters]) w(null);
      return status.signal ? 128 + (status.signal === "SIGKILL" ? 9 : 15) : status.code;
    })();
  }

  waitForLog(re: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = (line: string | null, why?: string) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        if (line !== null) resolve(line);
        else reject(new Error(`${why} waiting for ${re}; last lines:\n${this.#tail()}`));
      };
      const waiter = (line: string | null) => {
        if (line === null) done(null, "exited");
        else if (re.test(line)) done(line);
      };
      const timer = setTimeout(() => done(null, `timed out after ${timeoutMs}ms`), timeoutMs);
      if (this.#done) done(null, "exited");
      else this.#waiters.add(waiter);
    });
  }

  kill(signal: Deno.Signal): void {
    if (this.#done) return;
    try {
      this.#child.kill(signal);
    } catch (err) {
      if (!(err instanceof TypeError && /already terminated/.test(err.message))) throw err;
    }
  }

  async stop(): Promise<number> {
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), KILL_AFTER_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  #tail(): string {
    return this.lines.slice(-20).join("\n");
  }

  async #pump(stream: ReadableStream<Uint8Array>, only?: string[]): Promise<void> {
    let rest = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + text).split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) this.#line(line, only);
    }
    if (rest !== "") this.#line(rest, only);
  }

  #line(line: string, only?: string[]): void {
    this.lines.push(line);
    only?.push(line);
    for (const w of [...this.#waiters]) w(line);
  }
}
