/**
 * A private Podman engine for integration tests, the twin of `DockerEngine`: `start()` runs
 * `podman system service --time=0 unix://<dir>/podman.sock` (Podman's Docker-compatible API)
 * with everything of its own under a fresh temp folder, waits for `/_ping` under a deadline and
 * imports `kt/busybox:latest` with the docker CLI; `restart()` bounces the service; `stop()`
 * removes every container, stops the service and checks that no process or mount is left.
 *
 * The set-up that works with Podman 4.3 (Debian's), all in `<dir>/containers.conf` (given by
 * `CONTAINERS_CONF`, which conmon passes on to the `container cleanup` it runs when a container
 * exits) and `<dir>/storage.conf`:
 * - its own storage root and runroot (overlay), tmp dir, network config dir, events log and file
 *   locks (so no shared memory lock segment is touched), and `runc` as runtime;
 * - `cgroupfs` cgroups and the `file` events backend (no systemd, no journald here), and the
 *   `k8s-file` log driver (journald is Podman's default and is not available);
 * - default ulimits `nofile=20000:20000` and `nproc=32768:32768`: as root Podman otherwise asks
 *   for `nofile=1048576`, above this process's hard limit where the tests run in a container, and
 *   runc fails (`error setting rlimit type 7: operation not permitted`);
 * - `docker run --init` needs catatonit (package catatonit, only recommended by podman);
 * - containers always run with `--network none`, so no bridge, route or firewall rule is made.
 *
 * Podman's containers do not depend on the service (conmon watches each one), so they always
 * outlive `restart()`, as with dockerd's `--live-restore`; without `liveRestore`, `restart()`
 * stops them first to behave like dockerd. Outside its folder Podman 4.3 leaves only two things
 * it cannot be told to put elsewhere: the empty folder `/run/containers/networks` and the image
 * blob cache `/var/lib/containers/cache`.
 * @module
 */
import { waitFor } from "./deadline.ts";
import { checkPrerequisites, imageTar, TEST_IMAGE } from "./_busybox_image.ts";
import {
  baseEnv,
  containerIdOf,
  dockerCli,
  errorMessage,
  logTail,
  spawnDetached,
} from "./_docker_cli.ts";
import { isAlive, killStrayProcesses, ping, unmountUnder } from "./_host.ts";

/** Longest wait for a new Podman service to answer `/_ping`. */
export const PODMAN_START_TIMEOUT_MS = 30_000;
/** Longest wait for the service to exit after SIGTERM (before SIGKILL). */
export const PODMAN_STOP_TIMEOUT_MS = 20_000;
/** How long `stop()` lets conmon and `podman container cleanup` finish after `rm -f`. */
const CLEANUP_GRACE_MS = 10_000;
/** Seconds `restart()` without `liveRestore` gives each container to stop. */
const STOP_CONTAINERS_TIMEOUT_S = 3;

/** Options of `PodmanEngine.start`. */
export interface PodmanEngineOptions {
  /** Containers keep running through `restart()` (always so on Podman). @default false */
  liveRestore?: boolean;
}

/** A private `podman system service`; see the module doc. */
export class PodmanEngine {
  /** Which engine this is. */
  readonly kind = "podman" as const;
  /** The service's unix socket (`<dir>/podman.sock`). */
  readonly sock: string;
  /** The temp folder holding the socket, storage, config and the log. */
  readonly dir: string;
  readonly #liveRestore: boolean;
  #pid: number | undefined;
  #stopped = false;

  private constructor(dir: string, liveRestore: boolean) {
    this.dir = dir;
    this.sock = `${dir}/podman.sock`;
    this.#liveRestore = liveRestore;
  }

