/**
 * Hostile input: an engine (a `FakeEngine`) that answers badly on purpose, and odd values in
 * names, labels, checkpoints and the broker URL. One test per kind of attack; each runs the real
 * daemon with the real broker beside one well-behaved container and asserts that the daemon's
 * memory stays bounded (VmHWM from /proc), that it says what happened in one clear line, that it
 * keeps serving the well-behaved container, and that nothing it printed holds a raw control
 * character or a stack trace.
 *
 * Kept elsewhere: a comma or space in `DOCKER_SOCK`/`STATE_DIR` (tests/tools/launch_test.ts),
 * a stray `%` in the password (tests/startup_test.ts), redaction cases (tests/log_test.ts).
 */
import assert from "node:assert/strict";
import type { Tuning } from "../../lib/config.ts";
import { CHECKPOINT_FILE } from "../../lib/checkpoints.ts";
import { waitFor } from "../helpers/deadline.ts";
import {
  api,
  chunk,
  chunkedStart,
  FakeEngine,
  frame,
  type Handler,
  json,
  type RecordedRequest,
  write,
} from "../helpers/fake_engine.ts";
import { type Karotten, startKarotten, withLogTail } from "../helpers/karotten.ts";
import { type Binding, freshBinding, RABBIT_URL } from "../helpers/rabbit.ts";

const STEP_TIMEOUT_MS = 20_000;
/** The daemon's peak RSS must stay under this in every test (idle it is ~50–60 MB). */
const MAX_RSS_BYTES = 250 * 1024 * 1024;
/** Every request karotten may make: a GET of these paths, optionally `/vX.Y`-prefixed. */
const ALLOWED_PATH = /^(\/v\d+\.\d+)?(\/_ping|\/events|\/containers\/[^?]+)(\?.*)?$/;
/** What a huge answer claims to be: 10 GB. */
const HUGE_LENGTH = 10_000_000_000;

interface FakeContainer {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
}

function container(n: number, name: string, extra: Partial<FakeContainer> = {}): FakeContainer {
  return {
    id: n.toString(16).padStart(4, "0").repeat(16),
    name,
    image: "kt/fake:1",
    labels: {},
    ...extra,
  };
}

const short = (c: FakeContainer) => c.id.slice(0, 12);

const summary = (c: FakeContainer) => ({
  Id: c.id,
  Names: [`/${c.name}`],
  Image: c.image,
  Labels: c.labels,
  State: "running",
});

const inspectBody = (c: FakeContainer) => ({
  Id: c.id,
  Name: `/${c.name}`,
  State: { Running: true, Status: "running", StartedAt: "2030-01-01T00:00:00Z" },
  Config: { Image: c.image, Labels: c.labels, Tty: false },
  HostConfig: { LogConfig: { Type: "json-file" } },
});

const nowTs = () => new Date().toISOString().replace(/Z$/, "000000Z");

/** A logs stream that sends one stdout line stamped now, then stays open. */
function liveLine(text: string): Handler {
  return async (req, conn) => {
    await chunkedStart(conn, 200, {});
    await chunk(conn, frame(1, `${nowTs()} ${text}\n`));
    await req.hold();
    return "close";
  };
}

/** Routes that serve `c` as a healthy running container whose log says `text`. */
function serve(engine: FakeEngine, c: FakeContainer, text: string): void {
  engine.route(api(`/containers/${c.id}/json`), (_req, conn) => json(conn, 200, inspectBody(c)));
  engine.route(api(`/containers/${c.id}/logs`), liveLine(text));
}

/**
 * A head claiming `HUGE_LENGTH` bytes (or a chunked one that never ends), then spaces as fast as
 * the client takes them, until it closes the connection (or 256 MiB went out: the fake must not
 * run forever either).
 */
