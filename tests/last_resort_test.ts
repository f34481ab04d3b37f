/** The last resort: an error nobody caught is one logged line, never a stack, and exit 1. */
import assert from "node:assert/strict";
import { EXIT_CRASH } from "../lib/exit_codes.ts";
import { withDeadline } from "./helpers/deadline.ts";
import { startKarotten } from "./helpers/karotten.ts";

const EXIT_TIMEOUT_MS = 20_000;
const URL_WITH_PASSWORD = "amqp://karotten:hunter2-secret@127.0.0.1:5672/";

for (const kind of ["rejection", "exception"]) {
  Deno.test(`installLastResort logs an unhandled ${kind} as one crashed line and exits 1`, async () => {
    const k = await startKarotten(
      { RABBITMQ_URL: URL_WITH_PASSWORD, EXCHANGE: kind },
      "tests/testdata/unhandled_main.ts",
    );
    assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CRASH);
    assert.equal(k.lines.length, 1, k.lines.join("\n"));
    assert.match(k.lines[0], /^\S+ error crashed kind=(unhandled_rejection|uncaught_exception) /);
    assert.match(k.lines[0], /amqp:\/\/karotten:\*\*\*@127\.0\.0\.1:5672\//);
    assert.ok(!k.lines[0].includes("hunter2"), k.lines[0]);
    assert.ok(!/\s+at /.test(k.lines.join("\n")), "no stack trace");
  });
}
