/**
 * `/metrics` and `/healthz` scraped over HTTP from the running daemon (real dockerd, the real
 * broker) through a broker bounce and an engine restart: `/healthz` goes 503 then 200 each time,
 * and no counter ever goes down.
 */
import assert from "node:assert/strict";
import { delay } from "../../lib/async/delay.ts";
import { startEngine, TEST_IMAGE } from "../helpers/engine.ts";
import { freshBinding, RABBIT_URL, rabbitStartApp, rabbitStopApp } from "../helpers/rabbit.ts";
import { startKarotten, withLogTail } from "../helpers/karotten.ts";
import { waitFor } from "../helpers/deadline.ts";

const TIMEOUT_MS = 40_000;
/** Time between two scrapes of the background scraper. */
const SCRAPE_INTERVAL_MS = 25;
const QUEUE_CAPACITY = 200;

/** `name{labels}` → value, from a Prometheus text exposition. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    samples.set(m[1], Number(m[2]));
  }
  return samples;
}

interface Scrape {
  at: number;
  health: number;
  healthBody: { status: string; reason?: string; engine: string; broker: string };
  metrics: Map<string, number>;
}

/** Scrapes both endpoints until stopped; checks on every scrape that no counter went down. */
class Scraper {
  readonly scrapes: Scrape[] = [];
  readonly #stop = new AbortController();
  readonly #done: Promise<void>;
  readonly #base: string;
  readonly #counters = new Map<string, number>();

  constructor(base: string) {
    this.#base = base;
    this.#done = this.#loop();
  }

