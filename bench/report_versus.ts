/**
 * The side-by-side figures of `versus.ts` as outputs: a Markdown table with the peer columns and
 * the ratios karotten / peer, the targets against the peer, and a chart panel.
 * @module
 */
import type { Machine } from "./_proc.ts";
import type { Target } from "./report.ts";
import { type ContenderName, SOAK_SERIES, type SoakSeriesName, type Versus } from "./versus.ts";

const MIB = 1024 * 1024;

const SOAK_SERIES_LABELS: Record<SoakSeriesName, string> = {
  rss: "RSS",
  anon: "RSS anonymous",
  file: "RSS file-backed",
  heapUsed: "JS heap used",
  heapTotal: "JS heap total",
  external: "JS external",
};

/** One row: a figure of each daemon, and whether lower is better (for the target marks). */
interface Row {
  label: string;
  unit: string;
  value: (v: Versus, c: ContenderName) => number | undefined;
  digits: number;
}

const ROWS: Row[] = [
  {
    label: "burst: rate",
    unit: "lines/s",
    value: (v, c) => v.burst?.[c]?.linesPerS,
    digits: 0,
  },
  {
    label: "burst: CPU per line (user+sys)",
    unit: "µs",
    value: (v, c) => v.burst?.[c]?.cpuUsPerLine,
    digits: 1,
  },
  {
    label: "burst: peak RSS (VmHWM)",
    unit: "MiB",
    value: (v, c) => mib(v.burst?.[c]?.hwmBytes),
    digits: 1,
  },
  {
    label: "burst: lines lost",
    unit: "",
    value: (v, c) => v.burst?.[c] && v.burst[c]!.lines - v.burst[c]!.delivered,
    digits: 0,
  },
  {
    label: "system calls per line (strace -f -c)",
    unit: "",
    value: (v, c) => v.syscalls?.[c]?.perLine,
    digits: 2,
  },
  {
    label: "  of which writes (write/sendto/…)",
    unit: "",
    value: (v, c) => v.syscalls?.[c]?.writesPerLine,
    digits: 2,
  },
  {
    label: "  of which reads (read/recvfrom/…)",
    unit: "",
    value: (v, c) => v.syscalls?.[c]?.readsPerLine,
    digits: 2,
  },
  {
    label: "idle RSS, no container",
    unit: "MiB",
    value: (v, c) => mib(v.idle?.[c]?.idleRssBytes),
    digits: 1,
  },
  {
    label: "idle containers attached: RSS",
    unit: "MiB",
    value: (v, c) => mib(v.idle?.[c]?.attachedRssBytes),
    digits: 1,
  },
  {
    label: "idle containers attached: CPU",
    unit: "% of a core",
    value: (v, c) => v.idle?.[c]?.attachedCpuPct,
    digits: 3,
  },
  {
    label: "fan-in: lag p50",
    unit: "ms",
    value: (v, c) => v.fanIn?.[c]?.lagP50Ms,
    digits: 0,
  },
  {
    label: "fan-in: lag p99",
    unit: "ms",
    value: (v, c) => v.fanIn?.[c]?.lagP99Ms,
    digits: 0,
  },
  {
    label: "fan-in: lines lost",
    unit: "",
    value: (v, c) => v.fanIn?.[c]?.lost,
    digits: 0,
  },
  {
    label: "fan-in: CPU per line",
    unit: "µs",
    value: (v, c) => v.fanIn?.[c]?.cpuUsPerLine,
    digits: 1,
  },
  {
    label: "fan-in: max RSS",
    unit: "MiB",
    value: (v, c) => mib(v.fanIn?.[c]?.maxRssBytes),
    digits: 1,
  },
  {
    label: "soak: RSS slope after warm-up",
    unit: "MiB/min",
    value: (v, c) => v.soakRuns?.[c]?.slopeMiBPerMin,
    digits: 3,
  },
  {
    label: "soak: RSS at the end",
    unit: "MiB",
    value: (v, c) => mib(v.soakRuns?.[c]?.rssEndBytes),
    digits: 1,
  },
  ...SOAK_SERIES.map((name): Row => ({
    label: `soak: ${SOAK_SERIES_LABELS[name]} slope (every 30 s)`,
    unit: "MiB/min",
    value: (v, c) => v.soakRuns?.[c]?.series?.[name]?.slopeMiBPerMin,
    digits: 3,
  })),
];

