/**
 * A fake engine that ends a follow stream before the reader took every line (Podman 4.3 250 ms
 * after a container died; dockerd 20.10 can too): the attach gets `SENT` lines and the container
 * stops; a read without following returns all `TOTAL` lines from `since`. Shared by the early-end
 * tests of either overflow mode.
 * @module
 */
import {
  api,
  chunk,
  chunkBytes,
  chunkedStart,
  chunkEnd,
  FakeEngine,
  frame,
  json,
  write,
} from "../helpers/fake_engine.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { timestampToNanos } from "../../lib/time.ts";

/** The container's id. */
export const ID = "ea51e0d".padEnd(64, "0");
/** Lines in the log; the first stream ends after `SENT` of them (they fit in socket buffers). */
export const TOTAL = 2_000;
/** Lines the follow stream sends before it ends. */
export const SENT = 300;

/** 2030-01-01T00:00:01.<n padded to 9>Z */
const ts = (n: number) => `2030-01-01T00:00:01.${String(n).padStart(9, "0")}Z`;
const entry = (n: number) => frame(1, `${ts(n)} line ${n}\n`);

function sinceNanos(since: string): bigint {
  const [s, ns = "0"] = since.split(".");
  return BigInt(s) * 1_000_000_000n + BigInt(ns.padEnd(9, "0"));
}

/** What the engine saw: whether the container stopped, and each logs request's query. */
export interface EarlyEndState {
  stopped: boolean;
  logRequests: string[];
}

/** Starts the engine; see the module doc. */
export async function earlyEndEngine(): Promise<{ engine: FakeEngine; state: EarlyEndState }> {
  const engine = await FakeEngine.start();
  const state: EarlyEndState = { stopped: false, logRequests: [] };
  engine.route(api("/containers/json"), (_req, conn) =>
    json(
      conn,
      200,
      state.stopped
        ? []
        : [{ Id: ID, Names: ["/early"], Image: "kt/fake", Labels: {}, State: "running" }],
    ));
  engine.route(api(`/containers/${ID}/json`), (_req, conn) =>
    json(conn, 200, {
      Id: ID,
      Name: "/early",
      State: { Running: !state.stopped, StartedAt: ts(0), FinishedAt: "0001-01-01T00:00:00Z" },
      Config: { Image: "kt/fake", Labels: {}, Tty: false },
    }));
  engine.route(api(`/containers/${ID}/logs`), async (req, conn) => {
    state.logRequests.push(req.url.search);
    const q = req.url.searchParams;
    await chunkedStart(conn, 200, {});
    if (q.get("follow") === "1") {
      // The attach: the container dies, and the engine ends the follow stream after what the
      // reader had not yet taken... dropping the rest.
      // One write: as many small writes, each its own socket buffer entry, can fill the socket's
      // budget while the reader is paused, and the engine would block before the end.
      const parts: Uint8Array[] = [];
      for (let n = 1; n <= SENT; n++) parts.push(chunkBytes(entry(n)));
      await write(conn, concatBytes(parts));
      state.stopped = true;
    } else {
      // A read without following is complete.
      const since = q.get("since");
      const from = since === null ? 0n : sinceNanos(since);
      for (let n = 1; n <= TOTAL; n++) {
        if (timestampToNanos(ts(n)) >= from) await chunk(conn, entry(n));
      }
    }
    await chunkEnd(conn);
    return "keep";
  });
  return { engine, state };
}
