/**
 * Resilience against an engine that misbehaves in ways a real `dockerd` can't be made to on
 * demand: response heads that never come, an events stream that goes silent without closing,
 * logs streams cut mid-chunk and mid-frame, error answers, a `/_ping` that starts failing, and
 * connections the engine drops while they sit in the idle pool.
 *
 * Each test runs karotten (the real daemon, as a subprocess with its permission flags) against
 * its own `FakeEngine`, with the real RabbitMQ behind it, and ends by asserting that every
 * request karotten made was a GET of `/_ping`, `/containers/...` or `/events`.
 */
import assert from "node:assert/strict";
import type { Tuning } from "../../lib/config.ts";
import { delay } from "../../lib/async/delay.ts";
import { EXIT_ENGINE_UNREACHABLE, EXIT_OK } from "../../lib/exit_codes.ts";
import { waitFor, withDeadline } from "../helpers/deadline.ts";
import {
  api,
  chunk,
  chunkedStart,
  chunkEnd,
  FakeEngine,
  frame,
  type Handler,
  json,
  type RecordedRequest,
  write,
} from "../helpers/fake_engine.ts";
import { type Karotten, startKarotten, withLogTail } from "../helpers/karotten.ts";
import { type Binding, freshBinding, RABBIT_URL, type Received } from "../helpers/rabbit.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { assertOnlyReads } from "../helpers/read_only.ts";

/** Longest wait for anything the daemon should do within a second or so. */
const STEP_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Fake containers and their answers

interface FakeContainer {
  id: string;
  name: string;
  tty: boolean;
}

/** A container with a distinct 64-hex id (its 12-character short id differs from the others'). */
function container(n: number, name: string, tty = false): FakeContainer {
  return { id: n.toString(16).padStart(4, "0").repeat(16), name, tty };
}

const short = (c: FakeContainer) => c.id.slice(0, 12);

function summary(c: FakeContainer) {
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: "kt/fake:1",
    Labels: {},
    State: "running",
  };
}

function inspectBody(c: FakeContainer) {
  return {
    Id: c.id,
    Name: `/${c.name}`,
    State: {
      Running: true,
      Status: "running",
      StartedAt: "2030-01-01T00:00:00.000000000Z",
      FinishedAt: "0001-01-01T00:00:00Z",
    },
    Config: { Image: "kt/fake:1", Labels: {}, Tty: c.tty },
    HostConfig: { LogConfig: { Type: "json-file" } },
  };
}

/** A `start` event for the container, as one line of the events stream. */
function startEvent(c: FakeContainer): string {
  return JSON.stringify({
    Type: "container",
    Action: "start",
    Actor: { ID: c.id, Attributes: { name: c.name, image: "kt/fake:1" } },
    time: 1893456000,
    timeNano: 1893456000000000000,
  }) + "\n";
}

/** Engine timestamp of line `i` of a scripted log: 2030-01-01T00:00:<i>Z, 9 fractional digits. */
function lineTs(i: number): string {
  return new Date(Date.UTC(2030, 0, 1, 0, 0, i)).toISOString().replace(/\.\d{3}Z$/, ".000000000Z");
}

/** Seconds since the epoch of `lineTs(i)`. */
const lineSeconds = (i: number) => Date.UTC(2030, 0, 1, 0, 0, i) / 1000;

/** Nanoseconds since the epoch of a `nowTs()` / `lineTs()` timestamp. */
function tsNanos(ts: string): bigint {
  const [whole, frac] = ts.replace(/Z$/, "").split(".");
  return BigInt(Date.parse(`${whole}Z`)) * 1_000_000n + BigInt(frac.padEnd(9, "0"));
}

/** The engine's current time as a log timestamp. */
function nowTs(): string {
  return new Date().toISOString().replace(/Z$/, "000000Z");
}

/** Line `i` of a scripted log, with its timestamp, as the engine sends it with `timestamps=1`. */
const entry = (i: number, tty: boolean) => `${lineTs(i)} line ${i}${tty ? "\r\n" : "\n"}`;

/** The bytes of line `i` on the wire: a stdout frame, or raw for a TTY container. */
function wire(i: number, tty: boolean): Uint8Array {
  return tty ? new TextEncoder().encode(entry(i, true)) : frame(1, entry(i, false));
}

/** The first line a scripted logs request must send: all of them, or from `since` (inclusive). */
function firstLine(path: string): number {
  const since = new URL(path, "http://docker").searchParams.get("since");
  if (since === null) return 1;
  const seconds = Number(since.split(".")[0]);
  let i = 1;
  while (lineSeconds(i) < seconds) i++;
  return i;
}

