import assert from "node:assert/strict";
import { LagWatch } from "../lib/lag.ts";
import type { Fields, Logger } from "../lib/log.ts";

function recorder(): { log: Logger; lines: { level: string; event: string; fields?: Fields }[] } {
  const lines: { level: string; event: string; fields?: Fields }[] = [];
  const at = (level: string) => (event: string, fields?: Fields) =>
    lines.push({ level, event, fields });
  return {
    lines,
    log: {
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
    },
  };
}

const ID = "0123456789ab" + "c".repeat(52);
const T0 = Date.parse("2026-12-01T10:00:00Z");
const TS = "2026-12-01T10:00:00.000000000Z";

Deno.test("LagWatch warns once past the threshold and says when it caught up", () => {
  const { log, lines } = recorder();
  const lag = new LagWatch(ID, "web", 60_000, log);
  lag.check(TS, T0 + 30_000);
  assert.equal(lines.length, 0, "30 s behind: under the threshold");
  lag.check(TS, T0 + 61_000);
  lag.check(TS, T0 + 90_000);
  assert.deepEqual(lines, [{
    level: "warn",
    event: "lagging",
    fields: { id: "0123456789ab", name: "web", lag_s: 61, threshold_s: 60 },
  }]);
  assert.equal(lag.lagging, true);
  lag.check(TS, T0 + 40_000);
  assert.equal(lines.length, 1, "still over half the threshold");
  lag.check(TS, T0 + 1_000);
  assert.deepEqual(lines[1], {
    level: "info",
    event: "caught_up",
    fields: { id: "0123456789ab", name: "web", lag_s: 1 },
  });
  assert.equal(lag.lagging, false);
});

Deno.test("LagWatch ignores a line without an engine timestamp", () => {
  const { log, lines } = recorder();
  new LagWatch(ID, "web", 1_000, log).check("", T0);
  assert.equal(lines.length, 0);
});

Deno.test("LagWatch.maybeCheck measures at most once per interval", () => {
  const { log, lines } = recorder();
  const lag = new LagWatch(ID, "web", 1_000, log);
  assert.equal(lag.intervalMs, 500, "at most half the threshold");
  lag.maybeCheck("2000-01-01T00:00:00.000000000Z");
  lag.maybeCheck("2000-01-01T00:00:00.000000000Z");
  assert.equal(lines.length, 1);
});
