/**
 * Proves the test helpers: deadlines, the private Docker engine, the RabbitMQ binding, the
 * daemon launcher (against a stand-in script) and the fake engine.
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
// @ts-types="@types/amqplib"
import amqp from "amqplib";
import { waitFor, withDeadline } from "./deadline.ts";
import { startEngine, TEST_IMAGE } from "./engine.ts";
import {
  freshBinding,
  RABBIT_URL,
  rabbitStartApp,
  rabbitStopApp,
  setMemoryWatermark,
} from "./rabbit.ts";
import { startKarotten } from "./karotten.ts";
import { api, chunk, chunkedStart, FakeEngine, frame, json } from "./fake_engine.ts";
import { ChannelZeroFilter } from "./proxy.ts";

const STAND_IN = "tests/helpers/testdata/stand_in_main.ts";

// ---------------------------------------------------------------------------------------------
// deadline

Deno.test("waitFor resolves once the condition holds", async () => {
  let n = 0;
  await waitFor(() => ++n >= 3, { timeoutMs: 2000, what: "three checks", intervalMs: 1 });
  assert.equal(n, 3);
  await waitFor(() => Promise.resolve(true), { timeoutMs: 0, what: "an async check" });
});

Deno.test("waitFor names what it waited for when it times out", async () => {
  await assert.rejects(
    waitFor(() => false, { timeoutMs: 30, what: "the impossible" }),
    { message: "timed out after 30ms waiting for the impossible" },
  );
  // A check that never settles is cut off by the deadline too.
  await assert.rejects(
    waitFor(() => new Promise<boolean>(() => {}), { timeoutMs: 30, what: "a hung check" }),
    { message: "timed out after 30ms waiting for a hung check" },
  );
});

Deno.test("withDeadline passes a result through and times out a hung promise", async () => {
  assert.equal(await withDeadline(Promise.resolve(42), 1000, "the answer"), 42);
  await assert.rejects(withDeadline(Promise.reject(new Error("boom")), 1000, "x"), {
    message: "boom",
  });
  await assert.rejects(withDeadline(new Promise(() => {}), 20, "nothing"), {
    message: "timed out after 20ms waiting for nothing",
  });
});

// ---------------------------------------------------------------------------------------------
// the stalling proxy's frame filter

/** One AMQP frame: type, channel, payload, frame-end. */
function amqpFrame(type: number, channel: number, payload: number[]): Buffer {
  const head = Buffer.alloc(7);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(channel, 1);
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, Buffer.from(payload), Buffer.from([0xce])]);
}

Deno.test("ChannelZeroFilter keeps channel 0's frames, whole or torn, and withholds the rest", () => {
  const start = amqpFrame(1, 0, [0, 10, 0, 10, 1, 2, 3]); // connection.start (shortened)
  const heartbeat = amqpFrame(8, 0, []);
  const openOk = amqpFrame(1, 1, [0, 20, 0, 11, 0, 0, 0, 0]); // channel.open-ok on channel 1
  const body = amqpFrame(3, 1, Array.from({ length: 300 }, (_, i) => i % 256));
  const closeOk = amqpFrame(1, 0, [0, 10, 0, 51]); // connection.close-ok
  const stream = Buffer.concat([start, openOk, heartbeat, body, closeOk]);
  const expected = Buffer.concat([start, heartbeat, closeOk]);
  const cuts = [[stream.length], Array.from({ length: stream.length }, (_, i) => i + 1)];
  for (let cut = 1; cut < stream.length; cut++) cuts.push([cut, stream.length]);
  for (const ends of cuts) {
    const filter = new ChannelZeroFilter();
    const out: Buffer[] = [];
    let from = 0;
    for (const end of ends) {
      out.push(...filter.push(stream.subarray(from, end)));
      from = end;
    }
    assert.deepEqual(Buffer.concat(out), expected, `pieces ending at ${ends.join(",")}`);
    assert.equal(filter.withheld, 2);
    assert.equal(filter.closeOk, true);
  }
  const early = new ChannelZeroFilter();
  early.push(Buffer.concat([start, heartbeat]));
  assert.equal(early.closeOk, false);
  assert.equal(early.withheld, 0);
});

// ---------------------------------------------------------------------------------------------
// the private engine (dockerd or Podman, as KAROTTEN_TEST_ENGINE says)

