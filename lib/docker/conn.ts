/**
 * Connections to the Docker socket, with a small idle pool: at most `maxIdle` kept, each closed
 * after `idleTimeoutMs` unused. Only this module calls `Deno.connect`.
 * @module
 */
import { sleep } from "../async/delay.ts";

/** Pool limits. */
export interface PoolOptions {
  /** Idle connections kept for reuse. */
  maxIdle: number;
  /** An idle connection older than this is closed. */
  idleTimeoutMs: number;
}

interface Idle {
  conn: Deno.Conn;
  since: number;
}

/** Unix-socket connections to one engine, reused for short requests. */
export class ConnectionPool {
  readonly #path: string;
  readonly #options: PoolOptions;
  #idle: Idle[] = [];

  constructor(path: string, options: PoolOptions) {
    this.#path = path;
    this.#options = options;
  }

  /** An idle connection (newest first) or a new one; `reused` says which. */
  async acquire(): Promise<{ conn: Deno.Conn; reused: boolean }> {
    this.sweep();
    const idle = this.#idle.pop();
    if (idle) return { conn: idle.conn, reused: true };
    const conn = await Deno.connect({ transport: "unix", path: this.#path });
    return { conn, reused: false };
  }

  /** Gives a connection whose last response was read whole back for reuse. */
  release(conn: Deno.Conn): void {
    if (this.#idle.length >= this.#options.maxIdle) {
      closeQuietly(conn);
      return;
    }
    this.#idle.push({ conn, since: Date.now() });
  }

  /** Closes idle connections past their idle timeout. */
  sweep(now = Date.now()): void {
    const keep: Idle[] = [];
    for (const idle of this.#idle) {
      if (now - idle.since >= this.#options.idleTimeoutMs) closeQuietly(idle.conn);
      else keep.push(idle);
    }
    this.#idle = keep;
  }

  /** Closes every idle connection: after an engine restart none of them may be reused. */
  clear(): void {
    for (const idle of this.#idle) closeQuietly(idle.conn);
    this.#idle = [];
  }

  /** Sweeps idle connections until the signal aborts, then closes them all. */
  async run(signal: AbortSignal): Promise<void> {
    const period = Math.max(10, Math.floor(this.#options.idleTimeoutMs / 4));
    try {
      while (await sleep(period, signal)) this.sweep();
    } finally {
      this.clear();
    }
  }
}

/** Closes a connection that may already be closed. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  }
}
