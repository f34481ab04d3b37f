/**
 * The benchmark's outputs from one run's figures: the table (Markdown, printed and pasted into
 * the README), the targets and whether each holds, `results.json`, and the SVG chart.
 * @module
 */
import { DEFAULT_PAUSE_BUFFER_BYTES } from "../lib/config.ts";
import type { Machine } from "./_proc.ts";
import type { Attach, EndToEnd, FanIn, FullBuffer } from "./pipeline.ts";
import type { PublishRate, ReadRate, ShipRate } from "./raw.ts";
import type { Fairness, LongLinesFull } from "./overflow.ts";
import type { Versus } from "./versus.ts";
import { versusPanelHeight, versusSvg } from "./report_versus.ts";

/** Versions of the parts measured. */
export interface Versions {
  /** `deno --version` first line, e.g. `2.9.6`. */
  deno: string;
  /** V8 inside it. */
  v8: string;
  /** Engine `/version`: `Version`. */
  docker: string;
  /** Engine `/version`: `ApiVersion`. */
  dockerApi: string;
  /** Broker `serverProperties.version`. */
  rabbitmq: string;
}

/** How busy the machine was with other work. */
export interface Load {
  /** 1-minute load average before the run. */
  loadBefore: number;
  /** 1-minute load average after it. */
  loadAfter: number;
  /** Other `deno test` processes seen before the run. */
  otherTestsBefore: number;
  /** Other `deno test` processes seen after it. */
  otherTestsAfter: number;
  /** Broker blocks or restarts (others' tests) that made a phase run again. */
  disturbances: string[];
}

/** Every figure of one run. */
export interface Results {
  /** When the run started (ISO). */
  date: string;
  /** Wall time of the whole run, seconds. */
  runSeconds: number;
  /** Machine. */
  machine: Machine;
  /** Versions. */
  versions: Versions;
  /** Load from others. */
  load: Load;
  /** Lines per throughput run (N). */
  lines: number;
  /** Bytes per line, newline included. */
  lineBytes: number;
  /** 1: engine logs read through our client (best of the reads). */
  rawDocker: ReadRate;
  /** 2: bare amqplib publish loop with confirms and karotten's message ids. */
  rawBroker: PublishRate;
  /** 2, for scale: the same without message ids. */
  rawBrokerNoIds: PublishRate;
  /** 3, for scale: the bare shipper. */
  shipper: ShipRate;
  /** 3 and 4: karotten end to end. */
  endToEnd: EndToEnd;
  /** 4: memory with a full buffer. */
  fullBuffer: FullBuffer;
  /** 4: memory with the buffer full of 1 MiB lines (byte budget, defaults). */
  longLines: LongLinesFull;
  /** 7: a quiet container's lag beside a burst. */
  fairness: Fairness;
  /** 5: fan-in. */
  fanIn: FanIn;
  /** 6: attach latency. */
  attach: Attach;
  /** 8: beside the peer (`versus.ts`). */
  versus?: Versus;
}

/** One target of the issue and whether this run meets it. */
export interface Target {
  /** What is compared. */
  name: string;
  /** The measured value, in `unit`. */
  value: number;
  /** The limit, in `unit`. */
  limit: number;
  /** `>=` when the value must reach the limit, `<=` when it must stay under it. */
  op: ">=" | "<=";
  /** Unit of value and limit. */
  unit: string;
  /** Whether it holds. */
  holds: boolean;
}

const MB = 1024 * 1024;
/** The default byte budget (`BUFFER_BYTES` with the default `OVERFLOW=pause`), MB. */
const BUFFER_BUDGET_MB = DEFAULT_PAUSE_BUFFER_BYTES / MB;

/** Lines per second of a read. */
export function rawDockerRate(r: Results): number {
  return r.rawDocker.lines / r.rawDocker.seconds;
}

/** Messages per second of the bare publish loop. */
export function rawBrokerRate(r: Results): number {
  return r.rawBroker.messages / r.rawBroker.seconds;
}

/** karotten's end-to-end lines per second (from the first message in the queue to the last). */
export function endToEndRate(r: Results): number {
  return (r.endToEnd.lines - r.endToEnd.before) / r.endToEnd.seconds;
}

/** Lines per second of the bare shipper. */
export function shipperRate(r: Results): number {
  return (r.shipper.lines - r.shipper.before) / r.shipper.seconds;
}

