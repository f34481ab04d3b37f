/**
 * Checkpoints (opt-in with `STATE_DIR`): per container, the newest position the broker has
 * confirmed. Written at most once per interval, atomically (temp file + rename), and once more
 * at shutdown; read at start so that a restarted karotten resumes where the broker left off.
 * @module
 */
import { sleep } from "./async/delay.ts";
import { describe } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { Position } from "./positions.ts";
import { compareTimestamps, timestampToNanos } from "./time.ts";

/** File name inside `STATE_DIR`. */
export const CHECKPOINT_FILE = "checkpoints.json";
/** Mode of the checkpoint file: the owner's only. */
export const CHECKPOINT_FILE_MODE = 0o600;
/** A container id as the engine writes it. */
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/** Confirmed positions, kept in memory and flushed to one file. */
export class CheckpointStore {
  readonly #path: string;
  readonly #log: Logger;
  readonly #confirmed = new Map<string, Position>();
  #dirty = false;

  constructor(stateDir: string, log: Logger) {
    this.#path = `${stateDir.replace(/\/+$/, "")}/${CHECKPOINT_FILE}`;
    this.#log = log;
  }

  /**
   * Reads the file; a missing file is an empty store, a corrupt one is reported and ignored, and
   * so is each entry that is not a container id with a valid position (one warning in all).
   */
  async load(): Promise<Map<string, Position>> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.#path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return new Map();
      throw err;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (!parsed || typeof parsed !== "object") throw new SyntaxError("not an object");
      let invalid = 0;
      let sample: string | undefined;
      for (const [id, value] of Object.entries(parsed)) {
        if (CONTAINER_ID.test(id) && isPosition(value)) {
          this.#confirmed.set(id, { ts: value.ts, count: value.count });
        } else {
          invalid++;
          sample ??= id;
        }
      }
      if (invalid > 0) {
        this.#dirty = true;
        this.#log.warn("checkpoints_invalid_entries", {
          path: this.#path,
          ignored: invalid,
          first: sample!.slice(0, 64),
        });
      }
    } catch (err) {
      this.#log.warn("checkpoints_unreadable", { path: this.#path, error: describe(err) });
    }
    return new Map([...this.#confirmed].map(([id, p]) => [id, { ...p }]));
  }

  /** Records a confirmed message (`seq` 0: older than the position, changes nothing). */
  confirmed(containerId: string, ts: string, seq: number): void {
    if (seq <= 0) return;
    const cur = this.#confirmed.get(containerId);
    if (!cur) {
      this.#confirmed.set(containerId, { ts, count: seq });
    } else {
      const c = compareTimestamps(ts, cur.ts);
      if (c < 0 || (c === 0 && seq <= cur.count)) return;
      cur.ts = ts;
      cur.count = seq;
    }
    this.#dirty = true;
  }

  /** The containers with a checkpoint. */
  ids(): string[] {
    return [...this.#confirmed.keys()];
  }

  /** Forgets a container (destroyed). */
  forget(containerId: string): void {
    if (this.#confirmed.delete(containerId)) this.#dirty = true;
  }

  /** Writes the file if anything changed since the last write. */
  async flush(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    const tmp = `${this.#path}.tmp`;
    try {
      await Deno.writeTextFile(tmp, JSON.stringify(Object.fromEntries(this.#confirmed)), {
        mode: CHECKPOINT_FILE_MODE,
      });
      // `mode` applies only when the file is created: a left-over temp file keeps its own.
      await Deno.chmod(tmp, CHECKPOINT_FILE_MODE);
      await Deno.rename(tmp, this.#path);
    } catch (err) {
      this.#dirty = true;
      this.#log.warn("checkpoints_write_failed", { path: this.#path, error: describe(err) });
    }
  }

  /** Flushes every `intervalMs` until the signal aborts, then once more. */
  async run(intervalMs: number, signal: AbortSignal): Promise<void> {
    while (await sleep(intervalMs, signal)) await this.flush();
    await this.flush();
  }
}

function isPosition(v: unknown): v is Position {
  if (!v || typeof v !== "object") return false;
  const p = v as Record<string, unknown>;
  return typeof p.ts === "string" && isTimestamp(p.ts) && Number.isSafeInteger(p.count) &&
    (p.count as number) >= 0;
}

function isTimestamp(ts: string): boolean {
  try {
    timestampToNanos(ts);
    return true;
  } catch {
    return false;
  }
}