const hang: Handler = async (req) => {
  await req.hold();
  return "close";
};

/** Answers the i-th request with `steps[i]`, and every later one with `rest`. */
function scripted(steps: Handler[], rest: Handler): Handler {
  let n = 0;
  return (req, conn) => (n < steps.length ? steps[n++] : rest)(req, conn);
}

const answer = (status: number, body: unknown): Handler => (_req, conn) => json(conn, status, body);

const dockerError = (status: number, message: string) => answer(status, { message });

/** A logs stream that sends one stdout line stamped now, then stays open. */
function liveLine(text: string): Handler {
  return async (req, conn) => {
    await chunkedStart(conn, 200, {});
    await chunk(conn, frame(1, `${nowTs()} ${text}\n`));
    await req.hold();
    return "close";
  };
}

// ---------------------------------------------------------------------------------------------
// One daemon against one fake engine

interface Ctx {
  engine: FakeEngine;
  k: Karotten;
  binding: Binding;
}

/**
 * Starts a fake engine (routes set by `routes`), a fresh exchange and karotten with `tuning`;
 * runs `body`; stops everything; asserts the exit code and that every request was a read.
 */
async function withFake(
  tuning: Partial<Tuning>,
  routes: (engine: FakeEngine) => void,
  body: (ctx: Ctx) => Promise<void>,
  expectedExit = EXIT_OK,
): Promise<void> {
  const engine = await FakeEngine.start();
  let binding: Binding | undefined;
  let k: Karotten | undefined;
  let code: number | undefined;
  try {
    routes(engine);
    binding = await freshBinding();
    k = await startKarotten({
      RABBITMQ_URL: RABBIT_URL,
      DOCKER_SOCK: engine.sock,
      EXCHANGE: binding.exchange,
      DEBUG: "1",
      KAROTTEN_TUNING: JSON.stringify(tuning),
    });
    await body({ engine, k, binding }).catch((err) => {
      throw withLogTail(err, k!);
    });
  } finally {
    if (k !== undefined) code = await k.stop();
    try {
      await engine.close(); // throws when a handler failed (e.g. an assertion on a request)
    } finally {
      await binding?.close();
    }
  }
  assert.equal(code, expectedExit, "karotten's exit code");
  assertOnlyReads(engine.requests);
}

/** Requests whose path (without a version prefix and query) matches `re`. */
function requestsTo(engine: FakeEngine, re: RegExp): RecordedRequest[] {
  return engine.requests.filter((r) => re.test(r.path.replace(/^\/v[\d.]+/, "").split("?")[0]));
}

const of = (binding: Binding, c: FakeContainer): Received[] =>
  binding.messages.filter((m) => m.body.container_id === short(c));

const linesMatching = (k: Karotten, re: RegExp) => k.lines.filter((l) => re.test(l));

/** Gaps in ms between consecutive requests. */
const gaps = (rs: readonly RecordedRequest[]) => rs.slice(1).map((r, i) => r.at - rs[i].at);

/**
 * Open connections on the fake engine's side of its socket: accepted unix sockets bound to
 * `sock`, in state connected (03), as `/proc/net/unix` lists them.
 */
async function serverConnections(sock: string): Promise<number> {
  const table = await Deno.readTextFile("/proc/net/unix");
  return table.split("\n").filter((line) => {
    const f = line.trim().split(/\s+/);
    return f.length >= 8 && f[7] === sock && f[5] === "03";
  }).length;
}

// ---------------------------------------------------------------------------------------------

