/**
 * The Prometheus text exposition (format 0.0.4) of a snapshot. Names follow Prometheus' naming
 * guide: `karotten_` prefix, base units in the name, `_total` on counters.
 * @module
 */
import type { Snapshot } from "./snapshot.ts";
import { VERSION } from "../version.ts";

/** The Content-Type of the exposition. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Kind = "counter" | "gauge";

interface Family {
  name: string;
  kind: Kind;
  help: string;
  samples: (s: Snapshot) => [labels: string, value: number][];
}

const one = (f: (s: Snapshot) => number | boolean) => (s: Snapshot): [string, number][] => [
  ["", Number(f(s))],
];

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
];

/** Every metric name exposed (the alerting rules' test checks its expressions against it). */
export const METRIC_NAMES: readonly string[] = FAMILIES.map((f) => f.name);

/** The exposition text of a snapshot. */
export function renderPrometheus(s: Snapshot): string {
  let out = "";
  for (const f of FAMILIES) {
    out += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.kind}\n`;
    for (const [labels, value] of f.samples(s)) out += `${f.name}${labels} ${value}\n`;
  }
  return out;
}

function esc(value: string): string {
  return value.replace(/[\\"\n]/g, (ch) => ch === "\n" ? "\\n" : `\\${ch}`);
}
