import assert from "node:assert/strict";
import { ProtocolError } from "../../lib/errors.ts";
import { DEFAULT_MAX_FRAME_BYTES, FrameDemuxer } from "../../lib/docker/frames.ts";
import { bytes, concat, random, randomPieces, splits, text } from "./_split.ts";

/** One frame: header and payload. */
function frame(stream: number, payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === "string" ? bytes(payload) : payload;
  const out = new Uint8Array(8 + body.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, body.length);
  out.set(body, 8);
  return out;
}

const next = random(99);
const BIG = Uint8Array.from({ length: 300 }, () => Math.floor(next() * 256));
const FIXTURE = concat([
  frame(1, "2026-11-25T20:24:44.123456789Z hello\n"),
  frame(2, "2026-11-25T20:24:44.223456789Z oops\n"),
  frame(1, ""),
  frame(0, "in"),
  frame(1, BIG),
  frame(3, "system error"),
  frame(2, "x"),
]);

type Frame = [number, string];

function demux(parts: Uint8Array[], max?: number): Frame[] {
  const frames: Frame[] = [];
  const d = new FrameDemuxer((s, p) => frames.push([s, Array.from(p).join(",")]), max);
  for (const p of parts) d.push(p);
  d.end();
  return frames;
}

Deno.test("FrameDemuxer splits frames and keeps stream ids, empty payloads included", () => {
  const frames: [number, Uint8Array][] = [];
  const d = new FrameDemuxer((s, p) => frames.push([s, p]));
  d.push(FIXTURE);
  d.end();
  assert.deepEqual(frames.map(([s]) => s), [1, 2, 1, 0, 1, 3, 2]);
  assert.equal(text(frames[0][1]), "2026-11-25T20:24:44.123456789Z hello\n");
  assert.equal(text(frames[1][1]), "2026-11-25T20:24:44.223456789Z oops\n");
  assert.equal(frames[2][1].length, 0);
  assert.equal(text(frames[3][1]), "in");
  assert.deepEqual(frames[4][1], BIG);
  assert.equal(text(frames[5][1]), "system error");
  assert.equal(text(frames[6][1]), "x");
});

Deno.test("FrameDemuxer gives the same frames however the bytes are split", () => {
  const want = demux([FIXTURE]);
  for (const { label, parts } of splits(FIXTURE)) {
    assert.deepEqual(demux(parts), want, label);
  }
});

Deno.test("FrameDemuxer emits subarrays for whole frames and one copy for torn ones", () => {
  const a = frame(1, "whole");
  const b = frame(2, "torn payload");
  const chunk1 = concat([a, b.subarray(0, 12)]);
  const chunk2 = b.slice(12);
  const got: Uint8Array[] = [];
  const d = new FrameDemuxer((_, p) => got.push(p));
  d.push(chunk1);
  assert.equal(got.length, 1);
  assert.equal(got[0].buffer, chunk1.buffer);
  d.push(chunk2);
  assert.equal(text(got[1]), "torn payload");
  assert.notEqual(got[1].buffer, chunk1.buffer);
  assert.notEqual(got[1].buffer, chunk2.buffer);
  // A torn header with the payload whole in the next push: a subarray of that push.
  const c = frame(1, "after torn header");
  const chunk3 = c.slice(0, 3);
  const chunk4 = c.slice(3);
  d.push(chunk3);
  d.push(chunk4);
  assert.equal(text(got[2]), "after torn header");
  assert.equal(got[2].buffer, chunk4.buffer);
  d.end();
});

Deno.test("FrameDemuxer with a range handler gives the same frames, as ranges of the push", () => {
  const want = demux([FIXTURE]);
  for (const { label, parts } of splits(FIXTURE)) {
    const frames: Frame[] = [];
    const d = new FrameDemuxer({
      onRange: (s, b, start, end) => frames.push([s, Array.from(b.subarray(start, end)).join(",")]),
    });
    for (const p of parts) d.push(p);
    d.end();
    assert.deepEqual(frames, want, label);
  }
  const whole = FIXTURE.slice();
  const seen: Uint8Array[] = [];
  new FrameDemuxer({ onRange: (_, b) => seen.push(b) }).push(whole);
  assert.ok(seen.every((b) => b === whole), "whole frames are ranges of the push itself");
});

