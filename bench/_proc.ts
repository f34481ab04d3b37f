/**
 * What the benchmark reads from `/proc`: a process's CPU time and memory, the machine, and how
 * busy it is with other work.
 * @module
 */

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK` on Linux x86-64). */
export const CLOCK_TICKS_PER_S = 100;

/** User plus system CPU time of a process and all its threads so far, seconds. */
export function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces) start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]); // field 14 of proc(5)
  const stime = Number(fields[12]); // field 15
  return (utime + stime) / CLOCK_TICKS_PER_S;
}

/**
 * Run time of each live thread of a process so far, nanoseconds by thread id (the first field of
 * `/proc/<pid>/task/<tid>/schedstat`): exact, where `cpuSeconds` counts 10 ms clock ticks.
 */
export function threadRunNanos(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`);
      out.set(Number(task.name), Number(stat.split(" ")[0]));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err; // exited meanwhile
    }
  }
  return out;
}

/**
 * CPU seconds a process used between two `threadRunNanos` readings: each thread's growth, a thread
 * started meanwhile counted whole. A thread that exited meanwhile is not counted at all (its run
 * time since `before` is lost); an idle daemon's threads live on.
 */
export function threadCpuSeconds(
  before: Map<number, number>,
  after: Map<number, number>,
): number {
  let nanos = 0;
  for (const [tid, ns] of after) nanos += ns - (before.get(tid) ?? 0);
  return nanos / 1e9;
}

/** Busy and total CPU time of the whole machine so far, seconds (all CPUs, from `/proc/stat`). */
export function machineCpu(): { busy: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]; // "cpu  user nice system ..."
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // up to steal; guest is in user
  const idle = v[3] + v[4]; // idle + iowait
  return { busy: (total - idle) / CLOCK_TICKS_PER_S, total: total / CLOCK_TICKS_PER_S };
}

/** Pids of the processes whose command name (`/proc/<pid>/comm`) is `comm`. */
export function pidsOf(comm: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${entry.name}/comm`).trim() === comm) {
        found.push(Number(entry.name));
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err; // exited meanwhile
    }
  }
  return found;
}

/**
 * CPU seconds of several processes, read together: `take()` returns what each used since the
 * previous `take()` (or since `new`), by name; a process that exited counts 0.
 */
export class CpuMeter {
  readonly #pids: Map<string, number>;
  #last: Map<string, number>;

  /** `pids`: a name for each process to watch. */
  constructor(pids: Record<string, number | undefined>) {
    this.#pids = new Map(
      Object.entries(pids).filter((e): e is [string, number] => e[1] !== undefined),
    );
    this.#last = this.#read();
  }

  /** CPU seconds of each process since the last call, plus `machine` (all CPUs, busy). */
  take(): Record<string, number> {
    const now = this.#read();
    const out: Record<string, number> = {};
    for (const [name, value] of now) out[name] = value - (this.#last.get(name) ?? value);
    this.#last = now;
    return out;
  }

  #read(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [name, pid] of this.#pids) {
      try {
        m.set(name, cpuSeconds(pid));
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    m.set("machine", machineCpu().busy);
    return m;
  }
}

/** Reads a `/proc` file of `Name:   N kB` lines; the function gives a named field in bytes. */
function kbFields(path: string): (name: string) => number {
  const text = Deno.readTextFileSync(path);
  return (name) => {
    const m = text.match(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m"));
    if (!m) throw new Error(`Cannot read ${name}: not in ${path}`);
    return Number(m[1]) * 1024;
  };
}

/** Resident memory of a process, bytes. */
export interface Memory {
  /** `VmRSS`: resident now. */
  rssBytes: number;
  /** `VmHWM`: the most ever resident. */
  hwmBytes: number;
}

/** `VmRSS` and `VmHWM` of a process, from `/proc/<pid>/status`. */
export function memory(pid: number): Memory {
  const kb = kbFields(`/proc/${pid}/status`);
  return { rssBytes: kb("VmRSS"), hwmBytes: kb("VmHWM") };
}

/** Resident memory of a process split by what backs it, bytes. */
export interface ResidentSplit {
  /** `Rss` of `/proc/<pid>/smaps_rollup`. */
  rssBytes: number;
  /** `Anonymous`: heap, stacks, malloc arenas. */
  anonBytes: number;
  /** The rest: file-backed pages (the binary, libraries) and shared memory. */
  fileBytes: number;
}

/** Resident memory of a process, anonymous vs file-backed, from `/proc/<pid>/smaps_rollup`. */
export function residentSplit(pid: number): ResidentSplit {
  const kb = kbFields(`/proc/${pid}/smaps_rollup`);
  const rss = kb("Rss");
  const anon = kb("Anonymous");
  return { rssBytes: rss, anonBytes: anon, fileBytes: rss - anon };
}

/** The machine the figures come from. */
export interface Machine {
  /** Online CPUs (`nproc`). */
  cpus: number;
  /** `model name` of the first CPU in `/proc/cpuinfo`. */
  model: string;
  /** Kernel release. */
  kernel: string;
  /** Total memory, bytes. */
  memoryBytes: number;
}

/** Reads the machine description. */
export function machine(): Machine {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? "unknown";
  const meminfo = Deno.readTextFileSync("/proc/meminfo");
  const memKb = Number(meminfo.match(/^MemTotal:\s+(\d+) kB$/m)?.[1] ?? 0);
  return {
    cpus: navigator.hardwareConcurrency,
    model,
    kernel: Deno.osRelease(),
    memoryBytes: memKb * 1024,
  };
}

/** The 1-minute load average. */
export function loadAverage(): number {
  return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
}

/**
 * Other `deno test` processes running on the machine now (other engineers' suites sharing the
 * cores and the broker), by pid.
 */
export function otherDenoTests(): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === Deno.pid) continue;
    let argv: string[];
    try {
      argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) {
        continue; // exited meanwhile, or not ours to read
      }
      throw err;
    }
    if (/(^|\/)deno$/.test(argv[0] ?? "") && argv[1] === "test") found.push(pid);
  }
  return found;
}

/**
 * inotify instances open on the machine now, all processes (`fs.inotify.max_user_instances`,
 * 128 by default, counts them per user: root's dockerds share it).
 */
export function inotifyInstances(): number {
  let n = 0;
  for (const proc of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(proc.name)) continue;
    try {
      for (const fd of Deno.readDirSync(`/proc/${proc.name}/fd`)) {
        try {
          if (Deno.readLinkSync(`/proc/${proc.name}/fd/${fd.name}`) === "anon_inode:inotify") n++;
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err; // closed meanwhile
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied)) {
        throw err;
      }
    }
  }
  return n;
}