  /**
   * Starts a private Podman service and imports `kt/busybox:latest` into it. Throws a clear
   * Error when a prerequisite is missing and, when the service does not come up, an Error that
   * holds the end of its log.
   */
  static async start(opts: PodmanEngineOptions = {}): Promise<PodmanEngine> {
    await checkPrerequisites("podman");
    const image = await imageTar();
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "kp." });
    const engine = new PodmanEngine(dir, opts.liveRestore ?? false);
    try {
      await engine.#writeConfig();
      await engine.#launch();
      await engine.#cli(["import", "--change", 'CMD ["/bin/sh"]', "-", TEST_IMAGE], image);
      return engine;
    } catch (err) {
      try {
        await engine.stop();
      } catch (cleanupErr) {
        throw new AggregateError([err, cleanupErr], "PodmanEngine.start failed, then its clean-up");
      }
      throw err;
    }
  }

  /** PID of the running service, if any. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /** Runs the docker CLI against this engine's socket; see `DockerEngine.docker`. */
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
   * Stops the service (SIGTERM, waits for it to exit) and starts it again on the same folders.
   * Its containers keep running; without `liveRestore` they are stopped first.
   */
  async restart(whileDown?: () => Promise<void>): Promise<void> {
    if (this.#stopped) throw new Error("Cannot restart: the engine was stopped");
    if (!this.#liveRestore) {
      const ids = await this.#running();
      if (ids.length > 0) {
        await this.#cli(["stop", "-t", String(STOP_CONTAINERS_TIMEOUT_S), ...ids]);
      }
    }
    await this.#terminate();
    try {
      await whileDown?.();
    } finally {
      await this.#launch();
    }
  }

  /**
   * Removes every container, stops the service, kills what is left of its processes (by PID),
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
        problems.push(`removing containers: ${errorMessage(err)}`);
      }
      try {
        await this.#terminate();
      } catch (err) {
        problems.push(errorMessage(err));
      }
    }
    const stray = await killStrayProcesses(this.dir, CLEANUP_GRACE_MS);
    if (stray.length > 0) problems.push(`killed stray processes: ${stray.join("; ")}`);
    const mounts = await unmountUnder(this.dir);
    if (mounts.length > 0) problems.push(`could not unmount: ${mounts.join(", ")}`);
    try {
      await Deno.remove(this.dir, { recursive: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        problems.push(`rm -rf ${this.dir}: ${errorMessage(err)}`);
      }
    }
    if (problems.length > 0) {
      throw new Error(`PodmanEngine.stop left a mess:\n- ${problems.join("\n- ")}`);
    }
  }

  /** Writes `containers.conf` and `storage.conf` (see the module doc). */
  async #writeConfig(): Promise<void> {
    const d = this.dir;
    await Deno.mkdir(`${d}/net`);
    await Deno.mkdir(`${d}/tmp`);
    await Deno.writeTextFile(
      `${d}/containers.conf`,
      [
        "[containers]",
        'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
        'log_driver = "k8s-file"',
        'netns = "none"',
        "[network]",
        `network_config_dir = "${d}/net"`,
        "[engine]",
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = "${d}/events.log"`,
        `tmp_dir = "${d}/tmp"`,
        'lock_type = "file"',
        'runtime = "runc"',
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      `${d}/storage.conf`,
      ["[storage]", 'driver = "overlay"', `graphroot = "${d}/root"`, `runroot = "${d}/run"`, ""]
        .join("\n"),
    );
  }

  async #launch(): Promise<void> {
    const d = this.dir;
    const args = [
      `--root=${d}/root`,
      `--runroot=${d}/run`,
      "--storage-driver=overlay",
      "--cgroup-manager=cgroupfs",
      "--events-backend=file",
      "--log-level=warn",
      "system",
      "service",
      "--time=0",
      `unix://${this.sock}`,
    ];
    const env = {
      ...baseEnv(),
      CONTAINERS_CONF: `${d}/containers.conf`,
      CONTAINERS_STORAGE_CONF: `${d}/storage.conf`,
    };
    const pid = await spawnDetached("podman", args, `${d}/podman.log`, env);
    this.#pid = pid;
    try {
      await waitFor(async () => {
        if (!isAlive(pid)) throw new Error("podman system service exited while starting");
        return await ping(this.sock);
      }, { timeoutMs: PODMAN_START_TIMEOUT_MS, what: "podman system service to answer /_ping" });
    } catch (err) {
      const log = await logTail(`${d}/podman.log`);
      console.error(`--- podman log (${d}/podman.log) ---\n${log}`);
      throw new Error(`${errorMessage(err)}\n--- end of podman log ---\n${log}`, { cause: err });
    }
  }

  /** SIGTERM, wait; SIGKILL the service when the wait runs out (then throws). */
  async #terminate(): Promise<void> {
    const pid = this.#pid;
    if (pid === undefined || !isAlive(pid)) return;
    Deno.kill(pid, "SIGTERM");
    try {
      await waitFor(() => !isAlive(pid), {
        timeoutMs: PODMAN_STOP_TIMEOUT_MS,
        what: `podman system service (pid ${pid}) to exit after SIGTERM`,
      });
    } catch (err) {
      if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
      await waitFor(() => !isAlive(pid), { timeoutMs: 5_000, what: "podman to die of SIGKILL" });
      throw new Error(`${errorMessage(err)}: killed it`, { cause: err });
    } finally {
      this.#pid = undefined;
    }
  }

  /** Ids of the running containers. */
  async #running(): Promise<string[]> {
    return (await this.#cli(["ps", "-q"])).split(/\s+/).filter((s) => s !== "");
  }

  #cli(args: string[], stdin?: Uint8Array): Promise<string> {
    return dockerCli(this.sock, `${this.dir}/cli`, args, stdin);
  }
}