function huge(status: number, framing: "length" | "chunked" = "length"): Handler {
  return async (_req, conn) => {
    const length = framing === "length"
      ? `Content-Length: ${HUGE_LENGTH}`
      : "Transfer-Encoding: chunked";
    await write(
      conn,
      `HTTP/1.1 ${status} X\r\nContent-Type: application/json\r\n${length}\r\n\r\n`,
    );
    const spaces = new Uint8Array(1 << 20).fill(0x20);
    try {
      for (let i = 0; i < 256; i++) {
        if (framing === "length") await write(conn, spaces);
        else await chunk(conn, spaces);
      }
    } catch {
      // The client closed: what we want.
    }
    return "close";
  };
}

/** Answers the first `n` requests with `first`, the rest with `rest`. */
function firstN(n: number, first: Handler, rest: Handler): Handler {
  let seen = 0;
  return (req, conn) => (seen++ < n ? first : rest)(req, conn);
}

/** Peak resident memory of a process, bytes (VmHWM). */
async function peakRss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = status.match(/^VmHWM:\s+(\d+) kB$/m);
  assert.ok(kb, "VmHWM in /proc/<pid>/status");
  return Number(kb[1]) * 1024;
}

interface Ctx {
  engine: FakeEngine;
  k: Karotten;
  binding: Binding;
  good: FakeContainer;
}

interface HostileOptions {
  tuning?: Partial<Tuning>;
  env?: Record<string, string>;
}

/**
 * Runs karotten against a fake engine that lists `good` (plus `listed`) and serves it, with the
 * routes `routes` adds on top; runs `body`; then asserts that `good`'s line arrived, the peak
 * RSS, no raw control character or stack trace in the output, and only GETs.
 */
async function withHostile(
  listed: (good: FakeContainer) => unknown[],
  routes: (engine: FakeEngine, good: FakeContainer) => void,
  body: (ctx: Ctx) => Promise<void>,
  opts: HostileOptions = {},
): Promise<void> {
  const good = container(1, "well-behaved");
  const engine = await FakeEngine.start();
  let binding: Binding | undefined;
  let k: Karotten | undefined;
  try {
    engine.route(api("/containers/json"), (_req, conn) => json(conn, 200, listed(good)));
    serve(engine, good, "still serving");
    routes(engine, good);
    binding = await freshBinding();
    k = await startKarotten({
      RABBITMQ_URL: RABBIT_URL,
      DOCKER_SOCK: engine.sock,
      EXCHANGE: binding.exchange,
      KAROTTEN_TUNING: JSON.stringify({
        reattachBackoffInitialMs: 50,
        reattachBackoffMaxMs: 500,
        ...opts.tuning,
      }),
      ...opts.env,
    });
    const ctx = { engine, k, binding, good };
    await (async () => {
      await body(ctx);
      await waitFor(
        () => binding!.messages.some((m) => m.body.container_id === short(good)),
        { timeoutMs: STEP_TIMEOUT_MS, what: "the well-behaved container's line" },
      );
      const rss = await peakRss(k!.pid);
      assert.ok(rss < MAX_RSS_BYTES, `peak RSS ${(rss / 2 ** 20).toFixed(1)} MiB`);
    })().catch((err) => {
      throw withLogTail(err, k!);
    });
  } finally {
    if (k !== undefined) await k.stop();
    try {
      await engine.close();
    } finally {
      await binding?.close();
    }
  }
  assertInert(k!.lines);
  assertOnlyReads(engine.requests);
}

/** No raw control character (terminal escapes), no stack trace in anything the daemon printed. */
function assertInert(lines: readonly string[]): void {
  for (const line of lines) {
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f]/, `raw control character in ${line}`);
    assert.doesNotMatch(line, /^\s+at |^error: Uncaught/, `stack trace: ${line}`);
  }
}

function assertOnlyReads(requests: readonly RecordedRequest[]): void {
  for (const r of requests) {
    assert.equal(r.method, "GET", `${r.method} ${r.path}`);
    assert.match(r.path, ALLOWED_PATH);
  }
}

// ---------------------------------------------------------------------------------------------