/** The targets, evaluated. */
export function targets(r: Results): Target[] {
  const t = (name: string, value: number, op: ">=" | "<=", limit: number, unit: string) => ({
    name,
    value,
    limit,
    op,
    unit,
    holds: op === ">=" ? value >= limit : value <= limit,
  });
  const limit = Math.min(rawDockerRate(r), rawBrokerRate(r));
  return [
    t(
      "end to end vs 0.95 × min(raw Docker, raw broker)",
      endToEndRate(r),
      ">=",
      0.95 * limit,
      "lines/s",
    ),
    t("CPU per 100-byte line, confirms on", r.endToEnd.cpuUsPerLine, "<=", 25, "µs"),
    t("RSS steady (VmHWM during end to end)", r.endToEnd.hwmBytes / MB, "<=", 60, "MB"),
    t("RSS with the buffer full (8192 × 1 KB)", r.fullBuffer.hwmBytes / MB, "<=", 100, "MB"),
    t("fan-in lag p99", r.fanIn.lagP99Ms, "<=", 250, "ms"),
    t("fan-in lines lost", r.fanIn.lost, "<=", 0, "lines"),
    t("attach latency p99", r.attach.p99Ms, "<=", 300, "ms"),
    t(
      `RSS with the buffer full of 1 MiB lines (BUFFER_BYTES ${BUFFER_BUDGET_MB} MiB + 100 MB)`,
      r.longLines.hwmBytes / MB,
      "<=",
      BUFFER_BUDGET_MB + 100e6 / MB,
      "MB",
    ),
    t("quiet container's lag p99 beside a burst", r.fairness.quietP99Ms, "<=", 1000, "ms"),
    t("lines lost beside a burst", r.fairness.lostBurst + r.fairness.lostQuiet, "<=", 0, "lines"),
  ];
}

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const fix = (x: number, d = 1) => x.toFixed(d);
const mb = (bytes: number) => `${fix(bytes / MB)} MB`;
const pct = (share: number) => `${Math.round(share * 100)} %`;

/** The environment lines printed above the table. */
export function environment(r: Results): string[] {
  const m = r.machine;
  const v = r.versions;
  return [
    `machine: ${m.cpus} × ${m.model}, ${fix(m.memoryBytes / 1024 / MB)} GB, Linux ${m.kernel}`,
    `versions: Deno ${v.deno} (V8 ${v.v8}), Docker ${v.docker} (API ${v.dockerApi}), ` +
    `RabbitMQ ${v.rabbitmq}`,
    `load: 1-min average ${fix(r.load.loadBefore, 2)} before, ${fix(r.load.loadAfter, 2)} after; ` +
    `other \`deno test\` processes: ${r.load.otherTestsBefore} before, ${r.load.otherTestsAfter} after; ` +
    `phases repeated after a broker alarm or restart: ${r.load.disturbances.length}`,
    `run: ${r.date}, ${fix(r.runSeconds, 0)} s; N = ${int(r.lines)} lines of ${r.lineBytes} bytes`,
  ];
}

/** `karotten 14.8, dockerd 6.1, …, other 3.0 µs` from CPU µs per item by process. */
function breakdown(cpuUs: Record<string, number>): string {
  const named = Object.entries(cpuUs).filter(([k]) => k !== "machine");
  const other = (cpuUs.machine ?? 0) - named.reduce((a, [, v]) => a + v, 0);
  const name = (k: string) => (k === "rabbitmq" ? "RabbitMQ" : k);
  return [...named.map(([k, v]) => `${name(k)} ${fix(v)}`), `other ${fix(other)}`].join(", ") +
    " µs";
}