/** What of an engine is still on the host: processes naming its folder, mounts under it. */
async function leftovers(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).replaceAll("\0", " ");
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const zombie = stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
      if (cmd.includes(`${dir}/`) && !zombie) found.push(`process ${e.name}: ${cmd}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  for (const line of (await Deno.readTextFile("/proc/self/mountinfo")).split("\n")) {
    if (line.split(" ")[4]?.startsWith(dir)) found.push(`mount ${line}`);
  }
  try {
    await Deno.stat(dir);
    found.push(`folder ${dir}`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return found;
}

Deno.test("startEngine runs a container, keeps it across a live-restore restart, cleans up", async (t) => {
  const engine = await startEngine({ liveRestore: true });
  try {
    assert.ok(engine.sock.length < 100, `socket path too long: ${engine.sock}`);
    let id = "";
    await t.step("the image has busybox's applets and runs", async () => {
      id = await engine.run(
        "--name",
        "kt-hello",
        TEST_IMAGE,
        "sh",
        "-c",
        'echo hello from kt; seq 3 | head -n 1 >&2; trap "exit 0" TERM; while true; do sleep 1; done',
      );
      assert.match(id, /^[0-9a-f]{64}$/);
      const host = new TextDecoder().decode(
        (await new Deno.Command("busybox", { args: ["--list"], stdout: "piped" }).output()).stdout,
      ).trim().split("\n").filter((a) => a !== "busybox");
      const inImage = await engine.docker(
        ...["run", "--rm", "--pull", "never", "--network", "none", TEST_IMAGE],
        ...["sh", "-c", "ls /bin | grep -vx busybox"],
      );
      assert.deepEqual(inImage.split("\n").sort(), host.sort());
    });
    await t.step("docker logs shows its lines", async () => {
      await waitFor(
        async () => (await engine.docker("logs", id)).includes("hello from kt"),
        { timeoutMs: 10_000, what: "the container's line in docker logs" },
      );
    });
    const startedAt = await engine.docker("inspect", "-f", "{{.State.StartedAt}}", id);
    await t.step("restart with live-restore keeps it running", async () => {
      const pidBefore = engine.pid;
      await engine.restart();
      assert.notEqual(engine.pid, pidBefore);
      assert.equal(await engine.docker("inspect", "-f", "{{.State.Running}}", id), "true");
      assert.equal(await engine.docker("inspect", "-f", "{{.State.StartedAt}}", id), startedAt);
      assert.equal(await engine.docker("ps", "-q", "--no-trunc"), id);
    });
    await t.step("docker() reports a failing command with its stderr", async () => {
      await assert.rejects(engine.docker("inspect", "no-such-container"), /No such/i);
    });
  } finally {
    await engine.stop();
  }
  assert.deepEqual(await leftovers(engine.dir), []);
  await engine.stop(); // a second stop is a no-op
});

Deno.test("startEngine without live-restore stops with running containers and leaves nothing", async () => {
  const engine = await startEngine();
  try {
    // `sh` as PID 1 ignores SIGTERM: stop() must not wait it out.
    await engine.run(TEST_IMAGE, "sh", "-c", "while true; do sleep 1; done");
    await engine.run("--init", TEST_IMAGE, "sleep", "1000");
    assert.equal((await engine.docker("ps", "-q")).split("\n").length, 2);
  } finally {
    await engine.stop();
  }
  assert.deepEqual(await leftovers(engine.dir), []);
});

// ---------------------------------------------------------------------------------------------
// rabbit

async function publish(exchange: string, key: string, body: unknown): Promise<void> {
  const conn = await amqp.connect(RABBIT_URL);
  try {
    const ch = await conn.createConfirmChannel();
    ch.publish(exchange, key, Buffer.from(JSON.stringify(body)), {
      contentType: "application/json",
      deliveryMode: 2,
    });
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await conn.close();
  }
}

/** True when the exchange exists (checked on a connection of its own). */
async function exchangeExists(exchange: string): Promise<boolean> {
  const conn = await amqp.connect(RABBIT_URL);
  try {
    const ch = await conn.createChannel();
    const closed = new Promise<void>((resolve) => ch.on("close", () => resolve()));
    ch.on("error", () => {/* a 404 closes the channel: that is the answer */});
    try {
      await ch.checkExchange(exchange);
      await ch.close();
      return true;
    } catch (err) {
      assert.match(String(err), /404|NOT_FOUND/);
      await closed;
      return false;
    }
  } finally {
    await conn.close();
  }
}

Deno.test("freshBinding receives what is published to its exchange, and close removes it", async () => {
  const binding = await freshBinding();
  try {
    assert.match(binding.exchange, /^kt-[0-9a-f]{12}$/);
    await publish(binding.exchange, "web.stdout", { line: "hello", n: 1 });
    await binding.waitForCount(1, 5000);
    const [m] = binding.messages;
    assert.equal(m.routingKey, "web.stdout");
    assert.deepEqual(m.body, { line: "hello", n: 1 });
    assert.equal(new TextDecoder().decode(m.raw), '{"line":"hello","n":1}');
    assert.equal(m.contentType, "application/json");
    assert.equal(m.deliveryMode, 2);
    await assert.rejects(binding.waitForCount(2, 50), /waiting for 2 messages.*\(got 1\)/);
  } finally {
    await binding.close();
  }
  assert.equal(await exchangeExists(binding.exchange), false);
});

Deno.test("freshBinding with a durable exchange gets its consumer back after a broker bounce", async () => {
  const binding = await freshBinding({ durableExchange: true });
  try {
    await rabbitStopApp();
    try {
      await waitFor(() => binding.errors.length > 0, { timeoutMs: 10_000, what: "the drop" });
      // Published nowhere yet: the broker is down.
    } finally {
      await rabbitStartApp();
    }
    await waitFor(() => binding.reconnects === 1, { timeoutMs: 15_000, what: "the reconnect" });
    await publish(binding.exchange, "after.bounce", { ok: true });
    await binding.waitForCount(1, 5000);
    assert.deepEqual(binding.messages[0].body, { ok: true });
  } finally {
    await binding.close();
  }
  assert.equal(await exchangeExists(binding.exchange), false);
});

Deno.test("setMemoryWatermark sets the default and rejects nonsense", async () => {
  await setMemoryWatermark(0.4);
  await assert.rejects(setMemoryWatermark(0), RangeError);
});

// ---------------------------------------------------------------------------------------------
// karotten launcher (against a stand-in for main.ts)

Deno.test("startKarotten runs the script with the permission flags and collects its lines", async () => {
  const k = await startKarotten({ RABBITMQ_URL: RABBIT_URL, EXCHANGE: "kt-x" }, STAND_IN);
  try {
    const ready = await k.waitForLog(/ info ready /, 15_000);
    assert.match(ready, /^\d{4}-\d\d-\d\dT[\d:.]+Z info ready containers=0 exchange=kt-x$/);
    // Already seen lines count too.
    assert.equal(await k.waitForLog(/ ready /, 0), ready);
    const perms = await k.waitForLog(/ permissions /, 1000);
    assert.match(perms, /env_home=(prompt|denied) env_rabbitmq_url=granted/);
    assert.ok(k.lines.includes("plain stdout line"), k.lines.join("\n"));
    await assert.rejects(k.waitForLog(/never printed/, 50), /timed out after 50ms.*last lines/s);
  } finally {
    assert.equal(await k.stop(), 0);
  }
  assert.match(k.lines.at(-1) ?? "", / info stopping reason=SIGTERM$/);
  assert.equal(await k.stop(), 0); // stopping again just returns the code
});

Deno.test("startKarotten reports an early exit to waitForLog", async () => {
  const k = await startKarotten({ RABBITMQ_URL: RABBIT_URL, EXCHANGE: "exit-now" }, STAND_IN);
  await assert.rejects(k.waitForLog(/never printed/, 15_000), /karotten exited/);
  assert.equal(await k.exited, 7);
  k.kill("SIGTERM"); // a no-op once it has exited
});

// ---------------------------------------------------------------------------------------------
// fake engine

/** A raw HTTP/1.1 client on one connection: enough to test the fake. */
class RawClient {
  #buf = "";
  private constructor(readonly conn: Deno.UnixConn) {}
  static async connect(sock: string): Promise<RawClient> {
    return new RawClient(await Deno.connect({ transport: "unix", path: sock }));
  }
  async send(text: string): Promise<void> {
    await this.conn.write(new TextEncoder().encode(text));
  }
  /** Reads until `re` matches the bytes received (as latin1 text); returns and consumes them. */
  async readUntil(re: RegExp): Promise<string> {
    const scratch = new Uint8Array(4096);
    let m: RegExpExecArray | null;
    while ((m = re.exec(this.#buf)) === null) {
      const n = await this.conn.read(scratch);
      if (n === null) throw new Error(`EOF before ${re}; got ${JSON.stringify(this.#buf)}`);
      this.#buf += String.fromCharCode(...scratch.subarray(0, n));
    }
    const end = m.index + m[0].length;
    const out = this.#buf.slice(0, end);
    this.#buf = this.#buf.slice(end);
    return out;
  }
  async eof(): Promise<boolean> {
    return await this.conn.read(new Uint8Array(1)) === null;
  }
  close(): void {
    this.conn.close();
  }
}

