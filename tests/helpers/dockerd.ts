/**
 * A private Docker engine for integration tests, modelled on a server launcher: `start()` runs
 * `dockerd` in a fresh temp folder with its own socket, data and exec roots, waits for `/_ping`
 * under a deadline and imports the `kt/busybox:latest` image; `restart()` bounces it; `stop()`
 * removes every container, stops `dockerd` and checks that no process or mount of it is left.
 *
 * `dockerd` is started in the background by a shell that exits at once, and is then known only
 * by its PID: no Deno resource spans tests, so one engine may serve several `Deno.test`s.
 * Its log is `<dir>/dockerd.log`.
 * @module
 */
import { waitFor } from "./deadline.ts";
import { checkPrerequisites, imageTar } from "./_busybox_image.ts";
import { isAlive, killStrayProcesses, ping, readPid, unmountUnder } from "./_host.ts";

/** The image every engine has: busybox-static with all its applets, `CMD ["/bin/sh"]`. */
export const TEST_IMAGE = "kt/busybox:latest";

/** Longest wait for a new `dockerd` to answer `/_ping`. */
export const ENGINE_START_TIMEOUT_MS = 30_000;
/** Longest wait for `dockerd` to exit after SIGTERM (before SIGKILL). */
export const ENGINE_STOP_TIMEOUT_MS = 20_000;
/** Longest run of one `docker` CLI command. */
export const DOCKER_CLI_TIMEOUT_MS = 60_000;

const LOG_TAIL_LINES = 40;

/** Options of `DockerEngine.start`. */
export interface DockerEngineOptions {
  /** Start `dockerd` with `--live-restore`: containers outlive `restart()`. @default false */
  liveRestore?: boolean;
}

/** A private `dockerd`; see the module doc. */
export class DockerEngine {
  /** The engine's unix socket (`<dir>/docker.sock`). */
  readonly sock: string;
  /** The temp folder holding the socket, data and exec roots and the log. */
  readonly dir: string;
  readonly #liveRestore: boolean;
  #pid: number | undefined;
  #stopped = false;

  private constructor(dir: string, liveRestore: boolean) {
    this.dir = dir;
    this.sock = `${dir}/docker.sock`;
    this.#liveRestore = liveRestore;
  }