Deno.test("fake engine: a response head that never comes fails after headerTimeoutMs, and karotten carries on; a follow stream's head may come with its first line", async () => {
  const c = container(1, "slow-head");
  const headerTimeoutMs = 300;
  const lateMs = 3 * headerTimeoutMs;
  /** Podman's way with a silent container: status line and headers come with the first line. */
  const headWithFirstLine: Handler = async (req, conn) => {
    await delay(lateMs);
    return await liveLine("the first line, late")(req, conn);
  };
  await withFake(
    { headerTimeoutMs, reattachBackoffInitialMs: 50, reattachBackoffMaxMs: 200 },
    (engine) => {
      engine.route(api("/containers/json"), scripted([hang], answer(200, [summary(c)])));
      engine.route(api(`/containers/${c.id}/json`), answer(200, inspectBody(c)));
      engine.route(api(`/containers/${c.id}/logs`), headWithFirstLine);
    },
    async ({ engine, k, binding }) => {
      const timedOut = `no response headers within ${headerTimeoutMs} ms`;
      await k.waitForLog(new RegExp(` warn list_failed .*${timedOut}`), STEP_TIMEOUT_MS);
      await k.waitForLog(/ info ready containers=1/, STEP_TIMEOUT_MS);
      await waitFor(() => of(binding, c).length >= 1, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: "the line that came with the late logs head",
      });
      assert.equal(of(binding, c)[0].body.message, "the first line, late");
      const [hung, next] = requestsTo(engine, /^\/containers\/json$/);
      // The deadline starts in karotten just before the hung request reaches the fake.
      assert.ok(
        next.at - hung.at >= headerTimeoutMs - 20,
        `retried ${Math.round(next.at - hung.at)} ms after the hung request`,
      );
      assert.equal(requestsTo(engine, /\/logs$/).length, 1, "the follow request was awaited");
      assert.deepEqual(linesMatching(k, / warn logs_stream_failed /), []);
      assert.equal(linesMatching(k, / error /).length, 0, "no error lines");
    },
  );
});

Deno.test("fake engine: a small answer whose body never comes fails after headerTimeoutMs too", async () => {
  const c = container(4, "slow-body");
  const headerTimeoutMs = 300;
  /** A head promising 100 bytes of JSON, 10 of them, then nothing. */
  const stalledBody: Handler = async (req, conn) => {
    await write(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n");
    await write(conn, 'Content-Length: 100\r\n\r\n[{"Id": "');
    await req.hold();
    return "close";
  };
  /** A 500 whose error body stalls the same way. */
  const stalledError: Handler = async (req, conn) => {
    await write(conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n");
    await write(conn, 'Content-Length: 100\r\n\r\n{"message": ');
    await req.hold();
    return "close";
  };
  await withFake(
    { headerTimeoutMs, reattachBackoffInitialMs: 50, reattachBackoffMaxMs: 200 },
    (engine) => {
      engine.route(api("/containers/json"), scripted([stalledBody], answer(200, [summary(c)])));
      engine.route(
        api(`/containers/${c.id}/json`),
        scripted([stalledBody], answer(200, inspectBody(c))),
      );
      engine.route(
        api(`/containers/${c.id}/logs`),
        scripted([stalledError], liveLine("after the stalls")),
      );
    },
    async ({ engine, k, binding }) => {
      await waitFor(() => of(binding, c).length >= 1, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: "the line sent after the stalled bodies",
      });
      assert.equal(of(binding, c)[0].body.message, "after the stalls");
      assert.equal(linesMatching(k, / warn list_failed .*within 300 ms/).length, 1);
      assert.equal(linesMatching(k, / warn logs_stream_failed .*within 300 ms/).length, 2);
      for (const re of [/^\/containers\/json$/, /\/json$/, /\/logs$/]) {
        assert.ok(requestsTo(engine, re).length >= 2, `${re} was asked again`);
      }
    },
  );
});

Deno.test("fake engine: an events stream that goes silent without closing is reconnected after eventsWatchdogMs", async () => {
  // Well above a busy machine's event-loop stalls: a stall that outlasts the watchdog fires it
  // with the next event already waiting on the socket.
  const eventsWatchdogMs = 1_000;
  const beats = 8;
  const beatMs = 100;
  // Only the first connection talks: harmless events (a destroy of an unknown container) every
  // 100 ms keep the watchdog quiet; then it falls silent, like every later connection.
  const talking: Handler = async (req, conn) => {
    await chunkedStart(conn, 200, { "Content-Type": "application/json" });
    for (let i = 0; i < beats; i++) {
      const ev = { Type: "container", Action: "destroy", Actor: { ID: "ab".repeat(32) } };
      await chunk(conn, JSON.stringify(ev) + "\n");
      await delay(beatMs);
    }
    await req.hold();
    return "close";
  };
  const silent: Handler = async (req, conn) => {
    await chunkedStart(conn, 200, { "Content-Type": "application/json" });
    await req.hold();
    return "close";
  };
  await withFake(
    { eventsWatchdogMs, reattachBackoffInitialMs: 50, reattachBackoffMaxMs: 100 },
    (engine) => engine.route(api("/events"), scripted([talking], silent)),
    async ({ engine, k }) => {
      await waitFor(() => requestsTo(engine, /^\/events$/).length >= 4, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: "4 /events requests",
      });
      const events = requestsTo(engine, /^\/events$/);
      const [talkGap, ...silentGaps] = gaps(events);
      // Its last event came (beats - 1) beats after it connected; the watchdog fired after that.
      assert.ok(
        talkGap >= (beats - 1) * beatMs + eventsWatchdogMs - 20,
        `the talking stream was dropped after ${Math.round(talkGap)} ms`,
      );
      for (const gap of silentGaps) {
        assert.ok(gap >= eventsWatchdogMs - 20, `a silent stream was dropped after ${gap} ms`);
      }
      await waitFor(() => linesMatching(k, / warn events_silent after_ms=1000/).length >= 3, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: "an events_silent warning for each silent stream",
      });
      // Every (re)connect is followed by a listing (reconcileIntervalMs is a minute here).
      await waitFor(() => requestsTo(engine, /^\/containers\/json$/).length >= 4, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: "a /containers/json request after each events connection",
      });
    },
  );
});

