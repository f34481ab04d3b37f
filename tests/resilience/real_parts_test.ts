/**
 * Resilience on real parts: a private `dockerd` restarted under karotten, the real RabbitMQ
 * bounced while containers log, a full buffer, a container whose logs can't be read, stopped
 * containers, and SIGTERM with lines still buffered.
 *
 * Each test has its own engine, exchange and daemon. Containers print numbered lines (`n 1`,
 * `n 2`, ...) so that a test can tell exactly which lines arrived. The daemon runs with `DEBUG=1`
 * where its Docker requests are checked: every `docker_get` must be a read of `/_ping`,
 * `/containers/...` or `/events`.
 */
import assert from "node:assert/strict";
// @ts-types="@types/amqplib"
import amqp from "amqplib";
import type { Tuning } from "../../lib/config.ts";
import { EXIT_OK } from "../../lib/exit_codes.ts";
import { waitFor, withDeadline } from "../helpers/deadline.ts";
import { assertOnlyReads, loggedRequests } from "../helpers/read_only.ts";
import { type EngineOptions, startEngine, TEST_IMAGE, type TestEngine } from "../helpers/engine.ts";
import { type Karotten, startKarotten, withLogTail } from "../helpers/karotten.ts";
import {
  type Binding,
  freshBinding,
  type FreshBindingOptions,
  RABBIT_URL,
  rabbitStartApp,
  rabbitStopApp,
  type Received,
} from "../helpers/rabbit.ts";

const START_TIMEOUT_MS = 20_000;
const DELIVERY_TIMEOUT_MS = 30_000;
/** Longest wait for karotten to exit after SIGTERM (its grace period is at most 5 s). */
const EXIT_TIMEOUT_MS = 15_000;

/** `sh` printing `n 1`, `n 2`, ... every `sleepS` seconds (after each `every` lines) until TERM. */
function ticker(sleepS: number, every = 1): string {
  return `trap "exit 0" TERM; i=1; while true; do echo "n $i"; ` +
    `if [ $((i % ${every})) -eq 0 ]; then sleep ${sleepS}; fi; i=$((i+1)); done`;
}

/** `sh` printing `n 1` … `n <count>` as fast as it can, then exiting. */
const burst = (count: number) => `i=1; while [ $i -le ${count} ]; do echo "n $i"; i=$((i+1)); done`;

const short = (id: string) => id.slice(0, 12);

const of = (binding: Binding, id: string): Received[] =>
  binding.messages.filter((m) => m.body.container_id === short(id));

/** The numbers of a container's `n <i>` messages, in order of arrival. */
const numbers = (binding: Binding, id: string): number[] =>
  of(binding, id).map((m) => Number(/^n (\d+)$/.exec(String(m.body.message))?.[1]));

/** The highest `n <i>` the container printed so far, from the engine's own log. */
async function printed(engine: TestEngine, id: string): Promise<number> {
  const last = await engine.docker("logs", "--tail", "1", id);
  return Number(/n (\d+)\s*$/.exec(last)?.[1] ?? 0);
}

const linesMatching = (k: Karotten, re: RegExp) => k.lines.filter((l) => re.test(l));

interface Ctx {
  engine: TestEngine;
  binding: Binding;
  k: Karotten;
}

interface Setup {
  tuning?: Partial<Tuning>;
  engine?: EngineOptions;
  binding?: FreshBindingOptions;
  /** Runs before karotten starts (containers present at start). */
  before?: (engine: TestEngine) => Promise<void>;
  /** The broker URL karotten gets. @default RABBIT_URL */
  rabbitUrl?: string;
  /** Log every Docker request and published message. @default true */
  debug?: boolean;
  /** `OVERFLOW`. @default the daemon's default (pause) */
  overflow?: "drop" | "pause";
}

/**
 * A private engine, a fresh exchange and karotten on them; `body` runs once karotten is ready.
 * Afterwards karotten is stopped (exit code 0 expected) and everything is cleaned up.
 */