  /**
   * Starts a private engine and imports `kt/busybox:latest` into it. Throws a clear Error when
   * a prerequisite is missing (not root, no `dockerd`/`docker`/`tar`, no static busybox) and,
   * when `dockerd` does not come up, an Error that holds the end of its log.
   */
  static async start(opts: DockerEngineOptions = {}): Promise<DockerEngine> {
    await checkPrerequisites();
    const image = await imageTar();
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "kt." });
    const engine = new DockerEngine(dir, opts.liveRestore ?? false);
    try {
      await Deno.writeTextFile(`${dir}/daemon.json`, "{}\n");
      await engine.#launch();
      await engine.#cli(["import", "--change", 'CMD ["/bin/sh"]', "-", TEST_IMAGE], image);
      return engine;
    } catch (err) {
      try {
        await engine.stop();
      } catch (cleanupErr) {
        throw new AggregateError([err, cleanupErr], "DockerEngine.start failed, then its clean-up");
      }
      throw err;
    }
  }

  /** PID of the running `dockerd`, if any. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /**
   * Runs the docker CLI against this engine (`docker -H unix://<sock> ...args`) and returns its
   * trimmed stdout; throws an Error with the exit code and stderr when it fails.
   */
  docker(...args: string[]): Promise<string> {
    return this.#cli(args);
  }

  /** `docker run -d --pull never --network none ...args`; returns the full container id. */
  async run(...args: string[]): Promise<string> {
    const out = await this.#cli(["run", "-d", "--pull", "never", "--network", "none", ...args]);
    const id = out.split("\n").at(-1)?.trim() ?? "";
    if (!/^[0-9a-f]{64}$/.test(id)) {
      throw new Error(`Cannot read a container id from docker run: got "${out}"`);
    }
    return id;
  }

  /**
   * Stops `dockerd` (SIGTERM, waits for it to exit) and starts it again on the same folders.
   * With `liveRestore` its containers keep running; without, `dockerd` stops them first.
   */
  async restart(): Promise<void> {
    if (this.#stopped) throw new Error("Cannot restart: the engine was stopped");
    await this.#terminate();
    await this.#launch();
  }

  /**
   * Removes every container, stops `dockerd`, kills what is left of its processes (by PID),
   * unmounts everything under `dir` and removes `dir`. Safe to call twice. Throws, after doing
   * all it can, when something could not be cleaned up.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const problems: string[] = [];
    if (this.#pid !== undefined && isAlive(this.#pid)) {
      try {
        const ids = (await this.#cli(["ps", "-aq"])).split(/\s+/).filter((s) => s !== "");
        if (ids.length > 0) await this.#cli(["rm", "-f", ...ids]);
      } catch (err) {
        problems.push(`removing containers: ${message(err)}`);
      }
      try {
        await this.#terminate();
      } catch (err) {
        problems.push(message(err));
      }
    }
    const stray = await killStrayProcesses(this.dir);
    if (stray.length > 0) problems.push(`killed stray processes: ${stray.join("; ")}`);
    const mounts = await unmountUnder(this.dir);
    if (mounts.length > 0) problems.push(`could not unmount: ${mounts.join(", ")}`);
    try {
      await Deno.remove(this.dir, { recursive: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        problems.push(`rm -rf ${this.dir}: ${message(err)}`);
      }
    }
    if (problems.length > 0) {
      throw new Error(`DockerEngine.stop left a mess:\n- ${problems.join("\n- ")}`);
    }
  }

  async #launch(): Promise<void> {
    const d = this.dir;
    const flags = [
      `--host=unix://${this.sock}`,
      `--data-root=${d}/data`,
      `--exec-root=${d}/exec`,
      `--pidfile=${d}/dockerd.pid`,
      `--config-file=${d}/daemon.json`,
      "--storage-driver=overlay2",
      "--bridge=none",
      "--iptables=false",
      "--ip6tables=false",
      "--ip-masq=false",
      "--ip-forward=false",
      "--shutdown-timeout=3",
      "--log-level=warn",
      ...(this.#liveRestore ? ["--live-restore"] : []),
    ];
    // The shell starts dockerd in the background and exits: dockerd outlives this call.
    const out = await new Deno.Command("sh", {
      args: ["-c", '"$@" >>"$KT_LOG" 2>&1 </dev/null & echo $!', "sh", "dockerd", ...flags],
      env: { KT_LOG: `${d}/dockerd.log` },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const pid = Number(new TextDecoder().decode(out.stdout).trim());
    if (!out.success || !Number.isInteger(pid) || pid <= 0) {
      throw new Error(`Cannot start dockerd: ${new TextDecoder().decode(out.stderr)}`);
    }
    this.#pid = pid;
    try {
      await waitFor(async () => {
        if (!isAlive(pid)) throw new Error("dockerd exited while starting");
        return await ping(this.sock);
      }, { timeoutMs: ENGINE_START_TIMEOUT_MS, what: "dockerd to answer /_ping" });
    } catch (err) {
      const log = await logTail(`${d}/dockerd.log`);
      console.error(`--- dockerd log (${d}/dockerd.log) ---\n${log}`);
      throw new Error(`${message(err)}\n--- end of dockerd log ---\n${log}`, { cause: err });
    }
  }

  /** SIGTERM, wait; SIGKILL dockerd and containerd when the wait runs out (then throws). */
  async #terminate(): Promise<void> {
    const pid = this.#pid;
    if (pid === undefined || !isAlive(pid)) return;
    const containerd = await readPid(`${this.dir}/exec/containerd/containerd.pid`);
    Deno.kill(pid, "SIGTERM");
    try {
      await waitFor(() => !isAlive(pid), {
        timeoutMs: ENGINE_STOP_TIMEOUT_MS,
        what: `dockerd (pid ${pid}) to exit after SIGTERM`,
      });
    } catch (err) {
      for (const p of [pid, containerd]) {
        if (p !== undefined && isAlive(p)) Deno.kill(p, "SIGKILL");
      }
      await waitFor(() => !isAlive(pid), { timeoutMs: 5_000, what: "dockerd to die of SIGKILL" });
      throw new Error(`${message(err)}: killed it`, { cause: err });
    } finally {
      this.#pid = undefined;
    }
  }

  async #cli(args: string[], stdin?: Uint8Array): Promise<string> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), DOCKER_CLI_TIMEOUT_MS);
    try {
      const child = new Deno.Command("docker", {
        args: ["-H", `unix://${this.sock}`, ...args],
        clearEnv: true,
        env: cliEnv(`${this.dir}/cli`),
        stdin: stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
        signal: ac.signal,
      }).spawn();
      const [, out] = await Promise.all([
        stdin === undefined ? undefined : writeAndClose(child.stdin, stdin),
        child.output(),
      ]);
      const text = new TextDecoder().decode(out.stdout).trim();
      if (!out.success) {
        const why = ac.signal.aborted ? ` (killed after ${DOCKER_CLI_TIMEOUT_MS}ms)` : "";
        throw new Error(
          `docker ${args.join(" ")} failed with exit code ${out.code}${why}: ` +
            new TextDecoder().decode(out.stderr).trim(),
        );
      }
      return text;
    } finally {
      clearTimeout(timer);
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** A clean environment for the docker CLI: no DOCKER_HOST/DOCKER_CONTEXT, its own config dir. */
function cliEnv(configDir: string): Record<string, string> {
  const env: Record<string, string> = { DOCKER_CONFIG: configDir };
  for (const name of ["PATH", "HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Writes all of `bytes` to a child's stdin and closes it. */
async function writeAndClose(stream: WritableStream<Uint8Array>, bytes: Uint8Array): Promise<void> {
  const writer = stream.getWriter();
  await writer.write(bytes);
  await writer.close();
}

/** The last lines of the dockerd log, for error messages. */
async function logTail(path: string): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-LOG_TAIL_LINES).join("\n");
  } catch (err) {
    return `(cannot read ${path}: ${message(err)})`;
  }
}

/** The message of anything thrown. */
function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
