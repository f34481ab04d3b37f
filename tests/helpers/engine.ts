/**
 * The engine of the integration tests, chosen by `KAROTTEN_TEST_ENGINE`: `docker` (the default,
 * a private `dockerd`) or `podman` (a private `podman system service`, Podman's Docker-compatible
 * API). Both launchers have the same interface, so a test starts `startEngine()` and does not
 * know which it got: the end-to-end tests assert the same on both.
 * @module
 */
import { DockerEngine } from "./dockerd.ts";
import { PodmanEngine } from "./podman.ts";
import { TEST_IMAGE } from "./_busybox_image.ts";

export { TEST_IMAGE };

/** The engines the tests can run on. */
export type EngineKind = "docker" | "podman";

/** The environment variable that picks the engine. */
export const ENGINE_ENV = "KAROTTEN_TEST_ENGINE";

/** A private engine for one test file or test; see `DockerEngine` and `PodmanEngine`. */
export interface TestEngine {
  /** Which engine this is. */
  readonly kind: EngineKind;
  /** The engine's unix socket (what karotten gets as `DOCKER_SOCK`). */
  readonly sock: string;
  /** The temp folder holding everything of the engine. */
  readonly dir: string;
  /** PID of the engine's process (`dockerd` or the Podman service), while it runs. */
  readonly pid: number | undefined;
  /** Runs the docker CLI against the engine's socket; returns its trimmed stdout. */
  docker(...args: string[]): Promise<string>;
  /** `docker run -d --pull never --network none ...args`; returns the full container id. */
  run(...args: string[]): Promise<string>;
  /**
   * Stops the engine's process and starts it again on the same folders; `whileDown`, when
   * given, runs in between (the engine stays down until it settles).
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  /** Removes every container, stops the engine and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of `startEngine`. */
export interface EngineOptions {
  /** Containers keep running through `restart()` (dockerd `--live-restore`). @default false */
  liveRestore?: boolean;
}

/** The engine `KAROTTEN_TEST_ENGINE` names (`docker` when unset); throws on anything else. */
export function testEngineKind(): EngineKind {
  const value = Deno.env.get(ENGINE_ENV) ?? "docker";
  if (value === "docker" || value === "podman") return value;
  throw new Error(`${ENGINE_ENV} must be docker or podman: current value is "${value}"`);
}

/** Starts a private engine of the kind `KAROTTEN_TEST_ENGINE` names. */
export async function startEngine(opts: EngineOptions = {}): Promise<TestEngine> {
  const kind = testEngineKind();
  const engine = kind === "podman"
    ? await PodmanEngine.start(opts)
    : await DockerEngine.start(opts);
  return engine;
}
