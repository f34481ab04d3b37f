import assert from "node:assert/strict";
import { ProtocolError } from "../../lib/errors.ts";
import {
  type ResponseHead,
  ResponseHeadReader,
  type ResponseHeadResult,
} from "../../lib/docker/response_head.ts";
import { bytes, concat, splits, text } from "./_split.ts";

const FIXTURE = bytes(
  "HTTP/1.1 200 OK\r\n" +
    "Content-Type: application/vnd.docker.multiplexed-stream\r\n" +
    "Api-Version:1.47\r\n" +
    "X-Dup: a\r\n" +
    "Transfer-Encoding: chunked\r\n" +
    "x-dup:  b \t\r\n" +
    "Empty:\r\n" +
    "\r\n" +
    "5\r\nhello\r\n",
);

/** Pushes parts until the head is complete; returns it with every byte after it. */
function read(parts: Uint8Array[], reader = new ResponseHeadReader()) {
  for (let i = 0; i < parts.length; i++) {
    const r = reader.push(parts[i]);
    if (r) return { head: r.head, rest: text(concat([r.rest, ...parts.slice(i + 1)])) };
  }
  return undefined;
}

function headOf(head: ResponseHead) {
  return { status: head.status, reason: head.reason, headers: Object.fromEntries(head.headers) };
}

Deno.test("ResponseHeadReader parses status, reason and lowercased, joined headers", () => {
  const r = read([FIXTURE]);
  assert.ok(r);
  assert.deepEqual(headOf(r.head), {
    status: 200,
    reason: "OK",
    headers: {
      "content-type": "application/vnd.docker.multiplexed-stream",
      "api-version": "1.47",
      "x-dup": "a, b",
      "transfer-encoding": "chunked",
      "empty": "",
    },
  });
  assert.equal(r.rest, "5\r\nhello\r\n");
});

Deno.test("ResponseHeadReader gives the same head and rest however the bytes are split", () => {
  const want = read([FIXTURE]);
  for (const { label, parts } of splits(FIXTURE)) {
    const got = read(parts);
    assert.ok(got, label);
    assert.deepEqual(
      { head: headOf(got.head), rest: got.rest },
      { head: headOf(want!.head), rest: want!.rest },
      label,
    );
  }
});

Deno.test("ResponseHeadReader returns undefined until the blank line arrives", () => {
  const reader = new ResponseHeadReader();
  assert.equal(reader.push(bytes("HTTP/1.1 204 No Content\r\n")), undefined);
  assert.equal(reader.push(bytes("A: 1\r\n\r")), undefined);
  assert.equal(reader.push(new Uint8Array(0)), undefined);
  const r = reader.push(bytes("\n"));
  assert.ok(r);
  assert.equal(r.head.status, 204);
  assert.equal(r.rest.length, 0);
});

Deno.test("ResponseHeadReader returns rest as a subarray of the last push", () => {
  const chunk = bytes("HTTP/1.0 101 UPGRADED\r\n\r\nbody");
  const r: ResponseHeadResult | undefined = new ResponseHeadReader().push(chunk);
  assert.ok(r);
  assert.equal(r.rest.buffer, chunk.buffer);
  assert.equal(text(r.rest), "body");
  assert.deepEqual(headOf(r.head), { status: 101, reason: "UPGRADED", headers: {} });
});

Deno.test("ResponseHeadReader accepts an empty or missing reason phrase", () => {
  for (const line of ["HTTP/1.1 200 ", "HTTP/1.1 200"]) {
    const r = read([bytes(`${line}\r\n\r\n`)]);
    assert.ok(r, line);
    assert.equal(r.head.status, 200);
    assert.equal(r.head.reason, "");
  }
  const r = read([bytes("HTTP/1.1 404 page not found\r\n\r\n")]);
  assert.equal(r?.head.reason, "page not found");
});