async function withRealParts(setup: Setup, body: (ctx: Ctx) => Promise<void>): Promise<void> {
  const engine = await startEngine(setup.engine);
  let binding: Binding | undefined;
  let k: Karotten | undefined;
  let code: number | undefined;
  try {
    await setup.before?.(engine);
    binding = await freshBinding(setup.binding);
    k = await startKarotten({
      RABBITMQ_URL: setup.rabbitUrl ?? RABBIT_URL,
      DOCKER_SOCK: engine.sock,
      EXCHANGE: binding.exchange,
      DEBUG: setup.debug === false ? "0" : "1",
      KAROTTEN_TUNING: JSON.stringify(setup.tuning ?? {}),
      ...(setup.overflow === undefined ? {} : { OVERFLOW: setup.overflow }),
    });
    await k.waitForLog(/ info ready /, START_TIMEOUT_MS);
    await k.waitForLog(/ info amqp_connected /, START_TIMEOUT_MS);
    await body({ engine, binding, k }).catch((err) => {
      throw withLogTail(err, k!);
    });
  } finally {
    if (k !== undefined) code = await k.stop();
    try {
      await binding?.close();
    } finally {
      await engine.stop();
    }
  }
  assert.equal(code, EXIT_OK, "karotten's exit code on SIGTERM");
  if (setup.debug !== false) assertOnlyReads(loggedRequests(k!.lines));
}

/**
 * Every `amqp_reconnect attempt=N wait_ms=W` the daemon logged waited a jittered share of the
 * capped exponential delay: `W` in [½, 1] × min(max, initial × 2^(N-1)).
 */
function assertReconnectBackoff(k: Karotten, initialMs: number, maxMs: number): void {
  const waits = linesMatching(k, / warn amqp_reconnect /).map((l) => ({
    attempt: Number(/ attempt=(\d+)/.exec(l)?.[1]),
    waitMs: Number(/ wait_ms=(\d+)/.exec(l)?.[1]),
  }));
  assert.ok(waits.length >= 2, `only ${waits.length} reconnect attempts logged`);
  for (const { attempt, waitMs } of waits) {
    const nominal = Math.min(maxMs, initialMs * 2 ** (attempt - 1));
    assert.ok(
      waitMs >= Math.floor(nominal / 2) && waitMs <= nominal,
      `attempt ${attempt} waited ${waitMs} ms, outside [${nominal / 2}, ${nominal}]`,
    );
  }
}

/** Asserts that `ns` is exactly `from`, `from + 1`, ... (no gap, no duplicate). */
function assertConsecutive(ns: readonly number[], from: number, what: string): void {
  const bad = ns.findIndex((n, i) => n !== from + i);
  assert.equal(
    bad,
    -1,
    `${what}: at index ${bad} got ${ns[bad]}, expected ${from + bad} (around: ${
      ns.slice(Math.max(0, bad - 3), bad + 4).join(",")
    })`,
  );
}

// ---------------------------------------------------------------------------------------------

Deno.test("real engine restarted, its containers running on (dockerd --live-restore, Podman): karotten reconnects events and logs, keeps delivering, does not exit", async () => {
  await withRealParts(
    { engine: { liveRestore: true }, tuning: { reattachBackoffMaxMs: 1_000 } },
    async ({ engine, binding, k }) => {
      let exited = false;
      k.exited.then(() => {
        exited = true;
      });
      const id = await engine.run("--name", "restart-ticker", TEST_IMAGE, "sh", "-c", ticker(0.02));
      await waitFor(() => of(binding, id).length >= 20, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "20 lines before the restart",
      });
      const connectsBefore = linesMatching(k, / info events_connected/).length;
      const attachesBefore = linesMatching(k, new RegExp(` info attached id=${short(id)} `)).length;

      await engine.restart();
      const afterRestart = await printed(engine, id);
      await waitFor(() => numbers(binding, id).some((n) => n >= afterRestart + 50), {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: `line ${afterRestart + 50}, printed after the restart`,
      });

      assert.equal(exited, false, "karotten exited");
      assert.ok(
        linesMatching(k, / info events_connected/).length > connectsBefore,
        "the events stream was reconnected",
      );
      assert.ok(
        linesMatching(k, new RegExp(` info attached id=${short(id)} `)).length > attachesBefore,
        "the logs stream was re-attached",
      );
      const running = JSON.parse(await engine.docker("inspect", id))[0].State.Running;
      assert.equal(running, true, "the container outlived the restart");
      assertConsecutive(numbers(binding, id), 1, "lines across the restart");
      await engine.docker("stop", "-t", "5", id);
      await k.waitForLog(new RegExp(` info detached id=${short(id)} reason=stopped`), 10_000);
      assert.equal(exited, false, "karotten exited");
    },
  );
});

