/**
 * Starts the daemon as users do, `deno run --quiet <permission flags> main.ts` from the repo
 * root with only the environment given, and collects what it prints, line by line, so a test
 * can await log events (`<ISO time> <level> <event> key=value ...`).
 * @module
 */
import { daemonFlags } from "../../lib/permissions.ts";

/** The repo root: the daemon's working directory. */
export const REPO_ROOT: string = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/** How long `stop()` waits after SIGTERM before it sends SIGKILL. */
export const KILL_AFTER_MS = 10_000;

/** Lines kept in a `waitForLog` error message. */
const ERROR_TAIL_LINES = 30;

/** A running daemon; see `startKarotten`. */
export interface Karotten {
  /** The daemon's process id (the `deno` process itself: no shell in between). */
  readonly pid: number;
  /** Every line it printed so far (stderr and stdout, in order of arrival). */
  readonly lines: string[];
  /** The lines it printed to stdout only (a dry run's output). */
  readonly stdoutLines: string[];
  /**
   * Resolves with the first line matching `re`, among the lines already printed or to come.
   * Rejects with the last lines printed when `timeoutMs` passes, or when the daemon exits
   * without printing one.
   */
  waitForLog(re: RegExp, timeoutMs: number): Promise<string>;
  /** Sends a signal (no-op once it has exited). */
  kill(signal: Deno.Signal): void;
  /** Its exit code (128 + n when killed by signal n), once its output is all read. */
  readonly exited: Promise<number>;
  /**
   * SIGTERM, then awaits the exit; SIGKILL after `KILL_AFTER_MS`. Returns the exit code; throws
   * when the daemon printed a stack trace (everything must go through its one-line logger).
   */
  stop(): Promise<number>;
}

/**
 * Spawns `deno run --quiet ...daemonFlags(env) main.ts ...args` in the repo root with a clean
 * environment: `PATH`, `HOME`, `NO_COLOR=1`, `DENO_DIR` if set, then `env`. Every test that
 * starts it must await `stop()` or `exited` before it ends (Deno's sanitizers check).
 *
 * With env `KT_ECHO=1` in the test process, each line is echoed to stderr as it arrives.
 *
 * @example
 * ```ts
 * const k = await startKarotten({ RABBITMQ_URL: RABBIT_URL, DOCKER_SOCK: engine.sock });
 * try {
 *   await k.waitForLog(/ ready /, 10_000);
 * } finally {
 *   await k.stop();
 * }
 * ```
 */
export function startKarotten(
  env: Record<string, string>,
  script = "main.ts",
  args: readonly string[] = [],
): Promise<Karotten> {
  const flags = daemonFlags((n) => env[n], { dryRun: args.includes("--dry-run") });
  return Promise.resolve(
    spawnDaemon(Deno.execPath(), ["run", "--quiet", ...flags, script, ...args], env),
  );
}

/**
 * Spawns any daemon, `command args` in `cwd` (the repo root by default), with the same clean
 * environment as `startKarotten` (`PATH`, `HOME`, `NO_COLOR=1`, `DENO_DIR` if set, then `env`),
 * and hands it out as the same `Karotten` handle: the benchmark runs the performance peer and
 * karotten with other runtime flags through it.
 */
export function spawnDaemon(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  cwd: string = REPO_ROOT,
): Karotten {
  const base: Record<string, string> = { NO_COLOR: "1" };
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
  return new Running(child);
}

/** A line of a stack trace or of Deno's report of an uncaught error: never the logger's. */
const STACK_LINE = /^\s+at \S|^error: Uncaught/;

/** A line listener: returns true when it is done and wants no more lines. */
type Listener = (line: string | null) => boolean;

class Running implements Karotten {
  readonly lines: string[] = [];
  readonly stdoutLines: string[] = [];
  readonly pid: number;
  readonly exited: Promise<number>;
  readonly #child: Deno.ChildProcess;
  readonly #listeners = new Set<Listener>();
  readonly #echo = Deno.env.get("KT_ECHO") === "1";
  #done = false;

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
      for (const listener of [...this.#listeners]) listener(null);
      return status.code;
    })();
  }

  waitForLog(re: RegExp, timeoutMs: number): Promise<string> {
    const matches = (line: string) => line.search(re) !== -1;
    const seen = this.lines.find(matches);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        const tail = this.lines.slice(-ERROR_TAIL_LINES).join("\n");
        reject(new Error(`${why} waiting for a log line matching ${re}; last lines:\n${tail}`));
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        fail(`timed out after ${timeoutMs}ms`);
      }, timeoutMs);
      const listener: Listener = (line) => {
        if (line !== null && !matches(line)) return false;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        if (line === null) fail("karotten exited");
        else resolve(line);
        return true;
      };
      if (this.#done) listener(null);
      else this.#listeners.add(listener);
    });
  }

  kill(signal: Deno.Signal): void {
    if (this.#done) return;
    try {
      this.#child.kill(signal);
    } catch (err) {
      // It exited between the check and the kill; anything else is a real error.
      if (!(err instanceof TypeError && /already terminated/.test(err.message))) throw err;
    }
  }

  async stop(): Promise<number> {
    this.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const code = await Promise.race([
        this.exited,
        new Promise<number>((resolve) => {
          timer = setTimeout(() => {
            this.kill("SIGKILL");
            resolve(this.exited);
          }, KILL_AFTER_MS);
        }),
      ]);
      const stack = this.lines.filter((l) => STACK_LINE.test(l));
      if (stack.length > 0) {
        throw new Error(`karotten printed a stack trace past its logger:\n${stack.join("\n")}`);
      }
      return code;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads a stream to its end, splitting it into lines (`\n`, an optional `\r` dropped). */
  async #pump(stream: ReadableStream<Uint8Array>, only?: string[]): Promise<void> {
    let rest = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + text).split("\n");
      rest = parts.pop() ?? "";
      for (const part of parts) this.#line(part, only);
    }
    if (rest !== "") this.#line(rest, only);
  }

  #line(raw: string, only?: string[]): void {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    this.lines.push(line);
    only?.push(line);
    if (this.#echo) console.error(`karotten| ${line}`);
    for (const listener of [...this.#listeners]) listener(line);
  }
}

/** Lines of karotten's own log added to a failure by `withLogTail`. */
export const LOG_TAIL_LINES = 40;

/** `err` with the end of karotten's log (without per-message debug lines) in its message. */
export function withLogTail(err: unknown, k: Karotten): Error {
  const tail = k.lines.filter((l) => !/ debug (published|docker_get) /.test(l))
    .slice(-LOG_TAIL_LINES).join("\n");
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`${message}\n--- karotten's log (last lines) ---\n${tail}`, { cause: err });
}
