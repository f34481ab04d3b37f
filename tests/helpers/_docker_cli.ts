/**
 * The docker CLI against one private engine's socket, shared by both test engines (Podman's
 * service answers the same Docker API, so the same client drives it), and the small helpers the
 * launchers have in common.
 * @module
 */

/** Longest run of one `docker` CLI command. */
export const DOCKER_CLI_TIMEOUT_MS = 60_000;

const LOG_TAIL_LINES = 40;

/**
 * Runs `docker -H unix://<sock> ...args` with a clean environment and its own config folder;
 * returns its trimmed stdout, or throws an Error with the exit code and stderr.
 */
export async function dockerCli(
  sock: string,
  configDir: string,
  args: string[],
  stdin?: Uint8Array,
): Promise<string> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), DOCKER_CLI_TIMEOUT_MS);
  try {
    const child = new Deno.Command("docker", {
      args: ["-H", `unix://${sock}`, ...args],
      clearEnv: true,
      env: cliEnv(configDir),
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

/** The full container id that `docker run -d` printed last, or throws. */
export function containerIdOf(runOutput: string): string {
  const id = runOutput.split("\n").at(-1)?.trim() ?? "";
  if (!/^[0-9a-f]{64}$/.test(id)) {
    throw new Error(`Cannot read a container id from docker run: got "${runOutput}"`);
  }
  return id;
}

/**
 * Starts `cmd ...args` in the background through a shell that exits at once (the process
 * outlives the call and no Deno resource spans tests), output appended to `log`; returns its PID.
 */
export async function spawnDetached(
  cmd: string,
  args: string[],
  log: string,
  env: Record<string, string> = {},
): Promise<number> {
  const out = await new Deno.Command("sh", {
    args: ["-c", '"$@" >>"$KT_LOG" 2>&1 </dev/null & echo $!', "sh", cmd, ...args],
    env: { ...env, KT_LOG: log },
    clearEnv: Object.keys(env).length > 0,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const pid = Number(new TextDecoder().decode(out.stdout).trim());
  if (!out.success || !Number.isInteger(pid) || pid <= 0) {
    throw new Error(`Cannot start ${cmd}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return pid;
}

/** PATH and HOME of this process, for a child started with a clean environment. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** A clean environment for the docker CLI: no DOCKER_HOST/DOCKER_CONTEXT, its own config dir. */
function cliEnv(configDir: string): Record<string, string> {
  return { ...baseEnv(), DOCKER_CONFIG: configDir };
}

/** Writes all of `bytes` to a child's stdin and closes it. */
async function writeAndClose(stream: WritableStream<Uint8Array>, bytes: Uint8Array): Promise<void> {
  const writer = stream.getWriter();
  await writer.write(bytes);
  await writer.close();
}

/** The last lines of an engine's log, for error messages. */
export async function logTail(path: string): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-LOG_TAIL_LINES).join("\n");
  } catch (err) {
    return `(cannot read ${path}: ${errorMessage(err)})`;
  }
}

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
