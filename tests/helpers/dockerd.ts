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
import { checkPrerequisites, imageTar, TEST_IMAGE } from "./_busybox_image.ts";
import {
  containerIdOf,
  dockerCli,
  errorMessage as message,
  logTail,
  spawnDetached,
} from "./_docker_cli.ts";
import { isAlive, killStrayProcesses, ping, readPid, unmountUnder } from "./_host.ts";

export { TEST_IMAGE };

/** Longest wait for a new `dockerd` to answer `/_ping`. */
export const ENGINE_START_TIMEOUT_MS = 30_000;
/** Longest wait for `dockerd` to exit after SIGTERM (before SIGKILL). */
export const ENGINE_STOP_TIMEOUT_MS = 20_000;

/** Options of `DockerEngine.start`. */
export interface DockerEngineOptions {
  /** Start `dockerd` with `--live-restore`: containers outlive `restart()`. @default false */
  liveRestore?: boolean;
}

/** A private `dockerd`; see the module doc. */
export class DockerEngine {
  /** Which engine this is. */
  readonly kind = "docker" as const;
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
    await checkPrerequisites("docker");
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
    return containerIdOf(
      await this.#cli(["run", "-d", "--pull", "never", "--network", "none", ...args]),
    );
  }

  /**
   * Stops `dockerd` (SIGTERM, waits for it to exit) and starts it again on the same folders.
   * With `liveRestore` its containers keep running; without, `dockerd` stops them first.
   */
  async restart(whileDown?: () => Promise<void>): Promise<void> {
    if (this.#stopped) throw new Error("Cannot restart: the engine was stopped");
    await this.#terminate();
    try {
      await whileDown?.();
    } finally {
      await this.#launch();
    }
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
    const pid = await spawnDetached("dockerd", flags, `${d}/dockerd.log`);
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

  #cli(args: string[], stdin?: Uint8Array): Promise<string> {
    return dockerCli(this.sock, `${this.dir}/cli`, args, stdin);
  }
}