Deno.test("fake engine: logs streams cut mid-chunk and mid-frame are re-attached from where they stopped", async () => {
  const plain = container(2, "torn-frames");
  const tty = container(3, "torn-tty", true);
  const total = 8;
  /** Writes lines `from`..`to` of the scripted log as one chunk. */
  const lines = async (conn: Deno.Conn, c: FakeContainer, from: number, to: number) => {
    const parts: Uint8Array[] = [];
    for (let i = from; i <= to; i++) parts.push(wire(i, c.tty));
    await chunk(conn, concatBytes(parts));
  };
  const plainLogs = scripted([
    // 1. Lines 1-2, then a chunk that promises 64 bytes and is cut after 10 (mid-chunk).
    async (req, conn) => {
      assert.equal(firstLine(req.path), 1);
      await chunkedStart(conn, 200, {});
      await lines(conn, plain, 1, 2);
      await write(conn, concatBytes([enc("40\r\n"), wire(3, false).subarray(0, 10)]));
      return "close";
    },
    // 2. From line 2 (inclusive since), then a whole chunk holding half of line 5's frame,
    //    and the connection closes (mid-frame).
    async (req, conn) => {
      const from = firstLine(req.path);
      assert.equal(from, 2, `second request ${req.path}`);
      await chunkedStart(conn, 200, {});
      await lines(conn, plain, from, 4);
      await chunk(conn, wire(5, false).subarray(0, 12));
      return "close";
    },
    // 3. From line 4, then 5 bytes of line 6's frame header, and a clean end of the body.
    async (req, conn) => {
      const from = firstLine(req.path);
      assert.equal(from, 4, `third request ${req.path}`);
      await chunkedStart(conn, 200, {});
      await lines(conn, plain, from, 5);
      await chunk(conn, wire(6, false).subarray(0, 5));
      await chunkEnd(conn);
      return "keep";
    },
  ], async (req, conn) => {
    await chunkedStart(conn, 200, {});
    await lines(conn, plain, firstLine(req.path), total);
    await req.hold();
    return "close";
  });
  const ttyLogs = scripted([
    // A TTY stream that ends cleanly in the middle of line 2.
    async (req, conn) => {
      assert.equal(firstLine(req.path), 1);
      await chunkedStart(conn, 200, {});
      await chunk(conn, concatBytes([wire(1, true), wire(2, true).subarray(0, 35)]));
      await chunkEnd(conn);
      return "keep";
    },
  ], async (req, conn) => {
    await chunkedStart(conn, 200, {});
    await lines(conn, tty, firstLine(req.path), 3);
    await req.hold();
    return "close";
  });
  await withFake(
    { reattachBackoffInitialMs: 50, reattachBackoffMaxMs: 200 },
    (engine) => {
      // Announced by start events; listed as running, as a real engine would, once started.
      engine.route(
        api("/containers/json"),
        scripted([answer(200, [])], answer(200, [plain, tty].map(summary))),
      );
      engine.route(api("/events"), async (req, conn) => {
        await chunkedStart(conn, 200, { "Content-Type": "application/json" });
        await chunk(conn, startEvent(plain) + startEvent(tty));
        await req.hold();
        return "close";
      });
      for (const c of [plain, tty]) {
        engine.route(api(`/containers/${c.id}/json`), answer(200, inspectBody(c)));
      }
      engine.route(api(`/containers/${plain.id}/logs`), plainLogs);
      engine.route(api(`/containers/${tty.id}/logs`), ttyLogs);
    },
    async ({ engine, k, binding }) => {
      await waitFor(() => of(binding, plain).length >= total && of(binding, tty).length >= 3, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: `${total} lines of ${plain.name} and 3 of ${tty.name}`,
      });
      assert.deepEqual(
        of(binding, plain).map((m) => m.body.message),
        Array.from({ length: total }, (_, i) => `line ${i + 1}`),
        "every line once, in order",
      );
      assert.deepEqual(of(binding, tty).map((m) => m.body.message), ["line 1", "line 2", "line 3"]);
      assert.deepEqual(
        of(binding, plain).map((m) => m.body.timestamp),
        Array.from({ length: total }, (_, i) => lineTs(i + 1)),
      );
      assert.equal(requestsTo(engine, new RegExp(`${plain.id}/logs$`)).length, 4);
      assert.equal(requestsTo(engine, new RegExp(`${tty.id}/logs$`)).length, 2);
      // Cut mid-chunk and mid-frame header: broken bytes. Closed after a whole chunk: a cut.
      const failed = linesMatching(k, new RegExp(` warn logs_stream_failed id=${short(plain)} `));
      assert.equal(failed.length, 2, failed.join("\n"));
      assert.match(failed[0], /chunked/);
      assert.match(failed[1], /frame/);
      const cut = linesMatching(k, new RegExp(` info logs_stream_ended id=${short(plain)} `));
      assert.equal(cut.length, 1, cut.join("\n"));
      assert.match(cut[0], /reason="cut by the engine/);
      await k.waitForLog(
        new RegExp(` info logs_stream_ended id=${short(tty)} reason="eof while running"`),
        STEP_TIMEOUT_MS,
      );
      assert.equal(linesMatching(k, / error /).length, 0, "no error lines");
    },
  );
});

