/**
 * The Prometheus text exposition (format 0.0.4) of a snapshot and the process's memory. Names
 * follow Prometheus' naming guide: `karotten_` prefix, base units in the name, `_total` on
 * counters; resident memory under the name Prometheus' client libraries use.
 * @module
 */
import type { Snapshot } from "./snapshot.ts";
import { VERSION } from "../version.ts";

/** The Content-Type of the exposition. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Kind = "counter" | "gauge";

/** The process's memory, as `Deno.memoryUsage()` reads it, bytes. */
export interface ProcessMemory {
  /** Resident set size. */
  rss: number;
  /** V8 heap reserved. */
  heapTotal: number;
  /** V8 heap in use (live and not yet collected objects). */
  heapUsed: number;
  /** Memory outside the heap that V8 accounts for (array buffers, `Buffer`s). */
  external: number;
}

interface Family {
  name: string;
  kind: Kind;
  help: string;
  samples: (s: Snapshot, m: ProcessMemory) => [labels: string, value: number][];
}

const one = (f: (s: Snapshot) => number | boolean) => (s: Snapshot): [string, number][] => [
  ["", Number(f(s))],
];
function mem(f: (m: ProcessMemory) => number): Family["samples"] {
  return (_, m) => [["", f(m)]];
}

const FAMILIES: readonly Family[] = [
  {
    name: "karotten_build_info",
    kind: "gauge",
    help: "Always 1; the version as a label.",
    samples: () => [[`{version="${VERSION}"}`, 1]],
  },
  {
    name: "karotten_engine_up",
    kind: "gauge",
    help: "1 while the Docker engine answers pings.",
    samples: one((s) => s.engineUp),
  },
  {
    name: "karotten_broker_connected",
    kind: "gauge",
    help: "1 while a broker connection is open.",
    samples: one((s) => s.brokerConnected),
  },
  {
    name: "karotten_broker_reconnects_total",
    kind: "counter",
    help: "Broker connections opened after the first.",
    samples: one((s) => s.brokerReconnects),
  },
  {
    name: "karotten_containers_attached",
    kind: "gauge",
    help: "Containers whose logs are followed.",
    samples: one((s) => s.containersAttached),
  },
  {
    name: "karotten_lines_read_total",
    kind: "counter",
    help: "Log lines read from the engine.",
    samples: one((s) => s.linesRead),
  },
  {
    name: "karotten_messages_published_total",
    kind: "counter",
    help: "Messages published to the broker (republished ones count again).",
    samples: one((s) => s.published),
  },
  {
    name: "karotten_messages_confirmed_total",
    kind: "counter",
    help: "Messages the broker confirmed.",
    samples: one((s) => s.confirmed),
  },
  {
    name: "karotten_lines_dropped_total",
    kind: "counter",
    help: "Lines the full buffer refused, by cause (blocked: while the broker blocked publishing).",
    samples: (s) => [['{cause="full"}', s.droppedFull], ['{cause="blocked"}', s.droppedBlocked]],
  },
  {
    name: "karotten_buffer_messages",
    kind: "gauge",
    help: "Messages in the buffer, unpublished or unconfirmed.",
    samples: one((s) => s.bufferMessages),
  },
  {
    name: "karotten_buffer_capacity_messages",
    kind: "gauge",
    help: "Messages the buffer holds at most.",
    samples: one((s) => s.bufferCapacity),
  },
  {
    name: "karotten_buffer_bytes",
    kind: "gauge",
    help: "Body bytes of the messages in the buffer.",
    samples: one((s) => s.bufferBytes),
  },
  {
    name: "karotten_oldest_unconfirmed_age_seconds",
    kind: "gauge",
    help: "Age of the oldest unconfirmed message by its engine timestamp; 0 when none.",
    samples: one((s) => s.oldestUnconfirmedSeconds),
  },
  {
    name: "karotten_container_lines_read_total",
    kind: "counter",
    help: "Log lines read per attached container and stream; removed when the container goes.",
    samples: (s) =>
      s.containers.flatMap((c) => {
        const base = `project="${esc(c.project)}",service="${esc(c.service)}",container="${
          esc(c.container)
        }"`;
        return [
          [`{${base},stream="stdout"}`, c.stdout],
          [`{${base},stream="stderr"}`, c.stderr],
        ] as [string, number][];
      }),
  },
  {
    name: "karotten_metrics_containers_omitted",
    kind: "gauge",
    help: "Attached containers without their own series (over the limit).",
    samples: one((s) => s.containersOmitted),
  },
  {
    name: "process_resident_memory_bytes",
    kind: "gauge",
    help: "Resident memory size in bytes.",
    samples: mem((m) => m.rss),
  },
  {
    name: "karotten_js_heap_used_bytes",
    kind: "gauge",
    help: "JavaScript heap in use (live objects and garbage not yet collected).",
    samples: mem((m) => m.heapUsed),
  },
  {
    name: "karotten_js_heap_total_bytes",
    kind: "gauge",
    help: "JavaScript heap reserved by the runtime.",
    samples: mem((m) => m.heapTotal),
  },
  {
    name: "karotten_js_external_memory_bytes",
    kind: "gauge",
    help: "Memory outside the JavaScript heap held by its objects (byte buffers).",
    samples: mem((m) => m.external),
  },
];

/** Every metric name exposed (the alerting rules' test checks its expressions against it). */
export const METRIC_NAMES: readonly string[] = FAMILIES.map((f) => f.name);

/** The exposition text of a snapshot and of the process's memory, read when scraped. */
export function renderPrometheus(s: Snapshot, m: ProcessMemory): string {
  let out = "";
  for (const f of FAMILIES) {
    out += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.kind}\n`;
    for (const [labels, value] of f.samples(s, m)) out += `${f.name}${labels} ${value}\n`;
  }
  return out;
}

function esc(value: string): string {
  return value.replace(/[\\"\n]/g, (ch) => ch === "\n" ? "\\n" : `\\${ch}`);
}
