/**
 * A follow stream of an engine that drops entries once the container died (Podman 4.3): a line
 * joined from pieces is sent only once an inspect shows the container still ran after it was
 * read; else the complete read sends it whole, and never a line joined across a dropped piece.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config.ts";
import type { ContainerInfo, LogsStart } from "../../lib/docker/api.ts";
import { LogStream, type LogStreamOptions } from "../../lib/docker/log_stream.ts";
import { MessageQueue } from "../../lib/queue.ts";
import type { TailEngine } from "../../lib/supervisor/tail.ts";
import { Channel } from "../../lib/async/channel.ts";
import { followChannelLogs, startTail } from "./_tail.ts";
import { waitFor, withDeadline } from "../helpers/deadline.ts";
import { frame } from "../helpers/fake_engine.ts";

const ID = "feedface".repeat(8);
const TS = "2026-12-01T20:33:30Z";

function info(running: boolean, startedAt = TS): ContainerInfo {
  return {
    Id: ID,
    Name: "/pieces",
    State: { Running: running, StartedAt: startedAt, FinishedAt: "0001-01-01T00:00:00Z" },
    Config: { Image: "img", Labels: null, Tty: false },
  };
}

/** The log: `a`, `b1b2` in two pieces, `c`. */
const LOG = [`${TS} a\n`, `${TS} b1`, `${TS} b2\n`, `${TS} c\n`].map((p) => frame(1, p));

/** The messages in the queue, in order. */
function published(queue: MessageQueue): string[] {
  const out: string[] = [];
  for (let m = queue.next(); m !== undefined; m = queue.next()) {
    out.push(JSON.parse(m.body.toString()).message);
    queue.markPublished();
  }
  return out;
}

/**
 * A tail on an engine whose follow stream sends what `follow` is given and whose complete read
 * is `LOG`; `running()` answers each inspect.
 */
function setup(running: () => boolean | ContainerInfo) {
  const config = loadConfig((name) => ({ RABBITMQ_URL: "amqp://127.0.0.1:5672" })[name]);
  const queue = new MessageQueue(100);
  const follow = new Channel<Uint8Array | null>();
  let inspections = 0;
  const docker: TailEngine = {
    inspect: () => {
      inspections++;
      const answer = running();
      return Promise.resolve(typeof answer === "boolean" ? info(answer) : answer);
    },
    logs: followChannelLogs(follow),
    logsUntilNow: (_id: string, _start: LogsStart, opts: LogStreamOptions) =>
      Promise.resolve(new LogStream(LOG, opts, true)),
  };
  const tail = startTail(docker, queue, config, ID);
  return { queue, follow, tail, inspections: () => inspections };
}

Deno.test("tailContainer sends a joined line once an inspect shows the container ran on", async () => {
  let running = true;
  const { queue, follow, tail, inspections } = setup(() => running);
  follow.send(LOG[0]);
  follow.send(LOG[1]);
  follow.send(LOG[2]);
  await waitFor(() => inspections() >= 2, { timeoutMs: 5_000, what: "the proving inspect" });
  await waitFor(() => queue.size >= 2, { timeoutMs: 5_000, what: "the joined line" });
  follow.send(LOG[3]);
  await waitFor(() => queue.size >= 3, { timeoutMs: 5_000, what: "the line after" });
  running = false;
  follow.send(null);
  const result = await withDeadline(tail, 5_000, "the tail's end");
  assert.equal(result.end, "stopped");
  assert.deepEqual(published(queue), ["a", "b1b2", "c"]);
});

Deno.test("tailContainer never sends a line joined across a piece the engine dropped", async () => {
  // Running when attached, then it died; the engine dropped `b2`: the stream joins `b1`, `c`.
  let inspections = 0;
  const { queue, follow, tail } = setup(() => ++inspections === 1);
  follow.send(LOG[0]);
  follow.send(LOG[1]);
  follow.send(LOG[3]);
  follow.send(null);
  const result = await withDeadline(tail, 5_000, "the tail's end");
  assert.equal(result.end, "stopped");
  assert.deepEqual(published(queue), ["a", "b1b2", "c"]);
  assert.deepEqual(result.position, { ts: "2026-12-01T20:33:30.000000000Z", count: 3 });
});

Deno.test("tailContainer takes a restart as the end of the run it follows: no proof", async () => {
  // Running when attached; the proving inspect finds a new run (a restart after `b2` was
  // dropped); stopped once the stream ended.
  let inspections = 0;
  const { queue, follow, tail } = setup(() => {
    inspections++;
    if (inspections === 1) return true;
    return inspections === 2 ? info(true, "2026-12-01T20:33:31Z") : false;
  });
  follow.send(LOG[0]);
  follow.send(LOG[1]);
  follow.send(LOG[3]);
  await waitFor(() => inspections >= 2, { timeoutMs: 5_000, what: "the proving inspect" });
  follow.send(null);
  const result = await withDeadline(tail, 5_000, "the tail's end");
  assert.equal(result.end, "stopped");
  assert.deepEqual(published(queue), ["a", "b1b2", "c"]);
});