Deno.test("fake engine: 501/409/404 answers are final, 500 answers are retried with backoff", async () => {
  const noDriver = container(0x11, "no-driver"); // logs: 501
  const conflict = container(0x12, "conflict"); // logs: 409
  const gone = container(0x13, "gone"); // inspect: 404
  const flakyLogs = container(0x14, "flaky-logs"); // logs: 500 ×3, then a line
  const flakyInspect = container(0x15, "flaky-inspect"); // inspect: 500 ×2, then fine
  const initialMs = 100;
  const reconcileIntervalMs = 100;
  await withFake(
    { reattachBackoffInitialMs: initialMs, reattachBackoffMaxMs: 5_000, reconcileIntervalMs },
    (engine) => {
      // Listed every round: the ones a real engine lists as running (all but `gone`). Two more
      // come as `start` events.
      engine.route(
        api("/containers/json"),
        answer(200, [noDriver, conflict, flakyLogs, flakyInspect].map(summary)),
      );
      engine.route(api("/events"), async (req, conn) => {
        await chunkedStart(conn, 200, { "Content-Type": "application/json" });
        await chunk(conn, startEvent(conflict) + startEvent(gone));
        await req.hold();
        return "close";
      });
      for (const c of [noDriver, conflict, flakyLogs]) {
        engine.route(api(`/containers/${c.id}/json`), answer(200, inspectBody(c)));
      }
      engine.route(api(`/containers/${gone.id}/json`), dockerError(404, "No such container"));
      engine.route(
        api(`/containers/${flakyInspect.id}/json`),
        scripted(
          [dockerError(500, "engine hiccup"), dockerError(500, "engine hiccup")],
          answer(200, inspectBody(flakyInspect)),
        ),
      );
      engine.route(
        api(`/containers/${noDriver.id}/logs`),
        dockerError(501, "configured logging driver does not support reading"),
      );
      engine.route(
        api(`/containers/${conflict.id}/logs`),
        dockerError(409, "can not get logs from container which is dead or marked for removal"),
      );
      const e500 = dockerError(500, "engine hiccup");
      engine.route(
        api(`/containers/${flakyLogs.id}/logs`),
        scripted([e500, e500, e500], liveLine("after three 500s")),
      );
      engine.route(api(`/containers/${flakyInspect.id}/logs`), liveLine("after two 500s"));
    },
    async ({ engine, k, binding }) => {
      await waitFor(
        () => of(binding, flakyLogs).length >= 1 && of(binding, flakyInspect).length >= 1,
        {
          timeoutMs: STEP_TIMEOUT_MS,
          what: "the lines of the containers answered 500 at first",
        },
      );
      await k.waitForLog(new RegExp(` detached id=${short(gone)} `), STEP_TIMEOUT_MS);
      // Many more reconcile rounds, each of which lists `noDriver` as running.
      const roundsBefore = requestsTo(engine, /^\/containers\/json$/).length;
      await waitFor(() => requestsTo(engine, /^\/containers\/json$/).length >= roundsBefore + 10, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: "10 more reconcile rounds",
      });

      const requestsOf = (c: FakeContainer, what: "json" | "logs") =>
        requestsTo(engine, new RegExp(`^/containers/${c.id}/${what}$`));
      const unavailable = (c: FakeContainer) =>
        linesMatching(k, new RegExp(` warn logs_unavailable id=${short(c)} `));
      // 501 and 409: one warning each, one logs request, never again.
      for (const [c, status] of [[noDriver, 501], [conflict, 409]] as const) {
        assert.equal(requestsOf(c, "logs").length, 1, `${c.name}: logs requests`);
        assert.equal(requestsOf(c, "json").length, 1, `${c.name}: inspect requests`);
        assert.equal(unavailable(c).length, 1, `${c.name}: logs_unavailable warnings`);
        assert.match(unavailable(c)[0], new RegExp(` status=${status} `));
      }
      await k.waitForLog(new RegExp(` detached id=${short(noDriver)} reason=unreadable`), 1);
      // 404 on inspect: the container is gone; no logs request, no warning.
      assert.equal(requestsOf(gone, "json").length, 1);
      assert.equal(requestsOf(gone, "logs").length, 0);
      assert.equal(unavailable(gone).length, 0);
      // 500s: retried, with waits that at least double (jitter keeps each in [½, 1) × nominal).
      const logsTries = requestsOf(flakyLogs, "logs");
      assert.equal(logsTries.length, 4);
      gaps(logsTries).forEach((gap, i) => {
        const least = (initialMs / 2) * 2 ** i;
        assert.ok(gap >= least, `flaky-logs retry ${i + 1} came after ${gap} ms (< ${least})`);
      });
      assert.equal(
        linesMatching(k, new RegExp(` warn logs_stream_failed id=${short(flakyLogs)} .*500`))
          .length,
        3,
      );
      const inspectTries = requestsOf(flakyInspect, "json");
      assert.equal(inspectTries.length, 3);
      gaps(inspectTries).forEach((gap, i) => {
        const least = (initialMs / 2) * 2 ** i;
        assert.ok(gap >= least, `flaky-inspect retry ${i + 1} came after ${gap} ms (< ${least})`);
      });
      assert.equal(unavailable(flakyLogs).length + unavailable(flakyInspect).length, 0);
      assert.equal(of(binding, flakyLogs)[0].body.message, "after three 500s");
      assert.equal(of(binding, flakyInspect)[0].body.message, "after two 500s");
    },
  );
});

