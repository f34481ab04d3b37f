/**
 * One attached container's counters: plain numbers the tail increments per line, held in the
 * owner loop's per-container state and read by the stats line and `/metrics`.
 * @module
 */

/** Counters and identity of one attached container. */
export interface ContainerCounters {
  /** Project as in the routing key; `""` until the tail has inspected the container. */
  project: string;
  /** Service as in the routing key. */
  service: string;
  /** Container name without the leading `/`. */
  name: string;
  /** stdout lines read (TTY containers: every line). */
  stdout: number;
  /** stderr lines read. */
  stderr: number;
}

/** Fresh counters, identity unknown. */
export function newContainerCounters(): ContainerCounters {
  return { project: "", service: "", name: "", stdout: 0, stderr: 0 };
}
