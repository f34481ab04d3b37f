import assert from "node:assert/strict";
import { ProtocolError } from "../../lib/errors.ts";
import { ChunkedDecoder } from "../../lib/docker/chunked.ts";
import { bytes, concat, splits, text } from "./_split.ts";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz";
const FIXTURE = bytes(
  "5\r\nhello\r\n" +
    `1A;name=value;flag\r\n${ALPHABET}\r\n` +
    `1a\r\n${ALPHABET.toUpperCase()}\r\n` +
    "0003 \r\n\r\n\r\r\n" + // leading zeros, whitespace before CRLF, data that is CRLF itself
    "0\r\n" +
    "X-Trailer: yes\r\n" +
    "\r\n" +
    "after the end",
);
const FIXTURE_DATA = `hello${ALPHABET}${ALPHABET.toUpperCase()}\r\n\r`;

interface Outcome {
  data: string;
  done: boolean;
  rest: string;
}

function decode(parts: Uint8Array[]): Outcome {
  const pieces: Uint8Array[] = [];
  const d = new ChunkedDecoder((p) => {
    assert.ok(p.length > 0, "pieces are never empty");
    pieces.push(p);
  });
  for (const p of parts) d.push(p);
  d.end();
  return { data: text(concat(pieces)), done: d.done, rest: text(d.rest) };
}

Deno.test("ChunkedDecoder decodes sizes, extensions, trailers and keeps the rest", () => {
  assert.deepEqual(decode([FIXTURE]), { data: FIXTURE_DATA, done: true, rest: "after the end" });
});

Deno.test("ChunkedDecoder gives the same output however the bytes are split", () => {
  const want = decode([FIXTURE]);
  for (const { label, parts } of splits(FIXTURE)) {
    assert.deepEqual(decode(parts), want, label);
  }
});

/** Decodes with `pushInPlace`, keeping a copy of each push's data before the next push. */
function decodeInPlace(parts: Uint8Array[]): Outcome {
  const pieces: Uint8Array[] = [];
  const d = new ChunkedDecoder(() => assert.fail("pushInPlace hands nothing to onData"));
  for (const p of parts) {
    const data = d.pushInPlace(p);
    if (data.length > 0) {
      assert.equal(data.buffer, p.buffer, "the data is a view of the push");
      assert.equal(data.byteOffset, p.byteOffset, "moved to the front of the push");
      pieces.push(data.slice());
    }
  }
  d.end();
  return { data: text(concat(pieces)), done: d.done, rest: text(d.rest) };
}

Deno.test("ChunkedDecoder.pushInPlace gives push()'s data and rest however the bytes are split", () => {
  const want = decode([FIXTURE]);
  assert.deepEqual(decodeInPlace([FIXTURE.slice()]), want);
  for (const { label, parts } of splits(FIXTURE)) {
    assert.deepEqual(decodeInPlace(parts), want, label);
  }
});

Deno.test("ChunkedDecoder.pushInPlace gathers a push's chunks into one view at its front", () => {
  const chunk = bytes("3\r\nabc\r\n2\r\nde\r\n1");
  const d = new ChunkedDecoder(() => {});
  assert.equal(text(d.pushInPlace(chunk)), "abcde");
  // The torn size line at the end is left where it was, and completed by the next push.
  assert.equal(text(d.pushInPlace(bytes("\r\nf\r\n0\r\n\r\n"))), "f");
  assert.ok(d.done);
});

Deno.test("ChunkedDecoder emits data as subarrays of the pushed buffer", () => {
  const chunk = bytes("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  const pieces: Uint8Array[] = [];
  const d = new ChunkedDecoder((p) => pieces.push(p));
  d.push(chunk);
  assert.deepEqual(pieces.map(text), ["abc", "de"]);
  for (const p of pieces) assert.equal(p.buffer, chunk.buffer);
  assert.ok(d.done);
  assert.equal(d.rest.length, 0);
});

Deno.test("ChunkedDecoder is not done until the blank line after the last chunk", () => {
  const d = new ChunkedDecoder(() => {});
  d.push(bytes("2\r\nab\r\n0\r\n"));
  assert.equal(d.done, false);
  d.push(bytes("T: 1\r\n"));
  assert.equal(d.done, false);
  d.push(bytes("\r\n"));
  assert.equal(d.done, true);
});

Deno.test("ChunkedDecoder puts every push after the end into rest", () => {
  const d = new ChunkedDecoder(() => {});
  d.push(bytes("0\r\n\r\nHTTP"));
  d.push(bytes("/1.1 "));
  d.push(new Uint8Array(0));
  d.push(bytes("200"));
  assert.equal(text(d.rest), "HTTP/1.1 200");
  assert.equal(text(d.rest), "HTTP/1.1 200");
  d.end();
});

Deno.test("ChunkedDecoder accepts a chunk size of exactly 2^31", () => {
  const got: number[] = [];
  const d = new ChunkedDecoder((p) => got.push(p.length));
  d.push(bytes("80000000\r\nabc"));
  assert.deepEqual(got, [3]);
  assert.throws(() => d.end(), /2147483645 data bytes missing/);
});

function assertChunkedError(parts: Uint8Array[], pattern: RegExp, atEnd = false) {
  const d = new ChunkedDecoder(() => {});
  assert.throws(
    () => {
      for (const p of parts) d.push(p);
      if (atEnd) d.end();
    },
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, String(err));
      assert.equal(err.stage, "chunked");
      assert.match(err.message, pattern);
      return true;
    },
  );
}