function mib(bytes: number | undefined): number | undefined {
  return bytes === undefined ? undefined : bytes / MIB;
}

const HEAD: Record<ContenderName, string> = {
  karotten: "karotten",
  peerSafe: "peer, CONFIRMS=1 OVERFLOW=pause",
  peer: "peer as shipped",
};
const HEAD_RATIO: Record<ContenderName, string> = {
  peerSafe: "peer (guarantees)",
  peer: "peer (shipped)",
};

function show(x: number | undefined, digits: number): string {
  if (x === undefined || Number.isNaN(x)) return "";
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !(b !== 0)) return "";
  return (a / b).toFixed(2);
}

/**
 * The Markdown table: a column per daemon, then karotten / each peer; with `base`, each other
 * daemon / `base` instead (variants of karotten against the first).
 */
export function versusTable(v: Versus, base?: ContenderName): string {
  const over = base !== undefined;
  const from = base ?? "karotten";
  const peers = v.contenders.filter((c) => c !== from);
  const head = [
    "workload",
    ...v.contenders.map((c) => HEAD[c] ?? c),
    ...peers.map((c) => over ? `${c} / ${from}` : `karotten / ${HEAD_RATIO[c] ?? c}`),
  ];
  const rows = ROWS.filter((r) => v.contenders.some((c) => r.value(v, c) !== undefined)).map(
    (r) => {
      const k = r.value(v, from);
      return [
        r.unit === "" ? r.label : `${r.label}, ${r.unit}`,
        ...v.contenders.map((c) => show(r.value(v, c), r.digits)),
        ...peers.map((c) => over ? ratio(r.value(v, c), k) : ratio(k, r.value(v, c))),
      ];
    },
  );
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** The conditions of each part: its shape and the load average when each daemon started it. */
export function versusConditions(v: Versus): string[] {
  const load = (part: Partial<Record<ContenderName, { load: number }>> | undefined) =>
    part === undefined
      ? undefined
      : v.contenders.map((c) => `${c} ${part[c]?.load.toFixed(2) ?? "?"}`).join(", ");
  const fan = v.fan;
  const lines = [
    `peer: ${v.peer ?? "skipped (KAROTTEN_BENCH_PEER not set)"}`,
    [
      `burst ${v.burstLines.toLocaleString("en-US")} lines of ${v.lineBytes} bytes`,
      load(v.burst),
    ],
    [`strace over ${v.straceLines.toLocaleString("en-US")} lines`, load(v.syscalls)],
    [
      `idle: containers attached ${v.idle?.karotten?.containers ?? ""}, read ${
        v.idleShape?.settleS ?? 5
      } s after the last attach, CPU over ${v.idleShape?.cpuWindowS ?? 30} s`,
      load(v.idle),
    ],
    [
      `fan-in ${fan.containers} × ${fan.ratePerContainer} lines/s × ${fan.seconds} s`,
      load(v.fanIn),
    ],
    [
      `soak ${v.soak.minutes} min (slope after ${v.soak.warmupMinutes.toFixed(1)} min), a ` +
      `short-lived container every ${v.soak.churnMs} ms, ${v.soak.writers} writers at 10 lines/s`,
      load(v.soakRuns),
    ],
  ];
  return lines.flatMap((l) =>
    typeof l === "string" ? [l] : l[1] === undefined ? [] : [`${l[0]}: load at start ${l[1]}`]
  );
}

/** The targets that this run measured (the peer ones only when the peer ran). */
export function versusTargets(v: Versus): Target[] {
  const out: Target[] = [];
  const t = (
    name: string,
    value: number | undefined,
    op: ">=" | "<=",
    limit: number | undefined,
    unit: string,
  ) => {
    if (value === undefined || limit === undefined) return;
    out.push({
      name,
      value,
      op,
      limit,
      unit,
      holds: op === ">=" ? value >= limit : value <= limit,
    });
  };
  const k = "karotten";
  const p = "peerSafe";
  t(
    "versus: burst lines/s ≥ the peer's",
    v.burst?.[k]?.linesPerS,
    ">=",
    v.burst?.[p]?.linesPerS,
    "lines/s",
  );
  const peerCpu = v.burst?.[p]?.cpuUsPerLine;
  t(
    "versus: burst CPU per line ≤ 0.8 × the peer's",
    v.burst?.[k]?.cpuUsPerLine,
    "<=",
    peerCpu === undefined ? undefined : 0.8 * peerCpu,
    "µs",
  );
  t("versus: burst peak RSS", mib(v.burst?.[k]?.hwmBytes), "<=", 64, "MiB");
  t("versus: idle RSS", mib(v.idle?.[k]?.idleRssBytes), "<=", 50, "MiB");
  t("versus: idle containers attached: RSS", mib(v.idle?.[k]?.attachedRssBytes), "<=", 64, "MiB");
  const peerIdle = v.idle?.[p]?.attachedCpuPct;
  t(
    "versus: idle containers: CPU ≤ 2 × the peer's",
    v.idle?.[k]?.attachedCpuPct,
    "<=",
    peerIdle === undefined ? undefined : 2 * peerIdle,
    "% of a core",
  );
  t(
    "versus: fan-in lag p99 ≤ the peer's",
    v.fanIn?.[k]?.lagP99Ms,
    "<=",
    v.fanIn?.[p]?.lagP99Ms,
    "ms",
  );
  t("versus: fan-in lines lost", v.fanIn?.[k]?.lost, "<=", 0, "lines");
  t("versus: soak RSS slope", v.soakRuns?.[k]?.slopeMiBPerMin, "<=", 0.05, "MiB/min");
  return out;
}

/** Escapes text for SVG. */
function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * A chart panel of height `VERSUS_PANEL_HEIGHT` at `y`: one bar per measured ratio karotten /
 * peer (with guarantees), with the line at 1 (equal).
 */
export function versusSvg(v: Versus, y: number, width: number): string[] {
  const out: string[] = [];
  const bars = ROWS.filter((r) =>
    r.label !== "burst: lines lost" && r.label !== "fan-in: lines lost"
  )
    .map((r) => ({ label: r.label.trim(), k: r.value(v, "karotten"), p: r.value(v, "peerSafe") }))
    .filter((b) => b.k !== undefined && b.p !== undefined && b.p > 0);
  out.push(
    `<text x="20" y="${y + 18}" font-size="13" font-weight="bold">karotten / peer with ` +
      `CONFIRMS=1 OVERFLOW=pause (same run; 1 = equal; lower is better except lines/s)</text>`,
  );
  if (bars.length === 0) {
    out.push(`<text x="20" y="${y + 40}" fill="#555">peer skipped</text>`);
    return out;
  }
  const labelW = 260;
  const plotW = width - labelW - 120;
  const max = Math.min(20, Math.max(2, ...bars.map((b) => b.k! / b.p!)) * 1.1);
  const sx = (r: number) => 20 + labelW + Math.min(r, max) / max * plotW;
  bars.forEach((b, i) => {
    const r = b.k! / b.p!;
    const by = y + 30 + i * 18;
    out.push(
      `<text x="${20 + labelW - 8}" y="${by + 11}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${20 + labelW}" y="${by}" width="${Math.max(1, sx(r) - 20 - labelW).toFixed(1)}" ` +
        `height="14" fill="${
          (b.label === "burst: rate" ? r >= 1 : r <= 1) ? "#4f7a2a" : "#ed9121"
        }"/>`,
      `<text x="${(sx(r) + 5).toFixed(1)}" y="${by + 11}">${r.toFixed(2)}</text>`,
    );
  });
  const x1 = sx(1).toFixed(1);
  out.push(
    `<line x1="${x1}" y1="${y + 26}" x2="${x1}" y2="${y + 34 + bars.length * 18}" stroke="#c00" ` +
      `stroke-dasharray="4 3"/>`,
  );
  return out;
}

/** Height of the panel `versusSvg` draws. */
export function versusPanelHeight(): number {
  return 50 + ROWS.length * 18;
}

/** `bench/versus.svg`: the ratio panel alone, with the run's date and machine. */
export function versusChart(v: Versus, date: string, machine: Machine): string {
  const W = 820;
  const H = 40 + versusPanelHeight();
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="20" y="24" font-size="15" font-weight="bold">karotten beside ${
      esc(v.peer ?? "(no peer)")
    }: ${esc(date.slice(0, 16).replace("T", " "))} UTC, ${machine.cpus} × ${
      esc(machine.model)
    }</text>`,
    ...versusSvg(v, 30, W),
    `</svg>`,
  ].join("\n") + "\n";
}