Deno.test("fake engine: a failed first logs request of a container running at start loses no line printed meanwhile", async () => {
  const c = container(0x16, "early-500");
  /** Engine timestamps: the "now" of a request, and one just after the failed request. */
  let failedAt = "";
  const firstTry: Handler = (_req, conn) => {
    failedAt = nowTs();
    return json(conn, 500, { message: "engine hiccup" });
  };
  const retry: Handler = async (req, conn) => {
    // What a real engine would send: `tail=0` is only what comes from now on, `since` is
    // inclusive. The line printed while karotten waited to retry is stamped just after the 500.
    const q = new URL(req.path, "http://docker").searchParams;
    const during = failedAt.replace(/\d{3}Z$/, "999Z");
    const lines: string[] = [];
    if (q.get("tail") !== "0") {
      const since = q.get("since");
      const sinceNs = since === null ? 0n : BigInt(since.replace(".", ""));
      if (tsNanos(during) >= sinceNs) lines.push(`${during} printed during the backoff\n`);
    }
    lines.push(`${nowTs()} printed after the retry\n`);
    await chunkedStart(conn, 200, {});
    await chunk(conn, concatBytes(lines.map((l) => frame(1, l))));
    await req.hold();
    return "close";
  };
  await withFake(
    { reattachBackoffInitialMs: 200, reattachBackoffMaxMs: 400 },
    (engine) => {
      engine.route(api("/containers/json"), answer(200, [summary(c)]));
      engine.route(api(`/containers/${c.id}/json`), answer(200, inspectBody(c)));
      engine.route(api(`/containers/${c.id}/logs`), scripted([firstTry], retry));
    },
    async ({ engine, binding }) => {
      await waitFor(
        () => of(binding, c).some((m) => m.body.message === "printed after the retry"),
        {
          timeoutMs: STEP_TIMEOUT_MS,
          what: "the line printed after the retry",
        },
      );
      const [, second] = requestsTo(engine, new RegExp(`^/containers/${c.id}/logs$`));
      assert.deepEqual(
        of(binding, c).map((m) => m.body.message),
        ["printed during the backoff", "printed after the retry"],
        `the retry asked ${second.path.split("?")[1]}`,
      );
    },
  );
});