Deno.test("real RabbitMQ bounced while a container logs: karotten reconnects and delivers what it buffered", async () => {
  await withRealParts(
    {
      binding: { durableExchange: true },
      tuning: { amqpBackoffInitialMs: 100, amqpBackoffMaxMs: 1_000 },
    },
    async ({ engine, binding, k }) => {
      const id = await engine.run("--name", "bounce-ticker", TEST_IMAGE, "sh", "-c", ticker(0.02));
      await waitFor(() => of(binding, id).length >= 20, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "20 lines before the bounce",
      });
      let outage: { from: number; to: number } | undefined;
      try {
        await rabbitStopApp();
        await k.waitForLog(/ warn amqp_disconnected /, DELIVERY_TIMEOUT_MS);
        const from = await printed(engine, id);
        // Buffer a good number of lines while the broker is away.
        await waitFor(async () => await printed(engine, id) >= from + 100, {
          timeoutMs: DELIVERY_TIMEOUT_MS,
          what: "100 lines printed while the broker is down",
        });
        outage = { from, to: await printed(engine, id) };
      } finally {
        await rabbitStartApp(); // always: the broker is shared
      }
      await waitFor(() => linesMatching(k, / info amqp_connected /).length >= 2, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "amqp_connected after the bounce",
      });
      const through = outage.to + 50;
      await waitFor(() => new Set(numbers(binding, id)).size >= through, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: `every line up to ${through}`,
      });
      const got = new Set(numbers(binding, id));
      const missing = Array.from({ length: through }, (_, i) => i + 1).filter((n) => !got.has(n));
      assert.deepEqual(missing, [], "lines lost across the bounce");
      assert.equal(linesMatching(k, / warn dropped /).length, 0, "nothing dropped");
      assertReconnectBackoff(k, 100, 1_000);
    },
  );
});

Deno.test("exchange deleted under karotten: it re-checks the exchange on every reconnect and delivers once it is back", async () => {
  await withRealParts(
    {
      binding: { durableExchange: true },
      tuning: { amqpBackoffInitialMs: 100, amqpBackoffMaxMs: 500 },
    },
    async ({ engine, binding, k }) => {
      const id = await engine.run(
        "--name",
        "exchange-ticker",
        TEST_IMAGE,
        "sh",
        "-c",
        ticker(0.02),
      );
      await waitFor(() => of(binding, id).length >= 20, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "20 lines before the exchange is deleted",
      });
      const admin = await amqp.connect(RABBIT_URL);
      try {
        const ch = await admin.createChannel();
        await ch.deleteExchange(binding.exchange);
        // The next publish closes karotten's channel; each reconnect finds no exchange.
        await waitFor(() => linesMatching(k, / error exchange_missing /).length >= 2, {
          timeoutMs: DELIVERY_TIMEOUT_MS,
          what: "two failed passive checks of the deleted exchange",
        });
        await ch.assertExchange(binding.exchange, "topic", { durable: true, autoDelete: false });
        await ch.bindQueue(binding.queue, binding.exchange, "#");
        await ch.close();
      } finally {
        await admin.close();
      }
      const back = await printed(engine, id);
      const through = back + 50;
      await waitFor(() => new Set(numbers(binding, id)).size >= through, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: `every line up to ${through}`,
      });
      const got = new Set(numbers(binding, id));
      const missing = Array.from({ length: through }, (_, i) => i + 1).filter((n) => !got.has(n));
      assert.deepEqual(missing, [], "lines lost while the exchange was missing");
      assertReconnectBackoff(k, 100, 500);
    },
  );
});