/** Each bad input fails the same way whole, byte by byte and split at every offset. */
function assertChunkedErrorAnySplit(input: string, pattern: RegExp, atEnd = false) {
  for (const { label, parts } of splits(bytes(input), { seeds: [1, 2, 3] })) {
    try {
      assertChunkedError(parts, pattern, atEnd);
    } catch (err) {
      throw new Error(`${label}: ${err}`);
    }
  }
}

Deno.test("ChunkedDecoder throws ProtocolError on a chunk size that is not hex", () => {
  assertChunkedErrorAnySplit("zz\r\nab\r\n", /at byte 0: chunk size is not hex/);
  assertChunkedErrorAnySplit("2\r\nab\r\n\r\n", /at byte 7: chunk size is not hex/);
  assertChunkedErrorAnySplit("-1\r\n", /not hex/);
  assertChunkedErrorAnySplit("5 x\r\nhello\r\n", /at byte 2: chunk size is not hex/);
  assertChunkedErrorAnySplit("0x5\r\nhello\r\n", /not hex/);
});

Deno.test("ChunkedDecoder throws ProtocolError on a size line without CRLF", () => {
  assertChunkedErrorAnySplit("5\nhello\r\n", /does not end with CRLF/);
});

Deno.test("ChunkedDecoder throws ProtocolError on a chunk size above 2^31", () => {
  assertChunkedErrorAnySplit("80000001\r\n", /larger than 2\^31/);
  assertChunkedErrorAnySplit("FFFFFFFFFFFFFFFFFFFF\r\n", /larger than 2\^31/);
});

Deno.test("ChunkedDecoder throws ProtocolError on a size line longer than 1 KiB", () => {
  assertChunkedError([bytes(`1;${"x".repeat(1100)}`)], /chunk-size line longer than 1024/);
  const parts = Array.from({ length: 200 }, () => bytes("000000"));
  assertChunkedError(parts, /at byte 0: chunk-size line longer than 1024/);
  // 1024 bytes, CRLF included, is fine.
  const d = new ChunkedDecoder(() => {});
  d.push(bytes(`1;${"x".repeat(1020)}\r\n`));
});

Deno.test("ChunkedDecoder throws ProtocolError when CRLF does not follow the data", () => {
  assertChunkedErrorAnySplit("3\r\nabcd\r\n", /at byte 6: missing CRLF after chunk data/);
  assertChunkedErrorAnySplit("3\r\nabc\rX", /at byte 7: missing CRLF/);
});

Deno.test("ChunkedDecoder end() throws ProtocolError on EOF before the end", () => {
  assertChunkedError([], /at byte 0: input ended before the last chunk/, true);
  assertChunkedErrorAnySplit("3\r\nab", /at byte 5: input ended inside a chunk \(1 data/, true);
  assertChunkedErrorAnySplit("3\r\nabc", /input ended inside a chunk/, true);
  assertChunkedErrorAnySplit("3\r\nabc\r\n", /input ended before the last chunk/, true);
  assertChunkedErrorAnySplit("3\r\nabc\r\n1", /input ended before the last chunk/, true);
  assertChunkedErrorAnySplit("0\r\n", /input ended inside the trailer/, true);
  assertChunkedErrorAnySplit("0\r\nA: b\r\n", /input ended inside the trailer/, true);
});

Deno.test("ChunkedDecoder rethrows its error on every later push", () => {
  const d = new ChunkedDecoder(() => {});
  assert.throws(() => d.push(bytes("q\r\n")), ProtocolError);
  assert.throws(() => d.push(bytes("0\r\n\r\n")), /not hex/);
});

Deno.test("ChunkedDecoder pieces stay intact after more pushes", () => {
  const kept: Uint8Array[] = [];
  const copies: Uint8Array[] = [];
  const d = new ChunkedDecoder((p) => {
    kept.push(p);
    copies.push(p.slice());
  });
  for (const { parts } of splits(FIXTURE, { bytewise: false, cuts: [], seeds: [7] })) {
    for (const p of parts) d.push(p);
  }
  assert.equal(text(concat(kept)), FIXTURE_DATA);
  assert.deepEqual(kept, copies);
});

Deno.test("ChunkedDecoder betweenChunks is true only after whole chunks, before the last", () => {
  const at = (text: string) => {
    const d = new ChunkedDecoder(() => {});
    d.push(bytes(text));
    return d.betweenChunks;
  };
  assert.equal(at(""), true);
  assert.equal(at("3\r\nabc\r\n"), true);
  assert.equal(at("3\r\nabc\r\n2\r\nde\r\n"), true);
  for (const torn of ["3", "3\r", "3\r\nab", "3\r\nabc", "3\r\nabc\r", "0\r\n", "0\r\n\r\n"]) {
    assert.equal(at(torn), false, JSON.stringify(torn));
  }
});
