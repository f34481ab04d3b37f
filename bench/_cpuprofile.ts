/**
 * Reads a V8 `.cpuprofile` (what `deno run --cpu-prof` writes) and sums self time by function
 * and by file.
 * @module
 */

/** The parts of a `.cpuprofile` read here. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time of one function or file. */
export interface SelfTime {
  /** `name file:line`, or the file. */
  name: string;
  /** Milliseconds sampled in it. */
  ms: number;
  /** Share of the samples outside `(idle)`, percent. */
  percent: number;
}

/** A profile summed up. */
export interface ProfileSummary {
  /** Sampled time outside `(idle)`, ms. */
  busyMs: number;
  /** By function, largest first. */
  functions: SelfTime[];
  /** By file (npm packages by package), largest first. */
  files: SelfTime[];
}

/** Sums the self time of every sample by function and by file; `(idle)` is left out. */
export function summarize(profile: CpuProfile): ProfileSummary {
  const frames = new Map<number, { fn: string; file: string }>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const file = shortFile(url);
    const fn = `${functionName || "(anonymous)"}${file === "" ? "" : ` ${file}:${lineNumber + 1}`}`;
    frames.set(node.id, { fn, file: file === "" ? functionName : file });
  }
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const frame = frames.get(profile.samples[i]);
    const us = profile.timeDeltas[i] ?? 0;
    if (frame === undefined || frame.fn === "(idle)") continue;
    busy += us;
    byFn.set(frame.fn, (byFn.get(frame.fn) ?? 0) + us);
    byFile.set(frame.file, (byFile.get(frame.file) ?? 0) + us);
  }
  const list = (m: Map<string, number>) =>
    [...m].map(([name, us]) => ({ name, ms: us / 1000, percent: (us / busy) * 100 }))
      .sort((a, b) => b.ms - a.ms);
  return { busyMs: busy / 1000, functions: list(byFn), files: list(byFile) };
}

/** `lib/docker/frames.ts`, `amqplib/lib/channel.js`, `ext:deno_node/...`: short enough to read. */
function shortFile(url: string): string {
  if (url === "") return "";
  const npm = url.match(/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\/[^/]+\/(.+)$/);
  if (npm) return `${npm[1]}/${npm[2]}`;
  const local = url.match(/^file:\/\/.*?\/((?:lib|bench|tests)\/.+|main\.ts)$/);
  if (local) return local[1];
  return url;
}

/** Reads every `.cpuprofile` in `dir` and sums them. */
export async function summarizeDir(dir: string): Promise<ProfileSummary[]> {
  const out: ProfileSummary[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".cpuprofile")) continue;
    out.push(summarize(JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`))));
  }
  return out;
}

/** The top `n` rows as text. */
export function formatTop(rows: SelfTime[], n: number): string {
  return rows.slice(0, n).map((r) =>
    `${r.percent.toFixed(1).padStart(5)} %  ${r.ms.toFixed(0).padStart(6)} ms  ${r.name}`
  ).join("\n");
}
