/**
 * A follow stream of an engine that drops lines once the container died (Podman 4.3): the lines
 * the tail keeps for completing it are let go of once an inspect shows the engine still followed
 * after they were read, and the sparse end after them is still completed exactly.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config.ts";
import type { ContainerInfo, LogsStart } from "../../lib/docker/api.ts";
import { LogStream, type LogStreamOptions } from "../../lib/docker/log_stream.ts";
import { MessageQueue } from "../../lib/queue.ts";
import type { TailEngine } from "../../lib/supervisor/tail.ts";
import { SENT_PROOF_AT } from "../../lib/supervisor/sent_lines.ts";
import { Channel } from "../../lib/async/channel.ts";
import { followChannelLogs, startTail } from "./_tail.ts";
import { waitFor, withDeadline } from "../helpers/deadline.ts";
import { frame } from "../helpers/fake_engine.ts";
import { concatBytes } from "../../lib/bytes.ts";

const ID = "5ea1ed00".repeat(8);
const STARTED = "2026-12-01T20:33:00Z";
/** Lines in the log; the follow stream delivers the first `PREFIX`, then every 4th. */
const TOTAL = 6_000;
const PREFIX = 5_000;

/** Whole seconds, as Podman prints them: 10 lines a second from 20:40:00 on. */
function ts(i: number): string {
  const d = new Date(Date.UTC(2026, 11, 1, 20, 40, 0) + Math.floor(i / 10) * 1000);
  return d.toISOString().replace(".000Z", "Z");
}
const line = (i: number) => frame(1, `${ts(i)} line ${i}\n`);

function info(running: boolean): ContainerInfo {
  return {
    Id: ID,
    Name: "/sparse",
    State: { Running: running, StartedAt: STARTED, FinishedAt: "0001-01-01T00:00:00Z" },
    Config: { Image: "img", Labels: null, Tty: false },
  };
}

Deno.test("tailContainer lets go of the kept lines an inspect proved, and still completes the sparse end", async () => {
  const config = loadConfig((name) => ({ RABBITMQ_URL: "amqp://127.0.0.1:5672" })[name]);
  const queue = new MessageQueue(TOTAL + 100);
  const follow = new Channel<Uint8Array | null>();
  let running = true;
  let inspections = 0;
  const completions: LogsStart[] = [];
  const docker: TailEngine = {
    inspect: () => {
      inspections++;
      return Promise.resolve(info(running));
    },
    logs: followChannelLogs(follow),
    logsUntilNow: (_id: string, start: LogsStart, opts: LogStreamOptions) => {
      completions.push(start);
      // Since is inclusive here (what the matching assumes; Podman's log file has nanoseconds).
      const from = start.kind === "since" ? Number(start.since.split(".")[0]) * 1000 : 0;
      const read: Uint8Array[] = [];
      for (let i = 0; i < TOTAL; i++) if (Date.parse(ts(i)) >= from) read.push(line(i));
      return Promise.resolve(new LogStream(read, opts, true));
    },
  };
  const tail = startTail(docker, queue, config, ID);
  // The complete prefix, in one read: the record reaches SENT_PROOF_AT, an inspect proves it.
  follow.send(concatBytes(Array.from({ length: PREFIX }, (_, i) => line(i))));
  await waitFor(() => queue.size >= PREFIX && inspections >= 2, {
    timeoutMs: 10_000,
    what: "the prefix sent and a proof asked",
  });
  // The proof's answer is taken in (microtasks), then the run stops: a sparse pick, the end.
  await new Promise((r) => setTimeout(r, 0));
  running = false;
  const sparse: Uint8Array[] = [];
  for (let i = PREFIX; i < TOTAL; i += 4) sparse.push(line(i));
  follow.send(concatBytes(sparse));
  follow.send(null);
  assert.equal((await withDeadline(tail, 10_000, "the tail's end")).end, "stopped");
  const got: number[] = [];
  for (let m = queue.next(); m !== undefined; m = queue.next()) {
    got.push(Number(JSON.parse(m.body.toString()).message.split(" ")[1]));
    queue.markPublished();
  }
  assert.deepEqual(got.toSorted((a, b) => a - b), Array.from({ length: TOTAL }, (_, i) => i));
  // The completion read from past the lines proven, not from the first kept one.
  assert.equal(completions.length, 2);
  const since = completions[0];
  assert.ok(since.kind === "since", `completion from ${JSON.stringify(since)}`);
  assert.ok(
    Number(since.since.split(".")[0]) * 1000 >= Date.parse(ts(SENT_PROOF_AT - 1)),
    `completion since ${since.since}`,
  );
});