Deno.test("fake engine: a /_ping that starts failing makes karotten exit 3 after pingFailuresToExit failures in a row", async () => {
  const pingFailuresToExit = 3;
  const ok: Handler = (_req, conn) => json(conn, 200, "OK");
  const e500 = dockerError(500, "engine is sick");
  const dropped: Handler = () => Promise.resolve("close"); // closes without an answer
  // ok, fail, fail, ok (the count starts again), then failing three ways for good.
  const failing = [e500, hang, dropped];
  let n = 0;
  const sick: Handler = (req, conn) => failing[n++ % failing.length](req, conn);
  await withFake(
    { pingIntervalMs: 100, pingFailuresToExit, headerTimeoutMs: 300 },
    (engine) => engine.route(api("/_ping"), scripted([ok, e500, e500, ok], sick)),
    async ({ k }) => {
      await k.waitForLog(/ info ping_recovered after_failures=2/, STEP_TIMEOUT_MS);
      const code = await k.exited;
      assert.equal(code, EXIT_ENGINE_UNREACHABLE);
      const failed = linesMatching(k, / warn ping_failed /);
      assert.deepEqual(
        failed.map((l) => Number(/ failures=(\d+)/.exec(l)?.[1])),
        [1, 2, 1, 2, 3],
        failed.join("\n"),
      );
      assert.match(failed[3], /no response headers within 300 ms|timeout/);
      assert.equal(linesMatching(k, / error engine_unreachable pings_failed=3/).length, 1);
      await k.waitForLog(/ info stopped exit_code=3/, 1);
    },
    EXIT_ENGINE_UNREACHABLE,
  );
});

Deno.test("fake engine: at most maxIdleConns connections stay idle, and they close after idleTimeoutMs", async () => {
  const maxIdleConns = 2;
  const idleTimeoutMs = 1_000;
  const many = Array.from({ length: 6 }, (_, i) => container(0x21 + i, `idle-${i}`));
  // Inspects are held until all six have arrived: six connections are open at once.
  const arrived = Promise.withResolvers<void>();
  let inspects = 0;
  let peak = 0;
  await withFake(
    { maxIdleConns, idleTimeoutMs, pingIntervalMs: 60_000, reconcileIntervalMs: 60_000 },
    (engine) => {
      engine.route(api("/containers/json"), answer(200, many.map(summary)));
      for (const c of many) {
        engine.route(api(`/containers/${c.id}/json`), async (_req, conn) => {
          if (++inspects === many.length) {
            peak = await serverConnections(engine.sock);
            arrived.resolve();
          }
          await arrived.promise;
          return await json(conn, 200, inspectBody(c));
        });
        engine.route(api(`/containers/${c.id}/logs`), dockerError(501, "no log driver"));
      }
    },
    async ({ engine, k }) => {
      for (const c of many) {
        await k.waitForLog(
          new RegExp(` detached id=${short(c)} reason=unreadable`),
          STEP_TIMEOUT_MS,
        );
      }
      // The events stream, plus the six inspects.
      assert.ok(peak >= 1 + many.length, `only ${peak} connections while the inspects were held`);
      // Now: the events stream and the idle pool.
      await waitFor(async () => await serverConnections(engine.sock) === 1 + maxIdleConns, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: `${maxIdleConns} idle connections plus the events stream`,
      });
      const lastRequest = engine.requests.at(-1)!.at;
      await waitFor(async () => await serverConnections(engine.sock) === 1, {
        timeoutMs: idleTimeoutMs * 3,
        what: "the idle connections to be closed",
      });
      const idleFor = performance.now() - lastRequest;
      assert.ok(idleFor >= idleTimeoutMs, `idle connections closed after ${idleFor} ms`);
      assert.equal(engine.requests.at(-1)!.at, lastRequest, "no request in between");
    },
  );
});

