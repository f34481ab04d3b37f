/**
 * One reading of everything the stats line, `/metrics` and `/healthz` report, taken from the
 * live parts at the moment it is asked for (nothing is copied on the hot path).
 * @module
 */
import { timestampToNanos } from "../time.ts";
import type { MessageQueue } from "../queue.ts";
import type { ContainerCounters } from "./container_counters.ts";

/** Whether the engine answers: set by the ping loop (and the first listing). */
export interface EngineState {
  /** True after a successful ping or listing, false after a failed ping. */
  up: boolean;
}

/** What the publisher (or the dry-run printer) tells. */
export interface BrokerState {
  /** A session is open. */
  readonly connected: boolean;
  /** Sessions opened after the first. */
  readonly reconnects: number;
}

/** What the supervisor tells. */
export interface ContainersState {
  /** Containers attached now. */
  readonly attached: number;
  /** Lines read since start. */
  readonly linesRead: number;
  /** Per-container counters of the attached containers. */
  counters(): Iterable<ContainerCounters>;
}

/** The parts a snapshot reads. */
export interface TelemetrySources {
  /** The owner loop. */
  containers: ContainersState;
  /** The buffer. */
  queue: MessageQueue;
  /** The publisher. */
  broker: BrokerState;
  /** The ping loop's verdict. */
  engine: EngineState;
}

/** One attached container's series. */
export interface ContainerSeries {
  /** Project as in the routing key. */
  project: string;
  /** Service as in the routing key. */
  service: string;
  /** Container name. */
  container: string;
  /** stdout lines read. */
  stdout: number;
  /** stderr lines read. */
  stderr: number;
}

/** Everything reported, at one instant. */
export interface Snapshot {
  /** Containers attached. */
  containersAttached: number;
  /** Lines read from the engine (lines skipped on a resume not counted). */
  linesRead: number;
  /** Messages handed to the broker (a republished one counts again). */
  published: number;
  /** Messages the broker confirmed. */
  confirmed: number;
  /** Lines refused by the full buffer. */
  droppedFull: number;
  /** Lines refused by the full buffer while the broker blocked publishing. */
  droppedBlocked: number;
  /** Messages held in the buffer. */
  bufferMessages: number;
  /** Body bytes held in the buffer. */
  bufferBytes: number;
  /** Buffer capacity, messages. */
  bufferCapacity: number;
  /** Age of the oldest unconfirmed message by its engine timestamp, seconds; 0 when empty. */
  oldestUnconfirmedSeconds: number;
  /** A broker session is open. */
  brokerConnected: boolean;
  /** Broker reconnections since start. */
  brokerReconnects: number;
  /** The engine answers pings. */
  engineUp: boolean;
  /** Per-container series, at most `maxContainers`. */
  containers: ContainerSeries[];
  /** Attached containers left out of `containers` by the limit. */
  containersOmitted: number;
}

/** Reads the sources now; `maxContainers` bounds the per-container series. */
export function takeSnapshot(
  src: TelemetrySources,
  maxContainers: number,
  nowMs: number = Date.now(),
): Snapshot {
  const { queue } = src;
  const containers: ContainerSeries[] = [];
  let omitted = 0;
  for (const c of src.containers.counters()) {
    if (c.name === "") continue;
    if (containers.length >= maxContainers) {
      omitted++;
      continue;
    }
    containers.push({
      project: c.project,
      service: c.service,
      container: c.name,
      stdout: c.stdout,
      stderr: c.stderr,
    });
  }
  const dropped = queue.droppedTotal;
  const oldest = queue.oldest();
  let age = 0;
  if (oldest !== undefined) {
    const ms = Number(BigInt(nowMs) * 1_000_000n - timestampToNanos(oldest.timestamp)) / 1e6;
    age = Math.max(0, ms / 1000);
  }
  return {
    containersAttached: src.containers.attached,
    linesRead: src.containers.linesRead,
    published: queue.publishedTotal,
    confirmed: queue.confirmedTotal,
    droppedFull: dropped.full,
    droppedBlocked: dropped.blocked,
    bufferMessages: queue.size,
    bufferBytes: queue.bytes,
    bufferCapacity: queue.capacity,
    oldestUnconfirmedSeconds: age,
    brokerConnected: src.broker.connected,
    brokerReconnects: src.broker.reconnects,
    engineUp: src.engine.up,
    containers,
    containersOmitted: omitted,
  };
}