/** The table as Markdown: one row per figure, with its target where it has one. */
export function table(r: Results): string {
  const tg = targets(r);
  const verdict = (i: number) => {
    const x = tg[i];
    return `${x.op === ">=" ? "≥" : "≤"} ${
      x.unit === "lines/s" ? int(x.limit) : x.limit
    } ${x.unit} | ${x.holds ? "yes" : "**no**"}`;
  };
  const e = r.endToEnd;
  const f = r.fanIn;
  const a = r.attach;
  const rows: string[][] = [
    [
      "1. raw Docker read (our client, demux only)",
      `${int(rawDockerRate(r))} lines/s, ${fix(r.rawDocker.bytes / r.rawDocker.seconds / MB)} MB/s`,
      "",
    ],
    [
      "2. raw broker ingest (bare amqplib, envelopes, confirms, message ids as karotten)",
      `${int(rawBrokerRate(r))} msg/s (${r.rawBroker.bodyBytes} B bodies)`,
      "",
    ],
    [
      "2. for scale: the same without message ids",
      `${int(r.rawBrokerNoIds.messages / r.rawBrokerNoIds.seconds)} msg/s; RabbitMQ ${
        fix(r.rawBrokerNoIds.cpuUs.rabbitmq ?? NaN)
      } µs CPU/msg (with ids ${fix(r.rawBroker.cpuUs.rabbitmq ?? NaN)})`,
      "",
    ],
    [
      "2. CPU per message during 2",
      `machine ${pct(r.rawBroker.machineBusy)} busy; ${breakdown(r.rawBroker.cpuUs)}`,
      "",
    ],
    [
      "3. for scale: bare shipper (our client + bare amqplib loop, one process)",
      `${int(shipperRate(r))} lines/s; machine ${pct(r.shipper.machineBusy)} busy; ${
        breakdown(r.shipper.cpuUs)
      }`,
      "",
    ],
    [
      "3. karotten end to end",
      `${int(endToEndRate(r))} lines/s = ${
        fix(endToEndRate(r) / Math.min(rawDockerRate(r), rawBrokerRate(r)), 2)
      } × min(1, 2), ${fix(endToEndRate(r) / shipperRate(r), 2)} × bare shipper; ${
        fix(e.secondsFromRun)
      } s from \`docker run\``,
      verdict(0),
    ],
    [
      "3. CPU per line during 3",
      `machine ${pct(e.machineBusy)} busy; ${breakdown(e.cpuUs)}`,
      "",
    ],
    ["4. karotten CPU per line (user+sys)", `${fix(e.cpuUsPerLine)} µs`, verdict(1)],
    [
      "4. karotten max RSS during 3",
      `${mb(e.hwmBytes)} (VmHWM; sampled max VmRSS ${mb(e.maxRssBytes)})`,
      verdict(2),
    ],
    [
      "4. karotten RSS, buffer full, broker stopped",
      `${mb(r.fullBuffer.hwmBytes)} (VmHWM; idle before ${mb(r.fullBuffer.idleRssBytes)})`,
      verdict(3),
    ],
    [
      `4. karotten RSS, buffer full of ${r.longLines.lines} × 1 MiB lines, broker stopped`,
      `${mb(r.longLines.hwmBytes)} (VmHWM; sampled max VmRSS ${mb(r.longLines.maxRssBytes)}; ` +
      `idle before ${mb(r.longLines.idleRssBytes)})`,
      verdict(7),
    ],
    [
      `5. fan-in ${f.containers} × ${f.ratePerContainer} lines/s × ${
        f.linesPerContainer / f.ratePerContainer
      } s: lag p50 / p99 / max`,
      `${int(f.lagP50Ms)} / ${int(f.lagP99Ms)} / ${int(f.lagMaxMs)} ms`,
      verdict(4),
    ],
    [
      "5. CPU per line during 5",
      `${int(f.linesPerS)} lines/s received over ${fix(f.seconds, 0)} s; machine ${
        pct(f.machineBusy)
      } busy; ${breakdown(f.cpuUs)}; karotten max RSS ${mb(f.maxRssBytes)}; containers with a ` +
      `median lag over 50 ms: ${f.slowContainers}; inotify instances open: ${f.maxInotifyInstances}`,
      "",
    ],
    [
      "5. fan-in lines lost",
      `${int(f.lost)} of ${int(f.containers * f.linesPerContainer)}` +
      (f.duplicates > 0 ? ` (${int(f.duplicates)} duplicates)` : ""),
      verdict(5),
    ],
    [
      `6. attach latency over ${a.containers} containers: p50 / p99`,
      `${int(a.p50Ms)} / ${int(a.p99Ms)} ms`,
      verdict(6),
    ],
    [
      `7. fairness: quiet lag p50 / p99 / max beside ${int(r.fairness.burstLines)} lines at once`,
      `${int(r.fairness.quietP50Ms)} / ${int(r.fairness.quietP99Ms)} / ${
        int(r.fairness.quietMaxMs)
      } ms over ${int(r.fairness.quietDuring)} quiet lines; burst ${
        int(r.fairness.burstLinesPerS)
      } lines/s`,
      verdict(8),
    ],
    [
      "7. lines lost: burst + quiet",
      `${int(r.fairness.lostBurst)} + ${int(r.fairness.lostQuiet)}`,
      verdict(9),
    ],
  ];
  const lines = [
    "| measurement | result | target | holds |",
    "|---|---|---|---|",
    ...rows.map(([m, v, t]) => `| ${m} | ${v} | ${t === "" ? " | " : t} |`),
  ];
  return lines.join("\n");
}

/** Escapes text for SVG. */
function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * The chart: throughput bars (raw Docker, raw broker, karotten, with the 0.95 × min line) and
 * lag bars (fan-in p50/p99, attach p50/p99, with their targets), as a hand-written SVG.
 */