Deno.test("FakeEngine answers /_ping, keeps the connection alive and records requests", async () => {
  const engine = await FakeEngine.start();
  const client = await RawClient.connect(engine.sock);
  try {
    await client.send("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n");
    const ping = await client.readUntil(/\r\n\r\nOK/);
    assert.match(ping, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(ping, /\r\nApi-Version: 1\.41\r\n/);
    assert.match(ping, /\r\nContent-Length: 2\r\n/);
    // Same connection: a versioned path, then an unknown one.
    await client.send("GET /v1.41/containers/json?all=0 HTTP/1.1\r\nHost: docker\r\n\r\n");
    assert.match(await client.readUntil(/\r\n\r\n\[\]/), /^HTTP\/1\.1 200 OK\r\n/);
    await client.send("GET /nope HTTP/1.1\r\nHost: docker\r\n\r\n");
    const notFound = await client.readUntil(/\{"message":"page not found"\}/);
    assert.match(notFound, /^HTTP\/1\.1 404 Not Found\r\n/);
    assert.deepEqual(engine.requests.map((r) => `${r.method} ${r.path}`), [
      "GET /_ping",
      "GET /v1.41/containers/json?all=0",
      "GET /nope",
    ]);
  } finally {
    client.close();
    await engine.close();
  }
});

Deno.test("FakeEngine streams frames in chunks and holds /events open until close", async () => {
  const engine = await FakeEngine.start();
  engine.route(api("/containers/[0-9a-f]+/logs"), async (req, conn) => {
    assert.equal(req.url.searchParams.get("follow"), "1");
    await chunkedStart(conn, 200, {});
    const f = frame(2, "oops\n");
    await chunk(conn, f.subarray(0, 3)); // a frame torn across chunks
    await chunk(conn, f.subarray(3));
    await req.hold();
    return "close";
  });
  engine.route(api("/containers/[0-9a-f]+/json"), (req, conn) => {
    return json(conn, 404, { message: `No such container: ${req.url.pathname.split("/")[2]}` });
  });
  const events = await RawClient.connect(engine.sock);
  const logs = await RawClient.connect(engine.sock);
  try {
    await events.send("GET /events HTTP/1.1\r\nHost: docker\r\n\r\n");
    assert.match(await events.readUntil(/\r\n\r\n/), /\r\nTransfer-Encoding: chunked\r\n/);
    await logs.send("GET /containers/abc123/logs?follow=1 HTTP/1.1\r\nHost: docker\r\n\r\n");
    await logs.readUntil(/\r\n\r\n/);
    const body = await logs.readUntil(/^3\r\n[^]{3}\r\n[0-9a-f]+\r\n[^]*oops\n\r\n/);
    assert.equal(body, "3\r\n\x02\0\0\r\na\r\n\0\0\0\0\x05oops\n\r\n");
    const other = await RawClient.connect(engine.sock);
    try {
      await other.send("GET /containers/abc123/json HTTP/1.1\r\nHost: docker\r\n\r\n");
      const answer = await other.readUntil(/\{"message":"No such container: abc123"\}/);
      assert.match(answer, /^HTTP\/1\.1 404 Not Found\r\n/);
    } finally {
      other.close();
    }
  } finally {
    await engine.close();
    // Closing the engine ends every held connection.
    assert.equal(await withDeadline(events.eof(), 5000, "EOF on /events"), true);
    assert.equal(await withDeadline(logs.eof(), 5000, "EOF on the logs stream"), true);
    events.close();
    logs.close();
  }
});
