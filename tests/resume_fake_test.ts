/**
 * Resume after a logs stream is cut mid-line: a fake engine (the only way to cut a stream at a
 * chosen byte) that honours `since` like dockerd: inclusive, by timestamp. Lines that share a
 * timestamp and a long line split into pieces sit exactly at the cuts.
 */
import assert from "node:assert/strict";
import {
  api,
  chunk,
  chunkedStart,
  chunkEnd,
  FakeEngine,
  frame,
  json,
} from "./helpers/fake_engine.ts";
import { startKarotten } from "./helpers/karotten.ts";
import { freshBinding, RABBIT_URL } from "./helpers/rabbit.ts";
import { waitFor } from "./helpers/deadline.ts";
import { timestampToNanos } from "../lib/time.ts";

const ID = "c0ffee".padEnd(64, "0");
const TIMEOUT_MS = 20_000;

interface Entry {
  ts: string;
  stream: 1 | 2;
  content: string;
}

/** 2030-01-01T00:00:00.<n padded to 9>Z */
const ts = (n: number) => `2030-01-01T00:00:00.${String(n).padStart(9, "0")}Z`;

/** The scripted log: numbered lines, three sharing a timestamp, a 40000-byte line in 3 pieces. */
function script(): { entries: Entry[]; lines: string[] } {
  const entries: Entry[] = [];
  const lines: string[] = [];
  const add = (n: number, stream: 1 | 2, content: string) =>
    entries.push({ ts: ts(n), stream, content });
  for (let i = 1; i <= 20; i++) {
    add(i, i % 2 ? 1 : 2, `line ${i}\n`);
    lines.push(`line ${i}`);
  }
  for (const s of ["same a", "same b", "same c"]) {
    add(21, 1, `${s}\n`);
    lines.push(s);
  }
  const long = "x".repeat(40000);
  add(22, 1, long.slice(0, 16384));
  add(22, 1, long.slice(16384, 32768));
  add(22, 1, long.slice(32768) + "\n");
  lines.push(long);
  for (let i = 23; i <= 40; i++) {
    add(i, 2, `line ${i}\n`);
    lines.push(`line ${i}`);
  }
  return { entries, lines };
}

const bytesOf = (e: Entry) => frame(e.stream, `${e.ts} ${e.content}`);

for (
  const cut of [
    { name: "in the middle of a line sharing its timestamp with sent ones", entry: 22, at: 20 },
    { name: "between the pieces of a long line", entry: 24, at: 0 },
    { name: "in the middle of a long line's second piece", entry: 24, at: 9000 },
    { name: "inside a frame header", entry: 5, at: 3 },
  ]
) {
  Deno.test(`tail resumes a stream cut ${cut.name}: 0 lost, 0 repeated`, async () => {
    const { entries, lines } = script();
    const engine = await FakeEngine.start();
    const binding = await freshBinding();
    let logsRequests = 0;
    /** Follow requests only: the completion reads of a stopped container's stream do not follow. */
    let followRequests = 0;
    let finished = false;
    const sinces: (string | null)[] = [];
    engine.route(
      api("/containers/json"),
      (_req, conn) =>
        json(
          conn,
          200,
          finished
            ? []
            : [{ Id: ID, Names: ["/resumer"], Image: "kt/fake", Labels: {}, State: "running" }],
        ),
    );
    engine.route(api(`/containers/${ID}/json`), (_req, conn) =>
      json(conn, 200, {
        Id: ID,
        Name: "/resumer",
        State: { Running: !finished, StartedAt: ts(0), FinishedAt: "0001-01-01T00:00:00Z" },
        Config: { Image: "kt/fake", Labels: {}, Tty: false },
      }));
    engine.route(api(`/containers/${ID}/logs`), async (req, conn) => {
      logsRequests++;
      const since = req.url.searchParams.get("since");
      sinces.push(since);
      if (req.url.searchParams.get("follow") === "1") followRequests++;
      await chunkedStart(conn, 200, {});
      if (logsRequests === 1) {
        // Attached at start ("now"): the fake treats that as the whole script, then cuts.
        for (let i = 0; i < cut.entry - 1; i++) await chunk(conn, bytesOf(entries[i]));
        const torn = bytesOf(entries[cut.entry - 1]).subarray(0, cut.at + (cut.at > 8 ? 8 : 0));
        if (torn.length > 0) await chunk(conn, torn);
        return "close";
      }
      const from = since === null ? 0n : sinceNanos(since);
      for (const e of entries) if (timestampToNanos(e.ts) >= from) await chunk(conn, bytesOf(e));
      finished = true;
      await chunkEnd(conn);
      return "keep";
    });
    const k = await startKarotten({
      RABBITMQ_URL: RABBIT_URL,
      DOCKER_SOCK: engine.sock,
      EXCHANGE: binding.exchange,
      KAROTTEN_TUNING: JSON.stringify({ reattachBackoffInitialMs: 20 }),
    });
    try {
      await waitFor(() => binding.messages.length >= lines.length, {
        timeoutMs: TIMEOUT_MS,
        what: `${lines.length} messages`,
      });
      await k.waitForLog(/ detached id=c0ffee000000 reason=stopped/, TIMEOUT_MS);
      assert.deepEqual(binding.messages.map((m) => m.body.message), lines);
      // One attach, one resume; any further request is a non-follow completion read.
      assert.equal(followRequests, 2);
      assert.notEqual(sinces[1], null, "the re-attach asks for since=<last timestamp>");
    } finally {
      assert.equal(await k.stop(), 0);
      await binding.close();
      await engine.close();
    }
  });
}

function sinceNanos(since: string): bigint {
  const [s, ns = "0"] = since.split(".");
  return BigInt(s) * 1_000_000_000n + BigInt(ns.padEnd(9, "0"));
}