Deno.test("fake engine: a pooled connection the engine closed is not reused: the request goes out on a new one", async () => {
  const reconcileIntervalMs = 100;
  let listings = 0;
  await withFake(
    { reconcileIntervalMs, pingIntervalMs: 60_000 },
    (engine) => {
      // Answer with keep-alive, then hang up: the connection goes back to karotten's pool dead.
      engine.route(api("/containers/json"), async (_req, conn) => {
        listings++;
        await json(conn, 200, []);
        return "close";
      });
    },
    async ({ k }) => {
      await waitFor(() => listings >= 15, { timeoutMs: STEP_TIMEOUT_MS, what: "15 listings" });
      assert.deepEqual(linesMatching(k, / (warn|error) /), [], "no failed request");
    },
  );
});

Deno.test("fake engine: reconcile attaches a running container whose start event was missed", async () => {
  const c = container(0x31, "missed-start");
  await withFake(
    { reconcileIntervalMs: 100 },
    (engine) => {
      // The first listing (at start) is empty; the container shows up later, with no event.
      engine.route(api("/containers/json"), scripted([answer(200, [])], answer(200, [summary(c)])));
      engine.route(api(`/containers/${c.id}/json`), answer(200, inspectBody(c)));
      engine.route(api(`/containers/${c.id}/logs`), async (req, conn) => {
        await chunkedStart(conn, 200, {});
        await chunk(conn, concatBytes([1, 2, 3].map((i) => wire(i, false))));
        await req.hold();
        return "close";
      });
    },
    async ({ engine, k, binding }) => {
      await k.waitForLog(new RegExp(` info reconcile_attach id=${short(c)}`), STEP_TIMEOUT_MS);
      await waitFor(() => of(binding, c).length >= 3, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: "the 3 lines of the container found by reconcile",
      });
      // Its run is read from the beginning: the lines before it was found are not lost.
      assert.deepEqual(of(binding, c).map((m) => m.body.message), ["line 1", "line 2", "line 3"]);
      const [logs] = requestsTo(engine, new RegExp(`^/containers/${c.id}/logs$`));
      assert.equal(new URL(logs.path, "http://docker").searchParams.get("tail"), null);
    },
  );
});

Deno.test("fake engine: reconcile detaches a container that is gone without a die event", async () => {
  const c = container(0x32, "vanished");
  let gone = false;
  const streamClosed = Promise.withResolvers<void>();
  await withFake(
    { reconcileIntervalMs: 100, dieGraceMs: 300 },
    (engine) => {
      engine.route(
        api("/containers/json"),
        (_req, conn) => json(conn, 200, gone ? [] : [summary(c)]),
      );
      engine.route(
        api(`/containers/${c.id}/json`),
        (_req, conn) =>
          gone
            ? json(conn, 404, { message: "No such container" })
            : json(conn, 200, inspectBody(c)),
      );
      // A logs stream that hangs: it never ends, even once the container is gone.
      engine.route(api(`/containers/${c.id}/logs`), async (req, conn) => {
        await chunkedStart(conn, 200, {});
        await req.hold();
        streamClosed.resolve();
        return "close";
      });
    },
    async ({ engine, k }) => {
      await k.waitForLog(new RegExp(` info attached id=${short(c)} `), STEP_TIMEOUT_MS);
      gone = true; // and its die and destroy events were dropped
      const rounds = requestsTo(engine, /^\/containers\/json$/).length;
      await k.waitForLog(new RegExp(` info detached id=${short(c)} `), 5_000).catch((err) => {
        const later = requestsTo(engine, /^\/containers\/json$/).length - rounds;
        throw new Error(`still attached after ${later} reconcile rounds without it`, {
          cause: err,
        });
      });
      await withDeadline(streamClosed.promise, STEP_TIMEOUT_MS, "its logs stream to be closed");
    },
  );
});

Deno.test("fake engine: an engine socket that goes away makes karotten exit 3", async () => {
  await withFake(
    { pingIntervalMs: 100, pingFailuresToExit: 3 },
    () => {},
    async ({ engine, k }) => {
      await k.waitForLog(/ info ready /, STEP_TIMEOUT_MS);
      await waitFor(() => requestsTo(engine, /^\/_ping$/).length >= 1, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: "a first ping",
      });
      await engine.close(); // the socket is removed: connecting fails from now on
      const code = await withDeadline(k.exited, STEP_TIMEOUT_MS, "karotten to exit");
      assert.equal(code, EXIT_ENGINE_UNREACHABLE);
      assert.equal(linesMatching(k, / warn ping_failed /).length, 3);
    },
    EXIT_ENGINE_UNREACHABLE,
  );
});

function enc(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
