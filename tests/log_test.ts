/** The logger: one inert line per event, and the broker's credentials masked by URL structure. */
import assert from "node:assert/strict";
import { createLogger, formatValue, MAX_LOG_VALUE_CHARS, urlRedactor } from "../lib/log.ts";

function capture(urls: string[] = []) {
  const lines: string[] = [];
  const log = createLogger({ urls, write: (l) => lines.push(l) });
  return { log, lines };
}

Deno.test("createLogger escapes control characters: ESC, BEL, CR, LF, DEL, C1 and bidi overrides", () => {
  const { log, lines } = capture();
  const hostile = "a\x1b[2J\x07b\r\nc\x7f\u009b31m\u202eevil\u2028x";
  log.warn("engine_said", { error: hostile, [`k\x1b`]: "v" });
  assert.equal(lines.length, 1);
  const line = lines[0];
  assert.ok(line.endsWith("\n"));
  assert.equal(line.indexOf("\n"), line.length - 1, "one line");
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(line.slice(0, -1), /[\x00-\x1f\x7f-\x9f\u2028\u202e]/);
  assert.match(line, /error="a\\u001b\[2J\\u0007b\\r\\nc\\u007f\\u009b31m\\u202eevil\\u2028x"/);
  assert.match(line, /"k\\u001b"=v/);
});

Deno.test("formatValue leaves plain values bare and cuts very long ones", () => {
  assert.equal(formatValue("plain-value_1.2"), "plain-value_1.2");
  assert.equal(formatValue("two words"), '"two words"');
  assert.equal(formatValue(""), '""');
  const long = formatValue("x".repeat(1_000_000));
  assert.ok(long.length < MAX_LOG_VALUE_CHARS + 40, `${long.length} chars`);
  assert.match(long, /\.\.\.\(1000000 chars\)"$/);
});

Deno.test("urlRedactor masks the URL as given, as parsed and its user:password@ part", () => {
  const url = "amqp://karotten:s3cr%40t@broker:5672/vh";
  const redact = urlRedactor([url]);
  assert.equal(
    redact(`connect ${url} failed`),
    "connect amqp://karotten:***@broker:5672/vh failed",
  );
  assert.equal(redact("amqp://karotten:s3cr%40t@broker/"), "amqp://karotten:***@broker/");
  assert.equal(redact("login karotten:s3cr@t@broker"), "login karotten:***@broker");
  assert.equal(
    redact("AMQP://karotten:s3cr%40t@BROKER:5672/vh"),
    "AMQP://karotten:***@BROKER:5672/vh",
  );
});

Deno.test("urlRedactor does not mask a short password elsewhere: password a", () => {
  const { log, lines } = capture(["amqp://u:a@127.0.0.1:5672/"]);
  log.info("attached", {
    name: "a-banana",
    key: "standalone.a",
    url: "amqp://u:a@127.0.0.1:5672/",
  });
  assert.equal(
    lines[0].replace(/^\S+ /, ""),
    "info attached name=a-banana key=standalone.a url=amqp://u:***@127.0.0.1:5672/\n",
  );
});

Deno.test("urlRedactor gives no oracle for a guessed password: a container named guest", () => {
  const { log, lines } = capture(["amqp://guest:guest@127.0.0.1:5672"]);
  log.info("attached", { name: "guest", key: "standalone.guest" });
  assert.match(lines[0], / name=guest key=standalone\.guest\n$/);
});

Deno.test("urlRedactor takes several URLs and ignores those without a password or that do not parse", () => {
  const redact = urlRedactor([
    "amqp://one:first-secret@a:5672/",
    "amqps://two:second-secret@b:5671/x",
    "amqp://nopass@c/",
    "not a url",
    "",
  ]);
  assert.equal(
    redact("amqp://one:first-secret@a:5672/ amqps://two:second-secret@b:5671/x amqp://nopass@c/"),
    "amqp://one:***@a:5672/ amqps://two:***@b:5671/x amqp://nopass@c/",
  );
  assert.equal(redact("no at sign: first-secret"), "no at sign: first-secret");
});

Deno.test("urlRedactor masks a password with a percent-encoded %, raw and decoded", () => {
  const url = "amqp://u:ab%25zz@h:5672/";
  const redact = urlRedactor([url]);
  assert.equal(redact(url), "amqp://u:***@h:5672/");
  assert.equal(redact("u:ab%zz@h"), "u:***@h");
});