Deno.test("hostile engine: list, inspect, ping and error bodies with a huge Content-Length fail at once with their limit", async () => {
  const bigInspect = container(2, "big-inspect");
  const bigError = container(3, "big-error");
  await withHostile(
    (good) => [summary(good), summary(bigInspect), summary(bigError)],
    (engine, good) => {
      engine.route(
        api("/containers/json"),
        firstN(
          1,
          huge(200),
          (_req, conn) => json(conn, 200, [summary(good), summary(bigInspect), summary(bigError)]),
        ),
      );
      engine.route(api("/_ping"), firstN(1, huge(200), (_r, conn) => json(conn, 200, "OK")));
      engine.route(api(`/containers/${bigInspect.id}/json`), huge(200));
      engine.route(
        api(`/containers/${bigError.id}/json`),
        (_req, conn) => json(conn, 200, inspectBody(bigError)),
      );
      engine.route(api(`/containers/${bigError.id}/logs`), huge(500));
    },
    async ({ k }) => {
      await k.waitForLog(
        / warn list_failed .*GET \/containers\/json is larger than its limit of 16777216 bytes \(Content-Length 10000000000\)/,
        STEP_TIMEOUT_MS,
      );
      await k.waitForLog(
        new RegExp(
          ` warn logs_stream_failed id=${
            short(bigInspect)
          } .*/json is larger than its limit of 4194304 bytes`,
        ),
        STEP_TIMEOUT_MS,
      );
      await k.waitForLog(
        new RegExp(
          ` warn logs_stream_failed id=${
            short(bigError)
          } .*docker API 500 .*larger than its limit of 65536 bytes`,
        ),
        STEP_TIMEOUT_MS,
      );
      await k.waitForLog(
        / warn ping_failed .*larger than its limit of 4096 bytes/,
        STEP_TIMEOUT_MS,
      );
    },
    { tuning: { pingIntervalMs: 200 } },
  );
});

Deno.test("hostile engine: ESC and BEL in labels, engine errors and unparsable events are escaped in the log", async () => {
  const painted = container(2, "painted", {
    labels: { "com.docker.compose.project": "p\x1b[31mred\x07", "com.docker.compose.service": "s" },
  });
  const erring = container(3, "erring");
  await withHostile(
    (good) => [summary(good), summary(painted), summary(erring)],
    (engine) => {
      serve(engine, painted, "painted line");
      engine.route(
        api(`/containers/${erring.id}/json`),
        (_req, conn) => json(conn, 200, inspectBody(erring)),
      );
      engine.route(
        api(`/containers/${erring.id}/logs`),
        (_req, conn) => json(conn, 500, { message: "boom\x1b]0;pwned\x07\x1b[2J\nsecond line" }),
      );
      engine.route(api("/events"), async (req, conn) => {
        await chunkedStart(conn, 200, { "Content-Type": "application/json" });
        await chunk(conn, "\x1b[2Jnot json\x07\n");
        await req.hold();
        return "close";
      });
    },
    async ({ k }) => {
      await k.waitForLog(
        new RegExp(` info attached id=${short(painted)} .*key="p\\\\u001b\\[31mred\\\\u0007\\.s"`),
        STEP_TIMEOUT_MS,
      );
      await k.waitForLog(
        /logs_stream_failed .*boom\\u001b\]0;pwned\\u0007\\u001b\[2J second line/,
        STEP_TIMEOUT_MS,
      );
      await k.waitForLog(
        / warn event_unparsable sample="\\u001b\[2Jnot json\\u0007"/,
        STEP_TIMEOUT_MS,
      );
    },
  );
});