Deno.test("real RabbitMQ away with more lines than queueCapacity, OVERFLOW=drop: the logged drop count equals the lines that never arrived", async () => {
  const queueCapacity = 500;
  await withRealParts(
    {
      overflow: "drop",
      binding: { durableExchange: true },
      tuning: {
        queueCapacity,
        publishWindow: 256,
        dropReportIntervalMs: 200,
        amqpBackoffInitialMs: 100,
        amqpBackoffMaxMs: 1_000,
      },
    },
    async ({ engine, binding, k }) => {
      // About 1000 lines a second.
      const id = await engine.run("--name", "flood", TEST_IMAGE, "sh", "-c", ticker(0.05, 50));
      await waitFor(() => of(binding, id).length >= 50, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "50 lines before the outage",
      });
      try {
        await rabbitStopApp();
        await k.waitForLog(/ warn amqp_disconnected /, DELIVERY_TIMEOUT_MS);
        const from = await printed(engine, id);
        await waitFor(async () => await printed(engine, id) >= from + 4 * queueCapacity, {
          timeoutMs: DELIVERY_TIMEOUT_MS,
          what: `${4 * queueCapacity} lines printed while the broker is down`,
        });
        await k.waitForLog(/ warn dropped /, DELIVERY_TIMEOUT_MS);
      } finally {
        await rabbitStartApp(); // always: the broker is shared
      }
      // Delivering again: a line printed after the reconnect arrives. Then stop the container.
      await waitFor(() => linesMatching(k, / info amqp_connected /).length >= 2, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "amqp_connected after the outage",
      });
      const reconnected = await printed(engine, id);
      await waitFor(() => numbers(binding, id).some((n) => n > reconnected), {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: `a line after ${reconnected}, printed once the broker was back`,
      });
      await engine.docker("stop", "-t", "5", id);
      await k.waitForLog(new RegExp(` info detached id=${short(id)} reason=stopped`), 15_000);
      const total = await printed(engine, id);
      // SIGTERM: karotten publishes what it holds and reports the drops not yet reported.
      assert.equal(await k.stop(), EXIT_OK);
      const dropped = () =>
        linesMatching(k, / warn dropped /)
          .map((l) => Number(/ lines=(\d+)/.exec(l)?.[1]))
          .reduce((a, b) => a + b, 0);
      const arrived = () => new Set(numbers(binding, id)).size;
      await waitFor(() => arrived() + dropped() >= total, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: `arrived + dropped to reach the ${total} lines printed`,
      }).catch((err) => {
        throw new Error(
          `${(err as Error).message}: ${arrived()} arrived, ${dropped()} reported dropped`,
          { cause: err },
        );
      });
      assert.ok(dropped() > 0, "the outage dropped lines");
      assert.equal(total - arrived(), dropped(), "lines that never arrived = drop count logged");
      assert.ok(numbers(binding, id).every((n) => n >= 1 && n <= total), "no unknown line");
    },
  );
});

Deno.test("a container with --log-driver none: one warning, no retry loop, the others unaffected", async () => {
  const reconcileIntervalMs = 100;
  let early = "";
  await withRealParts(
    {
      tuning: { reconcileIntervalMs },
      before: async (engine) => {
        early = await engine.run(
          "--log-driver",
          "none",
          "--name",
          "mute-early",
          TEST_IMAGE,
          "sh",
          "-c",
          ticker(0.1),
        );
      },
    },
    async ({ engine, binding, k }) => {
      const late = await engine.run(
        "--log-driver",
        "none",
        "--name",
        "mute-late",
        TEST_IMAGE,
        "sh",
        "-c",
        ticker(0.1),
      );
      const loud = await engine.run("--name", "loud", TEST_IMAGE, "sh", "-c", burst(50));
      await waitFor(() => of(binding, loud).length >= 50, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "the 50 lines of the container with a readable log",
      });
      for (const id of [early, late]) {
        await k.waitForLog(
          new RegExp(` warn logs_unavailable id=${short(id)} `),
          DELIVERY_TIMEOUT_MS,
        );
      }
      const listings = () => linesMatching(k, / docker_get path=\/containers\/json$/).length;
      const before = listings();
      await waitFor(() => listings() >= before + 20, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "20 more reconcile rounds",
      });
      for (const id of [early, late]) {
        const warnings = linesMatching(k, new RegExp(` warn logs_unavailable id=${short(id)} `));
        assert.equal(warnings.length, 1, warnings.join("\n"));
        // The engine's own answer: dockerd's 501 "does not support reading", Podman's 500
        // "... 'none' log driver, cannot read logs".
        assert.match(warnings[0], / status=50[01] /);
        assert.match(warnings[0], /does not support reading|'none' log driver, cannot read logs/);
        const logsGets = linesMatching(k, new RegExp(`docker_get path=.*/containers/${id}/logs`));
        assert.equal(logsGets.length, 1, `logs requests for ${short(id)}`);
      }
      assertConsecutive(numbers(binding, loud), 1, "the readable container's lines");
      assert.equal(linesMatching(k, / error /).length, 0, "no error lines");
    },
  );
});

