import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startDropReporter } from "../lib/drop_report.ts";
import type { Fields, Logger } from "../lib/log.ts";
import { MessageQueue, type OutMessage } from "../lib/queue.ts";

const MSG: OutMessage = {
  routingKey: "k",
  body: Buffer.from("{}"),
  containerId: "c",
  timestamp: "t",
  seq: 1,
  messageId: "m1",
};

Deno.test("startDropReporter logs drops once per interval, per container, and the rest on abort", async () => {
  const q = new MessageQueue(1);
  q.offer(MSG);
  const lines: { event: string; fields?: Fields }[] = [];
  const firstReport = Promise.withResolvers<void>();
  const record = (event: string, fields?: Fields) => {
    lines.push({ event, fields });
    firstReport.resolve();
  };
  const log: Logger = {
    debug: record,
    info: record,
    warn: record,
    error: record,
  };
  const ctl = new AbortController();
  q.offer(MSG);
  q.offer(MSG);
  q.setBlocked(true);
  q.offer(MSG);
  const reporting = startDropReporter(q, 5, log, ctl.signal);
  await firstReport.promise;
  assert.deepEqual(lines, [
    { event: "dropped", fields: { lines: 3, full: 2, blocked: 1, containers: 1 } },
    {
      event: "dropped_container",
      fields: { id: "c", lines: 3, full: 2, blocked: 1, key: "k" },
    },
  ]);
  q.offer(MSG);
  q.offer({ ...MSG, containerId: "d".repeat(64), routingKey: "p.s.stderr" });
  ctl.abort();
  await reporting;
  assert.deepEqual(lines.slice(2), [
    { event: "dropped", fields: { lines: 2, full: 0, blocked: 2, containers: 2 } },
    { event: "dropped_container", fields: { id: "c", lines: 1, full: 0, blocked: 1, key: "k" } },
    {
      event: "dropped_container",
      fields: { id: "dddddddddddd", lines: 1, full: 0, blocked: 1, key: "p.s.stderr" },
    },
  ]);
  assert.equal(lines.length, 5, "intervals without drops log nothing");
});