Deno.test("hostile engine: a checkpoint with ts garbage is ignored with a warning, gone containers are pruned, the file is 0600", async () => {
  const stateDir = await Deno.makeTempDir({ dir: "/tmp", prefix: "kt-state." });
  const gone = container(9, "gone");
  const good = container(1, "well-behaved");
  const path = `${stateDir}/${CHECKPOINT_FILE}`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      [good.id]: { ts: "garbage", count: 1 },
      [gone.id]: { ts: "2030-01-01T00:00:00.000000000Z", count: 3 },
      "../../etc/passwd": { ts: "2030-01-01T00:00:00.000000000Z", count: 1 },
    }),
    { mode: 0o644 },
  );
  try {
    await withHostile(
      (g) => [summary(g)],
      () => {},
      async ({ k }) => {
        await k.waitForLog(
          / warn checkpoints_invalid_entries .*ignored=2 /,
          STEP_TIMEOUT_MS,
        );
        await k.waitForLog(/ info checkpoints_pruned containers=1/, STEP_TIMEOUT_MS);
      },
      {
        env: { STATE_DIR: stateDir, KAROTTEN_TUNING: JSON.stringify({ checkpointIntervalMs: 50 }) },
      },
    );
    const saved = JSON.parse(await Deno.readTextFile(path));
    assert.deepEqual(Object.keys(saved), [good.id]);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("hostile engine: a container named after the broker password is logged as it is", async () => {
  const password = new URL(RABBIT_URL).password;
  assert.ok(password.length > 0, "the test broker URL has a password");
  const named = container(2, password);
  await withHostile(
    (good) => [summary(good), summary(named)],
    (engine) => serve(engine, named, "named line"),
    async ({ k }) => {
      await k.waitForLog(
        new RegExp(
          ` info attached id=${short(named)} name=${password} key=standalone\\.${password} `,
        ),
        STEP_TIMEOUT_MS,
      );
      const starting = await k.waitForLog(/ info starting /, STEP_TIMEOUT_MS);
      assert.ok(!starting.includes(`:${password}@`), starting);
      assert.match(starting, / brokers=amqps?:\/\/[^:]+:\*\*\*@/);
    },
  );
});

Deno.test("hostile engine: JSON of the wrong shape in the list, an inspect and an event is one warning each, never a crash", async () => {
  const odd = container(2, "odd-inspect");
  await withHostile(
    (good) => [null, { Id: 42 }, summary(good), summary(odd)],
    (engine, good) => {
      engine.route(
        api("/containers/json"),
        firstN(
          1,
          (_req, conn) => json(conn, 200, {}),
          (_req, conn) => json(conn, 200, [null, { Id: 42 }, summary(good), summary(odd)]),
        ),
      );
      engine.route(
        api(`/containers/${odd.id}/json`),
        (_req, conn) => json(conn, 200, { ...inspectBody(odd), State: { Running: "yes" } }),
      );
      engine.route(api("/events"), async (req, conn) => {
        await chunkedStart(conn, 200, { "Content-Type": "application/json" });
        await chunk(conn, '{"Type":"container","Action":"start","Actor":{"ID":42}}\n');
        await chunk(conn, "[null]\n");
        await req.hold();
        return "close";
      });
    },
    async ({ k }) => {
      await k.waitForLog(
        / warn list_failed .*Cannot read \/containers\/json: the answer is object/,
        STEP_TIMEOUT_MS,
      );
      await k.waitForLog(
        / warn list_items_invalid count=2 first="Cannot read \/containers\/json item 0: the item is null"/,
        STEP_TIMEOUT_MS,
      );
      await k.waitForLog(
        new RegExp(` warn container_invalid id=${short(odd)} .*State.Running is string`),
        STEP_TIMEOUT_MS,
      );
      await k.waitForLog(/ warn event_invalid .*Actor.ID is number/, STEP_TIMEOUT_MS);
      await k.waitForLog(/ warn event_invalid .*the message is array/, STEP_TIMEOUT_MS);
    },
  );
});

Deno.test("hostile engine: an events body without a newline is cut at the line limit and reconnected with backoff", async () => {
  let connections = 0;
  await withHostile(
    (good) => [summary(good)],
    (engine) => {
      engine.route(api("/events"), async (_req, conn) => {
        connections++;
        await chunkedStart(conn, 200, { "Content-Type": "application/json" });
        const piece = new Uint8Array(64 * 1024).fill(0x78);
        try {
          // 256 MiB at most: the daemon must give up long before.
          for (let i = 0; i < 4096; i++) await chunk(conn, piece);
        } catch {
          // The client closed: what we want.
        }
        return "close";
      });
    },
    async ({ k }) => {
      await k.waitForLog(
        / warn events_failed .*event line longer than 1048576 bytes/,
        STEP_TIMEOUT_MS,
      );
      await waitFor(() => connections >= 3, {
        timeoutMs: STEP_TIMEOUT_MS,
        what: "the events stream reconnected",
      });
    },
  );
});

Deno.test("hostile engine: 50,000 start events attach at most MAX_CONTAINERS, with one warning", async () => {
  const maxContainers = 300;
  const flood = 50_000;
  await withHostile(
    (good) => [summary(good)],
    (engine, good) => {
      // Inspects of the flood never answer: every attached one holds its place (and a socket).
      engine.route(api("/containers/f[0-9a-f]{63}/json"), async (req) => {
        await req.hold();
        return "close";
      });
      engine.route(api("/events"), async (req, conn) => {
        await chunkedStart(conn, 200, { "Content-Type": "application/json" });
        // After the well-behaved container is attached.
        await waitFor(() => engine.requests.some((r) => r.path.includes(`${good.id}/logs`)), {
          timeoutMs: STEP_TIMEOUT_MS,
          what: "the well-behaved container attached",
        });
        let batch = "";
        for (let i = 0; i < flood; i++) {
          const id = `f${i.toString(16).padStart(63, "0")}`;
          batch += JSON.stringify({ Type: "container", Action: "start", Actor: { ID: id } }) + "\n";
          if (batch.length > 60_000) {
            await chunk(conn, batch);
            batch = "";
          }
        }
        if (batch !== "") await chunk(conn, batch);
        await req.hold();
        return "close";
      });
    },
    async ({ k, engine }) => {
      await k.waitForLog(
        new RegExp(` warn max_containers_reached max=${maxContainers} `),
        STEP_TIMEOUT_MS,
      );
      await waitFor(
        () =>
          engine.requests.filter((r) => /\/containers\/f[0-9a-f]{63}\/json/.test(r.path))
            .length >= maxContainers - 1,
        { timeoutMs: STEP_TIMEOUT_MS, what: "the flood's inspects" },
      );
      const inspected = engine.requests.filter((r) => /\/containers\/f/.test(r.path)).length;
      assert.equal(inspected, maxContainers - 1, "one place is the well-behaved container's");
      assert.equal(k.lines.filter((l) => / max_containers_reached /.test(l)).length, 1);
      assert.ok(k.lines.length < 200, `${k.lines.length} log lines`);
    },
    // The held inspects must not time out (and log) while the test looks.
    { env: { MAX_CONTAINERS: String(maxContainers) }, tuning: { headerTimeoutMs: 120_000 } },
  );
});

Deno.test("hostile engine: 1 MB name, image and labels are cut in the envelope and the log", async () => {
  const big = "x".repeat(1_000_000);
  const huge = container(2, `n${big}`, {
    image: `i${big}`,
    labels: { "com.docker.compose.project": `p${big}`, "com.docker.compose.service": `s${big}` },
  });
  await withHostile(
    (good) => [summary(good), summary(huge)],
    (engine) => serve(engine, huge, "tiny"),
    async ({ binding, k }) => {
      await waitFor(() => binding.messages.some((m) => m.body.container_id === short(huge)), {
        timeoutMs: STEP_TIMEOUT_MS,
        what: "the line of the container with huge names",
      });
      const msg = binding.messages.find((m) => m.body.container_id === short(huge))!;
      assert.equal(msg.body.message, "tiny");
      assert.ok(JSON.stringify(msg.body).length < 1024, `${JSON.stringify(msg.body).length} B`);
      for (const field of ["container_name", "image", "project", "service"] as const) {
        assert.match(String(msg.body[field]), /~[0-9a-f]{8}$/, field);
      }
      assert.ok(msg.routingKey.length <= 255);
      assert.ok(k.lines.every((l) => l.length < 4096), "no log line over 4 KiB");
    },
  );
});