  get last(): Scrape | undefined {
    return this.scrapes.at(-1);
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#done;
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const [metricsRes, healthRes] = await Promise.all([
        fetch(`${this.#base}/metrics`),
        fetch(`${this.#base}/healthz`),
      ]);
      assert.equal(metricsRes.status, 200);
      assert.match(metricsRes.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const metrics = parseExposition(await metricsRes.text());
      const healthBody = await healthRes.json();
      for (const [key, value] of metrics) {
        if (!/^karotten_[a-z_]+_total[{ ]?/.test(key + " ")) continue;
        const before = this.#counters.get(key) ?? 0;
        // A per-container series may vanish with its container; while it exists it only grows.
        assert.ok(value >= before, `${key} went down from ${before} to ${value}`);
        this.#counters.set(key, value);
      }
      this.scrapes.push({ at: performance.now(), health: healthRes.status, healthBody, metrics });
      try {
        await delay(SCRAPE_INTERVAL_MS, { signal });
      } catch {
        return;
      }
    }
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("METRICS_ADDR serves /metrics and /healthz through a broker bounce and an engine restart", async () => {
  const engine = await startEngine({ liveRestore: true });
  const binding = await freshBinding({ durableExchange: true });
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    METRICS_ADDR: `127.0.0.1:${port}`,
    // Drop mode, so that the outage also shows the drop counter moving.
    OVERFLOW: "drop",
    KAROTTEN_TUNING: JSON.stringify({
      queueCapacity: QUEUE_CAPACITY,
      pingIntervalMs: 100,
      pingFailuresToExit: 1_000_000,
      amqpBackoffInitialMs: 100,
      amqpBackoffMaxMs: 1_000,
      reattachBackoffMaxMs: 1_000,
    }),
  });
  let scraper: Scraper | undefined;
  try {
    await k.waitForLog(/ info metrics_listening addr=127\.0\.0\.1:\d+/, TIMEOUT_MS);
    await k.waitForLog(/ info ready /, TIMEOUT_MS);
    const ticker = await engine.run(
      "--name",
      "ticker-1",
      "--label",
      "com.docker.compose.project=shop",
      "--label",
      "com.docker.compose.service=ticker",
      TEST_IMAGE,
      "sh",
      "-c",
      'trap "exit 0" TERM; i=1; while true; do echo "tick $i"; i=$((i+1)); sleep 0.01; done',
    );
    scraper = new Scraper(base);
    const s = scraper;
    const series = 'karotten_container_lines_read_total{project="shop",service="ticker",' +
      'container="ticker-1",stream="stdout"}';
    const metric = (name: string) => s.last?.metrics.get(name) ?? NaN;
    await waitFor(
      () =>
        s.last?.health === 200 && metric(series) > 0 &&
        metric("karotten_messages_confirmed_total") > 0,
      { timeoutMs: TIMEOUT_MS, what: "healthy, and the ticker's lines counted and confirmed" },
    );
    assert.equal(metric("karotten_engine_up"), 1);
    assert.equal(metric("karotten_broker_connected"), 1);
    assert.equal(metric("karotten_containers_attached"), 1);
    assert.equal(metric("karotten_buffer_capacity_messages"), QUEUE_CAPACITY);
    assert.equal(metric('karotten_build_info{version="0.2.0"}'), 1);
    // The process's memory, read at the scrape: resident memory holds the heap in use.
    const rss = metric("process_resident_memory_bytes");
    const heapUsed = metric("karotten_js_heap_used_bytes");
    assert.ok(heapUsed > 0 && heapUsed <= metric("karotten_js_heap_total_bytes"));
    assert.ok(rss > metric("karotten_js_heap_total_bytes"), `RSS ${rss}`);
    assert.ok(metric("karotten_js_external_memory_bytes") > 0);

    // Broker away: the buffer fills to 90 %, then /healthz says 503 and why.
    const bounceFrom = s.scrapes.length;
    try {
      await rabbitStopApp();
      await waitFor(() => s.last?.health === 503, {
        timeoutMs: TIMEOUT_MS,
        what: "/healthz 503 while the broker is away and the buffer fills",
      });
      assert.equal(s.last!.healthBody.broker, "disconnected");
      assert.match(s.last!.healthBody.reason ?? "", /^broker disconnected and buffer \d+ % full$/);
      assert.equal(metric("karotten_broker_connected"), 0);
    } finally {
      await rabbitStartApp();
    }
    await waitFor(() => s.last?.health === 200 && metric("karotten_broker_connected") === 1, {
      timeoutMs: TIMEOUT_MS,
      what: "/healthz 200 once the broker is back",
    });
    assert.ok(metric("karotten_broker_reconnects_total") >= 1);
    assert.ok(metric('karotten_lines_dropped_total{cause="full"}') > 0, "the full buffer dropped");
    assert.ok(
      s.scrapes.slice(bounceFrom).some((x) =>
        x.health === 200 && x.healthBody.broker === "disconnected"
      ),
      "the buffer absorbed the start of the outage: 200 while disconnected and below 90 %",
    );

    // Engine restart (containers keep running): pings fail, 503, then 200 again.
    const restartFrom = s.scrapes.length;
    // The engine stays down until the scrapes saw it: a quick restart is over in a fraction of
    // a second, quicker than a scrape on a loaded machine.
    await engine.restart(async () => {
      await waitFor(() => s.last?.health === 503 && s.last.healthBody.engine === "down", {
        timeoutMs: TIMEOUT_MS,
        what: "/healthz 503 while the engine restarts",
      });
      assert.equal(s.last!.healthBody.reason, "docker engine does not answer pings");
    });
    await waitFor(() => s.last?.health === 200 && metric("karotten_engine_up") === 1, {
      timeoutMs: TIMEOUT_MS,
      what: "/healthz 200 once the engine is back",
    });
    const confirmedAfterRestart = metric("karotten_messages_confirmed_total");
    await waitFor(() => metric("karotten_messages_confirmed_total") > confirmedAfterRestart + 50, {
      timeoutMs: TIMEOUT_MS,
      what: "lines still shipped after the engine restart",
    });
    assert.ok(s.scrapes.slice(restartFrom).some((x) => x.metrics.get("karotten_engine_up") === 0));

    // The container goes: its series go with it.
    await engine.docker("rm", "-f", ticker);
    await waitFor(() => !s.last?.metrics.has(series), {
      timeoutMs: TIMEOUT_MS,
      what: "the ticker's series removed",
    });
    assert.equal(metric("karotten_containers_attached"), 0);

    const other = await fetch(`${base}/nope`);
    assert.equal(other.status, 404);
    await other.body?.cancel();
    const post = await fetch(`${base}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } catch (err) {
    throw withLogTail(err, k);
  } finally {
    await scraper?.stop();
    const code = await k.stop();
    await binding.close();
    await engine.stop();
    assert.equal(code, 0, "exit code on SIGTERM");
  }
});