Deno.test("ResponseHeadReader accepts a head of exactly maxHeadBytes", () => {
  const head = bytes("HTTP/1.1 200 OK\r\nA: b\r\n\r\n");
  const r = new ResponseHeadReader({ maxHeadBytes: head.length }).push(concat([head, bytes("x")]));
  assert.equal(r?.head.headers.get("a"), "b");
  assert.equal(r && text(r.rest), "x");
});

function assertHttpError(parts: Uint8Array[], pattern: RegExp, opts = {}) {
  const reader = new ResponseHeadReader(opts);
  assert.throws(
    () => {
      for (const p of parts) reader.push(p);
    },
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, String(err));
      assert.equal(err.stage, "http");
      assert.match(err.message, pattern);
      return true;
    },
  );
}

Deno.test("ResponseHeadReader throws ProtocolError on a bad status line", () => {
  for (
    const line of [
      "HTTP/2 200 OK",
      "HTTP/1.1 20 OK",
      "HTTP/1.1 2000 OK",
      "http/1.1 200 OK",
      "SSH-2.0-OpenSSH",
      "",
      "HTTP/1.1  200 OK",
      "HTTP/1.1 200\nOK",
    ]
  ) {
    const head = bytes(`${line}\r\nA: b\r\n\r\n`);
    for (const { parts } of splits(head, { cuts: [], seeds: [1, 2] })) {
      assertHttpError(parts, /bad status line/);
    }
  }
});

Deno.test("ResponseHeadReader throws ProtocolError on a header line without ':' or a bad name", () => {
  assertHttpError(
    [bytes("HTTP/1.1 200 OK\r\nA: b\r\nnocolon\r\n\r\n")],
    /byte 23: header line without ':'/,
  );
  assertHttpError([bytes("HTTP/1.1 200 OK\r\n: b\r\n\r\n")], /bad header name/);
  assertHttpError([bytes("HTTP/1.1 200 OK\r\n folded: b\r\n\r\n")], /bad header name/);
  assertHttpError([bytes("HTTP/1.1 200 OK\r\nA b: c\r\n\r\n")], /bad header name/);
  assertHttpError([bytes("HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n")], /bare CR or LF/);
});

Deno.test("ResponseHeadReader throws ProtocolError on a head longer than maxHeadBytes", () => {
  const huge = bytes(`HTTP/1.1 200 OK\r\nA: ${"x".repeat(200)}\r\n\r\n`);
  assertHttpError([huge], /longer than 100 bytes/, { maxHeadBytes: 100 });
  // Without the blank line ever arriving: it must not wait forever.
  const endless = Array.from({ length: 20 }, () => bytes("X-Y: z\r\n"));
  assertHttpError([bytes("HTTP/1.1 200 OK\r\n"), ...endless], /longer than 100 bytes/, {
    maxHeadBytes: 100,
  });
  // Default cap: 64 KiB.
  const big = bytes(`HTTP/1.1 200 OK\r\nA: ${"x".repeat(64 * 1024)}\r\n\r\n`);
  assertHttpError([big], /longer than 65536 bytes/);
});

Deno.test("ResponseHeadReader refuses a second response", () => {
  const reader = new ResponseHeadReader();
  assert.ok(reader.push(bytes("HTTP/1.1 200 OK\r\n\r\n")));
  assert.throws(() => reader.push(bytes("HTTP/1.1 200 OK\r\n\r\n")), /already/);
});

Deno.test("ResponseHeadReader results stay intact after more pushes", () => {
  const chunk = bytes("HTTP/1.1 200 OK\r\nA: b\r\n\r\nrest-bytes");
  const reader = new ResponseHeadReader();
  const parts = [chunk.slice(0, 10), chunk.slice(10, 20), chunk.slice(20)];
  reader.push(parts[0]);
  reader.push(parts[1]);
  const r = reader.push(parts[2]);
  assert.ok(r);
  parts[0].fill(0);
  parts[1].fill(0);
  assert.equal(r.head.headers.get("a"), "b");
  assert.equal(text(r.rest), "rest-bytes");
});
