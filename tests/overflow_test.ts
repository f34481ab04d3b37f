/**
 * The full buffer on real parts: with the defaults nothing is lost (`OVERFLOW=pause`), the
 * buffer stays bounded in bytes, a bursting container does not hold back a quiet one, a
 * container that stops while karotten is paused is read to its last line, and `OVERFLOW=drop`
 * counts every line it drops against its container. Numbered lines, checked for gaps and
 * duplicates.
 */
import assert from "node:assert/strict";
import { startEngine, TEST_IMAGE, type TestEngine } from "./helpers/engine.ts";
import {
  type Binding,
  freshBinding,
  RABBIT_URL,
  rabbitStartApp,
  rabbitStopApp,
  type Received,
} from "./helpers/rabbit.ts";
import { type Karotten, startKarotten, withLogTail } from "./helpers/karotten.ts";
import { waitFor } from "./helpers/deadline.ts";
import { DEFAULT_PAUSE_BUFFER_BYTES, DEFAULT_TUNING } from "../lib/config.ts";

const TIMEOUT_MS = 60_000;
/** The grace after a `die` event in the test of a container stopping while paused. */
const DIE_GRACE_MS = 1_000;
/** A burst gets this long to arrive. */
const BURST_TIMEOUT_MS = 480_000;

const of = (msgs: Received[], id: string) =>
  msgs.filter((m) => m.body.container_id === id.slice(0, 12));

/** The numbers of `<word> N ...` messages, in arrival order. */
const numbers = (msgs: Received[]) => msgs.map((m) => Number(String(m.body.message).split(" ")[1]));

/**
 * Per container: the messages and the distinct numbers received so far, brought up to date
 * from the binding's new messages on each call (cheap enough to poll beside 200,000 messages).
 */
class Tally {
  readonly #binding: Binding;
  #read = 0;
  readonly #byContainer = new Map<string, { messages: number; numbers: Set<number> }>();

  constructor(binding: Binding) {
    this.#binding = binding;
  }

  /** Distinct numbers received from container `id`. */
  distinct(id: string): number {
    return this.#of(id)?.numbers.size ?? 0;
  }

  /** Messages received from container `id`, repeats included. */
  messages(id: string): number {
    return this.#of(id)?.messages ?? 0;
  }

  /** Waits until `n` distinct numbers of `id` arrived; the error says how many did. */
  async waitFor(id: string, n: number, timeoutMs: number): Promise<void> {
    await waitFor(() => this.distinct(id) >= n, {
      timeoutMs,
      intervalMs: 100,
      what: `${n} lines of ${id.slice(0, 12)}`,
    }).catch((err) => {
      throw new Error(`${err.message} (have ${this.distinct(id)})`, { cause: err });
    });
  }

  #of(id: string) {
    const msgs = this.#binding.messages;
    for (; this.#read < msgs.length; this.#read++) {
      const m = msgs[this.#read];
      const key = String(m.body.container_id);
      let c = this.#byContainer.get(key);
      if (c === undefined) this.#byContainer.set(key, c = { messages: 0, numbers: new Set() });
      c.messages++;
      c.numbers.add(Number(String(m.body.message).split(" ")[1]));
    }
    return this.#byContainer.get(id.slice(0, 12));
  }
}

/** Asserts that exactly 1..n arrived; returns how many arrived more than once. */
function assertAll(nums: number[], n: number, what: string): number {
  const seen = new Set(nums);
  const missing = [];
  for (let i = 1; i <= n; i++) if (!seen.has(i)) missing.push(i);
  assert.deepEqual(missing.slice(0, 20), [], `${what}: ${missing.length} of ${n} lines lost`);
  assert.equal(seen.size, n, `${what}: numbers beyond ${n} arrived`);
  return nums.length - seen.size;
}

/** Prints `n` numbered lines (`<word> 1`, …) as fast as the container can. */
const burst = (n: number, word = "n") => `seq 1 ${n} | sed 's/^/${word} /'`;

/**
 * Prints `perTick` numbered lines every `tickMs` until `n` are out (or SIGTERM). The wait is a
 * `read` with a timeout on a fifo nobody writes: a builtin, no process per tick.
 */
const paced = (n: number, perTick: number, tickMs: number, word = "n") =>
  `trap "exit 0" TERM; mkfifo /tmp/tick; exec 3<>/tmp/tick; i=1; ` +
  `while [ $i -le ${n} ]; do j=0; ` +
  `while [ $j -lt ${perTick} ] && [ $i -le ${n} ]; do echo "${word} $i"; ` +
  `i=$((i+1)); j=$((j+1)); done; read -t ${tickMs / 1000} -u 3 _; done`;