Deno.test("stopped containers present at start: no request for them, and karotten's log stays quiet", async () => {
  const reconcileIntervalMs = 100;
  const stopped: { id: string; name: string }[] = [];
  await withRealParts(
    {
      tuning: { reconcileIntervalMs },
      before: async (engine) => {
        const exited = await engine.run(
          "--name",
          "exited-before",
          TEST_IMAGE,
          "sh",
          "-c",
          "echo bye",
        );
        await engine.docker("wait", exited);
        stopped.push({ id: exited, name: "exited-before" });
        const created = await engine.docker(
          "create",
          "--name",
          "never-started",
          TEST_IMAGE,
          "sh",
          "-c",
          "echo hi",
        );
        stopped.push({ id: created.trim().split("\n").at(-1)!, name: "never-started" });
      },
    },
    async ({ k }) => {
      const listings = () => linesMatching(k, / docker_get path=\/containers\/json$/).length;
      const readyAt = listings();
      // 30 reconcile rounds (3 s), each listing the running containers.
      await waitFor(() => listings() >= readyAt + 30, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: "30 reconcile rounds",
      });
      for (const c of stopped) {
        assert.match(c.id, /^[0-9a-f]{64}$/);
        const mentions = k.lines.filter((l) => l.includes(short(c.id)) || l.includes(c.name));
        assert.deepEqual(mentions, [], `lines mentioning ${c.name}`);
      }
      assert.deepEqual(linesMatching(k, / docker_get path=.*\/logs/), [], "logs requests");
      assert.deepEqual(linesMatching(k, / (warn|error) /), [], "warnings or errors");
    },
  );
});

/** Runs `body` with a `PausableProxy` in front of the broker, and closes it. */
async function withProxy(body: (proxy: PausableProxy) => Promise<void>): Promise<void> {
  const proxy = PausableProxy.start(brokerAddress());
  try {
    await body(proxy);
  } finally {
    await proxy.close();
  }
}

Deno.test("SIGTERM with lines buffered: they reach the broker, and karotten exits 0 within shutdownGraceMs", async () => {
  const lines = 3_000;
  const shutdownGraceMs = 5_000;
  await withProxy((proxy) =>
    withRealParts(
      { rabbitUrl: proxy.url, tuning: { shutdownGraceMs } },
      async ({ engine, binding, k }) => {
        // Publishing stalls: what karotten sends the broker is held, no confirm can come.
        proxy.pause();
        const id = await engine.run("--name", "term-burst", TEST_IMAGE, "sh", "-c", burst(lines));
        await k.waitForLog(
          new RegExp(` info detached id=${short(id)} reason=stopped`),
          DELIVERY_TIMEOUT_MS,
        );
        assert.equal(of(binding, id).length, 0, "lines got past the paused proxy");
        const sent = performance.now();
        k.kill("SIGTERM");
        await k.waitForLog(/ info stopping signal=SIGTERM/, shutdownGraceMs);
        proxy.resume();
        const code = await withDeadline(k.exited, EXIT_TIMEOUT_MS, "karotten to exit");
        const tookMs = performance.now() - sent;
        assert.equal(code, EXIT_OK);
        assert.ok(tookMs < shutdownGraceMs, `exited ${Math.round(tookMs)} ms after SIGTERM`);
        assert.deepEqual(linesMatching(k, / warn (shutdown_unpublished|amqp_drain_timeout) /), []);
        await binding.waitForCount(lines, DELIVERY_TIMEOUT_MS);
        assertConsecutive(numbers(binding, id), 1, "lines buffered at SIGTERM");
      },
    )
  );
});

