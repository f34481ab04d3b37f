/**
 * Host-side helpers of `DockerEngine`: process liveness, stray processes, mounts, `/_ping`.
 * @module
 */
import { waitFor } from "./deadline.ts";
import { concatBytes } from "../../lib/bytes.ts";

const PING_TIMEOUT_MS = 2_000;

/** False once the process is gone or a zombie (it may not be our child, so we can't reap it). */
export function isAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

/** Live processes (other than this one) whose command line names a path under `dir`. */
async function processesUnder(dir: string): Promise<{ pid: number; cmdline: string }[]> {
  const found: { pid: number; cmdline: string }[] = [];
  const needle = `${dir}/`;
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === Deno.pid) continue;
    let cmdline: string;
    try {
      cmdline = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).replaceAll("\0", " ").trim();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue; // exited meanwhile
      throw err;
    }
    if (cmdline.includes(needle) && isAlive(pid)) found.push({ pid, cmdline });
  }
  return found;
}

/**
 * SIGKILLs every process whose command line names a path under `dir`; returns what it killed.
 * With `graceMs`, first waits up to that long for them to exit by themselves (helpers an engine
 * runs after a container is removed).
 */
export async function killStrayProcesses(dir: string, graceMs = 0): Promise<string[]> {
  if (graceMs > 0) {
    await waitFor(async () => (await processesUnder(dir)).length === 0, {
      timeoutMs: graceMs,
      what: `processes under ${dir} to exit`,
    }).catch(() => {/* whatever is left is killed and reported below */});
  }
  const killed: string[] = [];
  for (const { pid, cmdline } of await processesUnder(dir)) {
    try {
      Deno.kill(pid, "SIGKILL");
      killed.push(`${pid} ${cmdline.slice(0, 120)}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  for (const line of killed) {
    const pid = Number(line.split(" ")[0]);
    await waitFor(() => !isAlive(pid), { timeoutMs: 5_000, what: `pid ${pid} to die` });
  }
  return killed;
}

/** Mount points at or under `dir`, deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await Deno.readTextFile("/proc/self/mountinfo");
  const points = info.split("\n").filter((l) => l !== "").map((l) => {
    // Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
    return l.split(" ")[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  });
  return points.filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or under `dir` (lazily when busy); returns what is still mounted. */
export async function unmountUnder(dir: string): Promise<string[]> {
  for (const point of await mountsUnder(dir)) {
    const plain = await new Deno.Command("umount", { args: [point], stderr: "piped" }).output();
    if (!plain.success) {
      await new Deno.Command("umount", { args: ["-l", point], stderr: "piped" }).output();
    }
  }
  return await mountsUnder(dir);
}

/** One `GET /_ping` over the socket; false when nothing listens yet or the answer is not OK. */
export async function ping(sock: string): Promise<boolean> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: sock });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.ConnectionRefused) {
      return false;
    }
    throw err;
  }
  let closed = false;
  const close = () => {
    if (!closed) conn.close();
    closed = true;
  };
  const timer = setTimeout(close, PING_TIMEOUT_MS);
  try {
    await writeAllConn(
      conn,
      new TextEncoder().encode("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"),
    );
    const parts: Uint8Array[] = [];
    const buf = new Uint8Array(4096);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(concatBytes(parts));
    return /^HTTP\/1\.[01] 200 /.test(text) && text.endsWith("\r\n\r\nOK");
  } catch (err) {
    if (closed || err instanceof Deno.errors.ConnectionReset) return false;
    throw err;
  } finally {
    clearTimeout(timer);
    close();
  }
}

/** The PID in a pidfile, or undefined when there is none. */
export async function readPid(path: string): Promise<number | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(path)).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Writes all of `bytes` (a conn write may be partial). */
async function writeAllConn(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}