export function svg(r: Results): string {
  const W = 820;
  const BASE_H = 330;
  const H = BASE_H + (r.versus ? versusPanelHeight() : 0);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="20" y="24" font-size="15" font-weight="bold">karotten bench: ${
      esc(r.date.slice(0, 10))
    }, ${r.machine.cpus} × ${esc(r.machine.model)}</text>`,
    `<text x="20" y="42" fill="#555">Deno ${esc(r.versions.deno)}, Docker ${
      esc(r.versions.docker)
    }, RabbitMQ ${esc(r.versions.rabbitmq)}; ${int(r.lines)} lines of ${r.lineBytes} bytes</text>`,
  );
  const bars = (
    x0: number,
    title: string,
    unit: string,
    items: { label: string; value: number; color: string }[],
    marks: { label: string; value: number }[],
    cap = Infinity,
  ) => {
    const labelW = 120;
    const plotW = 210;
    const top = 80;
    const barH = 26;
    const gap = 16;
    const max = Math.min(
      cap,
      Math.max(...items.map((i) => i.value), ...marks.map((m) => m.value)) * 1.1,
    );
    // A bar longer than the axis is cut, with a white break near its end.
    const sx = (v: number) => x0 + labelW + (Math.min(v, max) / max) * plotW;
    out.push(
      `<text x="${x0}" y="${top - 18}" font-size="13" font-weight="bold">${esc(title)}</text>`,
    );
    items.forEach((it, k) => {
      const y = top + k * (barH + gap);
      out.push(
        `<text x="${x0 + labelW - 8}" y="${y + barH / 2 + 4}" text-anchor="end">${
          esc(it.label)
        }</text>`,
        `<rect x="${x0 + labelW}" y="${y}" width="${
          Math.max(1, sx(it.value) - x0 - labelW).toFixed(1)
        }" height="${barH}" fill="${it.color}"/>`,
        `<text x="${(sx(it.value) + 5).toFixed(1)}" y="${y + barH / 2 + 4}">${int(it.value)} ${
          esc(unit)
        }</text>`,
      );
      if (it.value > max) {
        const bx = sx(max) - 24;
        out.push(
          `<path d="M${bx} ${y - 2} l6 ${barH / 2 + 2} l-6 ${
            barH / 2 + 2
          } h6 l6 ${-(barH / 2 + 2)} l-6 ${-(barH / 2 + 2)} z" fill="#ffffff"/>`,
        );
      }
    });
    const bottom = top + items.length * (barH + gap) - gap;
    out.push(
      `<line x1="${x0 + labelW}" y1="${top - 4}" x2="${x0 + labelW}" y2="${
        bottom + 4
      }" stroke="#333"/>`,
    );
    marks.forEach((m, k) => {
      const x = sx(m.value).toFixed(1);
      out.push(
        `<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${bottom + 6}" stroke="#c00" ` +
          `stroke-dasharray="4 3"/>`,
        `<text x="${x}" y="${bottom + 20 + k * 14}" fill="#c00" text-anchor="middle">${
          esc(m.label)
        }</text>`,
      );
    });
  };
  const limit = Math.min(rawDockerRate(r), rawBrokerRate(r));
  bars(
    20,
    "Throughput (100-byte lines)",
    "/s",
    [
      { label: "raw Docker read", value: rawDockerRate(r), color: "#2496ed" },
      { label: "raw broker ingest", value: rawBrokerRate(r), color: "#ff6600" },
      { label: "bare shipper", value: shipperRate(r), color: "#9e9e9e" },
      { label: "karotten", value: endToEndRate(r), color: "#ed9121" },
    ],
    [{ label: "0.95 × min", value: 0.95 * limit }],
    1.25 * Math.max(rawBrokerRate(r), shipperRate(r), endToEndRate(r)),
  );
  bars(430, "Delivery latency", "ms", [
    { label: "fan-in lag p50", value: r.fanIn.lagP50Ms, color: "#7a9e4f" },
    { label: "fan-in lag p99", value: r.fanIn.lagP99Ms, color: "#4f7a2a" },
    { label: "attach p50", value: r.attach.p50Ms, color: "#8e7cc3" },
    { label: "attach p99", value: r.attach.p99Ms, color: "#5b4a9c" },
  ], [{ label: "250 ms", value: 250 }, { label: "300 ms", value: 300 }]);
  const e = r.endToEnd;
  out.push(
    `<text x="20" y="${BASE_H - 34}" fill="#333">karotten: ${
      fix(e.cpuUsPerLine)
    } µs CPU per line; ` +
      `max RSS ${mb(e.hwmBytes)} end to end, ${mb(r.fullBuffer.hwmBytes)} with the buffer ` +
      `full; fan-in ${r.fanIn.containers} × ${r.fanIn.ratePerContainer} lines/s: ${
        int(r.fanIn.lost)
      } lines lost.</text>`,
    `<text x="20" y="${BASE_H - 16}" fill="#333">The machine was ${
      pct(e.machineBusy)
    } busy during end to end (RabbitMQ ${fix(e.cpuUs.rabbitmq ?? NaN, 0)}, dockerd ${
      fix(e.cpuUs.dockerd ?? NaN, 0)
    }, karotten ${fix(e.cpuUsPerLine, 0)} µs CPU per line).</text>`,
    ...(r.versus ? versusSvg(r.versus, BASE_H, W) : []),
    `</svg>`,
  );
  return out.join("\n") + "\n";
}