/** Numbered lines of `bytes` bytes each (newline excluded): `n <i> xxx…`. */
const bigLines = (n: number, bytes: number) =>
  `i=1; while [ $i -le ${n} ]; do p="n $i "; printf '%s' "$p"; ` +
  `head -c $((${bytes} - \${#p})) /dev/zero | tr '\\0' x; echo; i=$((i+1)); done`;

function env(binding: Binding, engine: TestEngine, extra: Record<string, string> = {}) {
  return {
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    ...extra,
  };
}

/** The most memory the process ever held resident (`VmHWM`), bytes. */
function residentHighWater(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`Cannot read VmHWM of pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Per container (12-char id): lines reported dropped so far, from `dropped_container` lines. */
function droppedByContainer(k: Karotten): Map<string, { full: number; blocked: number }> {
  const counts = new Map<string, { full: number; blocked: number }>();
  for (const line of k.lines) {
    const m = / warn dropped_container id=([0-9a-f]{12}) lines=\d+ full=(\d+) blocked=(\d+)/
      .exec(line);
    if (!m) continue;
    const c = counts.get(m[1]) ?? { full: 0, blocked: 0 };
    c.full += Number(m[2]);
    c.blocked += Number(m[3]);
    counts.set(m[1], c);
  }
  return counts;
}

/** Lines counted as dropped, whatever the cause. */
const counted = (c: { full: number; blocked: number } | undefined) =>
  c === undefined ? 0 : c.full + c.blocked;

/** The nearest-rank percentile `p` (0–100) of `values`. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Runs `body` with a started, ready and connected karotten; stops it (exit 0) afterwards. */
async function withKarotten(
  vars: Record<string, string>,
  body: (k: Karotten) => Promise<void>,
): Promise<void> {
  const k = await startKarotten(vars);
  try {
    await k.waitForLog(/ info ready /, TIMEOUT_MS);
    await k.waitForLog(/ info amqp_connected /, TIMEOUT_MS);
    await body(k).catch((err) => {
      throw withLogTail(err, k);
    });
  } finally {
    assert.equal(await k.stop(), 0, "karotten exits 0");
  }
}

Deno.test("the full buffer: lossless by default, fair, bounded in bytes", async (t) => {
  const engine = await startEngine();
  try {
    await t.step("defaults: 200000 lines printed at once all arrive, once", async () => {
      const binding = await freshBinding();
      try {
        await withKarotten(env(binding, engine), async (k) => {
          const total = 200_000;
          const tally = new Tally(binding);
          const id = await engine.run(TEST_IMAGE, "sh", "-c", burst(total));
          await tally.waitFor(id, total, BURST_TIMEOUT_MS);
          await k.waitForLog(new RegExp(`detached id=${id.slice(0, 12)} `), TIMEOUT_MS);
          assert.equal(assertAll(numbers(of(binding.messages, id)), total, "defaults"), 0, "dup");
          assert.ok(!k.lines.some((l) => / warn dropped /.test(l)), "nothing dropped");
        });
      } finally {
        await binding.close();
      }
    });

    await t.step("broker stopped 30 s under 200 lines/s: every line arrives after", async () => {
      const binding = await freshBinding({ durableExchange: true });
      try {
        // A buffer smaller than what 30 s of lines need, so that reading really pauses.
        const vars = env(binding, engine, {
          KAROTTEN_TUNING: JSON.stringify({
            queueCapacity: 2000,
            amqpBackoffInitialMs: 100,
            amqpBackoffMaxMs: 1000,
          }),
        });
        await withKarotten(vars, async (k) => {
          const total = 10_000; // 50 s at 200 lines/s
          const tally = new Tally(binding);
          const id = await engine.run(TEST_IMAGE, "sh", "-c", paced(total, 20, 100));
          await tally.waitFor(id, 200, TIMEOUT_MS);
          const seen = k.lines.length;
          await rabbitStopApp();
          try {
            await k.waitForLog(/ amqp_disconnected /, TIMEOUT_MS);
            // The broker stays away 30 s; the container writes meanwhile.
            const downUntil = Date.now() + 30_000;
            await waitFor(() => Date.now() >= downUntil, {
              timeoutMs: 40_000,
              intervalMs: 500,
              what: "30 s with the broker stopped",
            });
            assert.ok(
              !k.lines.slice(seen).some((l) => / warn dropped /.test(l)),
              "nothing dropped while the broker was away",
            );
          } finally {
            await rabbitStartApp();
          }
          await engine.docker("wait", id);
          await tally.waitFor(id, total, BURST_TIMEOUT_MS);
          const msgs = of(binding.messages, id);
          const dups = assertAll(numbers(msgs), total, "broker stopped");
          // A message whose confirm the stopping broker never sent is published again, with
          // the same message id: a consumer that drops repeated ids sees each line once.
          assert.equal(new Set(msgs.map((m) => m.messageId)).size, total, "distinct ids");
          assert.ok(dups <= DEFAULT_TUNING.publishWindow, `${dups} repeats`);
          console.log(`broker stopped 30 s: ${total} delivered, ${dups} repeated (same id)`);
        });
      } finally {
        await binding.close();
      }
    });

    await t.step(
      "noisy neighbour: a 100000-line burst does not hold back a quiet one",
      async () => {
        const binding = await freshBinding();
        try {
          await withKarotten(env(binding, engine), async (k) => {
            const tally = new Tally(binding);
            const quiet = await engine.run(TEST_IMAGE, "sh", "-c", paced(1_000_000, 1, 10, "q"));
            await tally.waitFor(quiet, 20, TIMEOUT_MS);
            const total = 100_000;
            const noisy = await engine.run(TEST_IMAGE, "sh", "-c", burst(total));
            await tally.waitFor(noisy, total, BURST_TIMEOUT_MS);
            await engine.docker("stop", "-t", "5", quiet);
            const written = (await engine.docker("logs", quiet)).split("\n")
              .filter((l) => l.startsWith("q ")).length;
            await tally.waitFor(quiet, written, TIMEOUT_MS);
            await k.waitForLog(new RegExp(`detached id=${quiet.slice(0, 12)} `), TIMEOUT_MS);
            const noisyMsgs = of(binding.messages, noisy);
            assert.equal(assertAll(numbers(noisyMsgs), total, "noisy"), 0, "noisy duplicates");
            const quietMsgs = of(binding.messages, quiet);
            assert.equal(assertAll(numbers(quietMsgs), written, "quiet"), 0, "quiet duplicates");
            // The quiet container's lag (engine timestamp → consumer) while the burst was read.
            let from = Infinity;
            let firstAt = Infinity;
            let to = 0;
            for (const m of noisyMsgs) {
              from = Math.min(from, Date.parse(String(m.body.timestamp)));
              firstAt = Math.min(firstAt, m.receivedMs);
              to = Math.max(to, m.receivedMs);
            }
            const lags = quietMsgs
              .filter((m) => m.receivedMs >= from && m.receivedMs <= to)
              .map((m) => m.receivedMs - Date.parse(String(m.body.timestamp)));
            assert.ok(lags.length > 0, "quiet lines arrived during the burst");
            const p99 = percentile(lags, 99);
            // The publisher takes the containers in turn: a quiet line waits one round, not
            // behind what the buffer holds (its drain time at the rate the burst went through).
            const drainMs = DEFAULT_TUNING.queueCapacity / (total / Math.max(1, to - firstAt));
            console.log(
              `noisy neighbour: quiet lag p99 ${p99} ms over ${lags.length} lines; ` +
                `full buffer drains in ${Math.round(drainMs)} ms`,
            );
            // The goal (≤ 1 s) is measured by the benchmark; here only a gross hold-back fails:
            // waiting behind the buffer again would take about its drain time.
            const bound = Math.max(3_000, drainMs / 2);
            assert.ok(p99 <= bound, `quiet lag p99 ${p99} ms during the burst (bound ${bound})`);
            assert.ok(!k.lines.some((l) => / warn dropped /.test(l)), "nothing dropped");
          });
        } finally {
          await binding.close();
        }
      },
    );

    await t.step(
      "broker down, 1 MiB lines: memory stays within BUFFER_BYTES + 100 MB",
      async () => {
        const binding = await freshBinding({ durableExchange: true });
        try {
          const vars = env(binding, engine, {
            KAROTTEN_TUNING: JSON.stringify({
              lagWarnMs: 2_000,
              amqpBackoffInitialMs: 100,
              amqpBackoffMaxMs: 1000,
            }),
          });
          await withKarotten(vars, async (k) => {
            const total = 64; // far more than the default 1 MiB budget holds
            let stopped = false;
            try {
              await rabbitStopApp();
              stopped = true;
              await k.waitForLog(/ amqp_disconnected /, TIMEOUT_MS);
              const id = await engine.run(TEST_IMAGE, "sh", "-c", bigLines(total, 1_000_000));
              await engine.docker("wait", id);
              // Behind by more than the threshold: its buffer is full and reading has paused.
              await k.waitForLog(new RegExp(`warn lagging id=${id.slice(0, 12)} `), TIMEOUT_MS);
              const hwm = residentHighWater(k.pid);
              console.log(`1 MiB lines, broker down: VmHWM ${(hwm / 1e6).toFixed(1)} MB`);
              assert.ok(
                hwm <= DEFAULT_PAUSE_BUFFER_BYTES + 100e6,
                `VmHWM ${hwm} bytes > BUFFER_BYTES + 100 MB`,
              );
              await rabbitStartApp();
              stopped = false;
              await new Tally(binding).waitFor(id, total, BURST_TIMEOUT_MS);
              const msgs = of(binding.messages, id);
              assert.equal(assertAll(numbers(msgs), total, "long lines"), 0, "duplicates");
              for (const m of msgs) assert.equal(String(m.body.message).length, 1_000_000);
            } finally {
              if (stopped) await rabbitStartApp();
            }
          });
        } finally {
          await binding.close();
        }
      },
    );

    await t.step(
      "a container that stops while karotten is paused: its last lines arrive",
      async () => {
        const binding = await freshBinding({ durableExchange: true });
        try {
          const vars = env(binding, engine, {
            KAROTTEN_TUNING: JSON.stringify({
              queueCapacity: 500,
              dieGraceMs: DIE_GRACE_MS,
              amqpBackoffInitialMs: 100,
              amqpBackoffMaxMs: 1000,
            }),
          });
          await withKarotten(vars, async (k) => {
            const total = 5_000;
            let stopped = false;
            try {
              await rabbitStopApp();
              stopped = true;
              await k.waitForLog(/ amqp_disconnected /, TIMEOUT_MS);
              const id = await engine.run(TEST_IMAGE, "sh", "-c", burst(total));
              await engine.docker("wait", id);
              // The `die` event came while its reader waited for room; the grace period after it
              // must not end the stream meanwhile.
              await waitFor(
                async () => {
                  const info = JSON.parse(await engine.docker("inspect", id))[0];
                  return !info.State.Running;
                },
                { timeoutMs: TIMEOUT_MS, what: "the container to stop" },
              );
              const graceOver = Date.now() + DIE_GRACE_MS * 2;
              await waitFor(() => Date.now() >= graceOver, {
                timeoutMs: DIE_GRACE_MS * 2 + 5_000,
                intervalMs: 250,
                what: "the die grace period to pass while paused",
              });
              await rabbitStartApp();
              stopped = false;
              await new Tally(binding).waitFor(id, total, TIMEOUT_MS);
              await k.waitForLog(new RegExp(`detached id=${id.slice(0, 12)} `), TIMEOUT_MS);
              const dups = assertAll(numbers(of(binding.messages, id)), total, "stopped");
              assert.equal(dups, 0, "duplicates");
            } finally {
              if (stopped) await rabbitStartApp();
            }
          });
        } finally {
          await binding.close();
        }
      },
    );

    await t.step("OVERFLOW=drop: delivered + counted = written, per container", async () => {
      const binding = await freshBinding();
      try {
        const vars = env(binding, engine, {
          OVERFLOW: "drop",
          KAROTTEN_TUNING: JSON.stringify({ queueCapacity: 2000, dropReportIntervalMs: 250 }),
        });
        await withKarotten(vars, async (k) => {
          const total = 50_000;
          const ids = await Promise.all([
            engine.run(TEST_IMAGE, "sh", "-c", burst(total)),
            engine.run(TEST_IMAGE, "sh", "-c", burst(total)),
          ]);
          const tally = new Tally(binding);
          const accounted = (id: string) =>
            tally.messages(id) + counted(droppedByContainer(k).get(id.slice(0, 12)));
          for (const id of ids) {
            await waitFor(() => accounted(id) >= total, {
              timeoutMs: BURST_TIMEOUT_MS,
              intervalMs: 100,
              what: `${total} lines of ${id.slice(0, 12)} delivered or counted`,
            }).catch((err) => {
              throw new Error(`${err.message} (have ${accounted(id)})`, { cause: err });
            });
            await k.waitForLog(new RegExp(`detached id=${id.slice(0, 12)} `), TIMEOUT_MS);
          }
          let droppedTotal = 0;
          for (const id of ids) {
            const nums = numbers(of(binding.messages, id));
            const dropped = droppedByContainer(k).get(id.slice(0, 12)) ?? { full: 0, blocked: 0 };
            assert.equal(nums.length - new Set(nums).size, 0, "duplicates");
            assert.equal(
              nums.length + dropped.full + dropped.blocked,
              total,
              `${id.slice(0, 12)}: delivered + counted`,
            );
            droppedTotal += dropped.full + dropped.blocked;
            console.log(
              `drop: ${id.slice(0, 12)} ${nums.length} delivered, ${dropped.full} counted`,
            );
          }
          assert.ok(droppedTotal > 0, "the burst did overflow the buffer");
          const summed = k.lines.map((l) => / warn dropped lines=(\d+) /.exec(l))
            .reduce((sum, m) => sum + (m ? Number(m[1]) : 0), 0);
          assert.equal(summed, droppedTotal, "the totals agree with the per-container counts");
        });
      } finally {
        await binding.close();
      }
    });
  } finally {
    await engine.stop();
  }
});