Deno.test("FrameDemuxer accepts a payload of exactly maxFrameBytes", () => {
  assert.equal(DEFAULT_MAX_FRAME_BYTES, 4 * 1024 * 1024);
  assert.deepEqual(demux([frame(1, "0123456789")], 10), [[
    1,
    Array.from(bytes("0123456789")).join(","),
  ]]);
});

function assertFramesError(
  parts: Uint8Array[],
  pattern: RegExp,
  opts: { max?: number; atEnd?: boolean } = {},
) {
  const d = new FrameDemuxer(() => {}, opts.max);
  assert.throws(
    () => {
      for (const p of parts) d.push(p);
      if (opts.atEnd) d.end();
    },
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, String(err));
      assert.equal(err.stage, "frames");
      assert.match(err.message, pattern);
      return true;
    },
  );
}

function assertAnySplit(
  input: Uint8Array,
  pattern: RegExp,
  opts: { max?: number; atEnd?: boolean } = {},
) {
  for (const { label, parts } of splits(input, { seeds: [1, 2, 3], maxPiece: 12 })) {
    try {
      assertFramesError(parts, pattern, opts);
    } catch (err) {
      throw new Error(`${label}: ${err}`);
    }
  }
}

Deno.test("FrameDemuxer throws ProtocolError on a stream id above 3", () => {
  const bad = frame(4, "abc");
  assertAnySplit(concat([frame(1, "ok"), bad]), /at byte 10: bad stream id 4.*near "\\u0004/);
  bad[0] = 0x32; // '2': someone forgot the engine answers raw for TTY containers
  assertAnySplit(bad, /at byte 0: bad stream id 50/);
});

Deno.test("FrameDemuxer throws ProtocolError on non-zero header bytes 1-3", () => {
  for (const at of [1, 2, 3]) {
    const bad = frame(1, "abc");
    bad[at] = 1;
    assertAnySplit(concat([frame(2, ""), bad]), /at byte 8: non-zero padding/);
  }
});

Deno.test("FrameDemuxer throws ProtocolError on a frame longer than maxFrameBytes", () => {
  assertAnySplit(frame(1, "01234567890"), /frame length 11 exceeds 10 bytes/, { max: 10 });
  const huge = frame(1, "");
  new DataView(huge.buffer).setUint32(4, 0xffffffff);
  assertAnySplit(huge, /frame length 4294967295 exceeds 4194304 bytes/);
});

Deno.test("FrameDemuxer end() throws ProtocolError on a truncated header or payload", () => {
  const f = concat([frame(1, "abc"), frame(2, "defgh")]);
  for (let cut = 1; cut < f.length; cut++) {
    if (cut === 11) continue;
    const pattern = cut < 8 || (cut > 11 && cut < 19)
      ? /at byte \d+: input ended inside a frame header/
      : /inside a frame payload/;
    assertAnySplit(f.slice(0, cut), pattern, { atEnd: true });
  }
  assertAnySplit(f.slice(0, 3), /at byte 3: input ended inside a frame header \(3 of 8/, {
    atEnd: true,
  });
  assertAnySplit(f.slice(0, 9), /at byte 9: input ended inside a frame payload \(1 of 3/, {
    atEnd: true,
  });
  // On a frame boundary, end() is fine.
  demux([f.slice(0, 11)]);
  demux([]);
});

Deno.test("FrameDemuxer rethrows its error on every later push and at end()", () => {
  const d = new FrameDemuxer(() => {});
  assert.throws(() => d.push(frame(9, "")), /bad stream id/);
  assert.throws(() => d.push(frame(1, "")), /bad stream id/);
  assert.throws(() => d.end(), /bad stream id/);
});

Deno.test("FrameDemuxer payloads stay intact after more pushes", () => {
  const kept: Uint8Array[] = [];
  const copies: Uint8Array[] = [];
  const d = new FrameDemuxer((_, p) => {
    kept.push(p);
    copies.push(p.slice());
  });
  for (const p of randomPieces(FIXTURE, 5, 12)) d.push(p);
  d.push(FIXTURE.slice()); // the same frames again: a reused internal buffer would show
  d.end();
  assert.equal(kept.length, 14);
  assert.deepEqual(kept, copies);
});
