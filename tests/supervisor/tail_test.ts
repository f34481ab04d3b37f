import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config.ts";
import type { ContainerInfo, LogsStart } from "../../lib/docker/api.ts";
import { LogStream, type LogStreamOptions } from "../../lib/docker/log_stream.ts";
import { MessageQueue } from "../../lib/queue.ts";
import type { TailEngine } from "../../lib/supervisor/tail.ts";
import { startTail } from "./_tail.ts";
import { newContainerCounters } from "../../lib/telemetry/container_counters.ts";
import { withDeadline } from "../helpers/deadline.ts";

const ID = "0123456789abcdef".repeat(4);
const TS = "2026-11-25T20:24:44.123456789Z";

function info(running: boolean): ContainerInfo {
  return {
    Id: ID,
    Name: "/tty",
    State: { Running: running, StartedAt: TS, FinishedAt: "0001-01-01T00:00:00Z" },
    Config: { Image: "img", Labels: null, Tty: true },
  };
}

/** Lines the queue dropped so far. */
function dropped(queue: MessageQueue): number {
  const d = queue.takeDropped();
  return d.full + d.blocked;
}

/** One event-loop turn: every pending promise reaction has run. */
function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("tailContainer waits for room for a stopped container's last line with OVERFLOW=pause", async () => {
  const config = loadConfig((name) =>
    ({ RABBITMQ_URL: "amqp://127.0.0.1:5672", OVERFLOW: "pause" })[name]
  );
  const queue = new MessageQueue(2);
  const stopped = Promise.withResolvers<void>();
  let inspections = 0;
  const docker: TailEngine = {
    inspect: () => {
      // Running when attached; stopped once its stream ended.
      if (++inspections === 2) stopped.resolve();
      return Promise.resolve(info(inspections === 1));
    },
    logs: (_id: string, _start: LogsStart, opts: LogStreamOptions) => {
      // Two lines, then a last one without its newline: only the container's stop ends it.
      const body = [new TextEncoder().encode(`${TS} a\r\n${TS} b\r\n${TS} last`)];
      return Promise.resolve(new LogStream(body, opts));
    },
  };
  const counters = newContainerCounters();
  const tail = startTail(docker, queue, config, ID, counters);
  let ended = false;
  tail.then(() => ended = true, () => ended = true);
  await withDeadline(stopped.promise, 5_000, "the inspection after the stream ended");
  await turn();
  assert.equal(ended, false, "the tail waits for room instead of dropping the last line");
  assert.equal(dropped(queue), 0);
  // The publisher confirms the first message: room for the last line.
  assert.ok(queue.next());
  queue.confirm(queue.markPublished());
  const result = await withDeadline(tail, 5_000, "the tail's end");
  assert.equal(result.end, "stopped");
  assert.deepEqual(result.position, { ts: TS, count: 3 });
  const bodies: string[] = [];
  for (let m = queue.next(); m !== undefined; m = queue.next()) {
    bodies.push(JSON.parse(m.body.toString()).message);
    queue.markPublished();
  }
  assert.deepEqual(bodies, ["b", "last"]);
  assert.deepEqual(counters, {
    project: "standalone",
    service: "tty",
    name: "tty",
    stdout: 3,
    stderr: 0,
  });
  assert.equal(dropped(queue), 0);
});