Deno.test("SIGTERM while the broker can't be reached: karotten gives up after shutdownGraceMs and exits 0", async () => {
  const shutdownGraceMs = 1_000;
  await withProxy((proxy) =>
    withRealParts(
      { rabbitUrl: proxy.url, tuning: { shutdownGraceMs } },
      async ({ engine, k }) => {
        proxy.pause();
        const id = await engine.run("--name", "term-stuck", TEST_IMAGE, "sh", "-c", burst(1_000));
        await k.waitForLog(
          new RegExp(` info detached id=${short(id)} reason=stopped`),
          DELIVERY_TIMEOUT_MS,
        );
        const sent = performance.now();
        k.kill("SIGTERM");
        const code = await withDeadline(k.exited, EXIT_TIMEOUT_MS, "karotten to exit");
        const tookMs = performance.now() - sent;
        assert.equal(code, EXIT_OK);
        // The grace period, then at most CLOSE_TIMEOUT_MS (1 s) to close the AMQP connection.
        assert.ok(
          tookMs < shutdownGraceMs + 1_500,
          `exited ${Math.round(tookMs)} ms after SIGTERM`,
        );
        const left = linesMatching(k, / warn shutdown_unpublished lines=\d+/);
        assert.equal(left.length, 1, "one shutdown_unpublished warning");
        assert.ok(Number(/lines=(\d+)/.exec(left[0])?.[1]) > 0);
      },
    )
  );
});

// ---------------------------------------------------------------------------------------------
// A TCP proxy in front of the broker whose client-to-broker direction can be paused

/** Host and port of `RABBIT_URL`. */
function brokerAddress(): { hostname: string; port: number } {
  const url = new URL(RABBIT_URL);
  return { hostname: url.hostname, port: url.port === "" ? 5672 : Number(url.port) };
}

/** Errors that only mean that one side of a proxied connection went away. */
function isDisconnect(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.NotConnected;
}

/** Forwards TCP connections to the broker; `pause()` holds what clients send to it. */
class PausableProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  #gate: PromiseWithResolvers<void> | undefined;
  #accepting: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(listener: Deno.TcpListener, target: { hostname: string; port: number }) {
    this.#listener = listener;
    this.#target = target;
  }

  static start(target: { hostname: string; port: number }): PausableProxy {
    const proxy = new PausableProxy(Deno.listen({ hostname: "127.0.0.1", port: 0 }), target);
    proxy.#accepting = proxy.#accept();
    return proxy;
  }

  /** `RABBIT_URL` with the proxy's address. */
  get url(): string {
    const url = new URL(RABBIT_URL);
    url.hostname = "127.0.0.1";
    url.port = String(this.#listener.addr.port);
    return url.toString();
  }

  /** Stops forwarding what clients send (what the broker sends still flows). */
  pause(): void {
    this.#gate ??= Promise.withResolvers<void>();
  }

  /** Forwards again, what was held first. */
  resume(): void {
    this.#gate?.resolve();
    this.#gate = undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.resume();
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) conn.close();
    this.#conns.clear();
    await Promise.all(this.#tasks);
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const task = this.#serve(client).finally(() => this.#tasks.delete(task));
        this.#tasks.add(task);
      }
    } catch (err) {
      if (!this.#closed) throw err;
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    const broker = await Deno.connect(this.#target);
    this.#conns.add(broker);
    const end = () => {
      for (const c of [client, broker]) {
        if (this.#conns.delete(c)) c.close();
      }
    };
    await Promise.all([
      this.#pipe(client, broker, true).finally(end),
      this.#pipe(broker, client, false).finally(end),
    ]);
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, gated: boolean): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) return;
        if (gated) {
          while (this.#gate !== undefined) await this.#gate.promise;
        }
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch (err) {
      if (!isDisconnect(err)) throw err;
    }
  }
}
