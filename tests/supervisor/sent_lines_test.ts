import assert from "node:assert/strict";
import { advance, type Position } from "../../lib/positions.ts";
import {
  REORDER_WINDOW_NS,
  SENT_SLOT_BYTES,
  type SentLine,
  SentLines,
} from "../../lib/supervisor/sent_lines.ts";

const enc = new TextEncoder();

/** `n` lines `out i` (stdout) and some `err i` (stderr), `perSecond` per whole second. */
function log(n: number, perSecond: number, text = (i: number) => `line ${i}`): SentLine[] {
  return Array.from({ length: n }, (_, i) => ({
    stream: i % 5 === 4 ? 2 : 1,
    ts: `2026-12-01T20:33:${String(10 + Math.floor(i / perSecond)).padStart(2, "0")}.000000000Z`,
    message: enc.encode(text(i)),
  }));
}

/** Sends `picked` lines the way a tail does; returns the live position and what it sent. */
function follow(
  lines: SentLine[],
  picked: (i: number) => boolean,
  start: Position,
  cap?: number,
  shape: "prefix" | "sparse" = "sparse",
) {
  const position = { ...start };
  const sent = new SentLines(start, shape, cap);
  const ids: string[] = [];
  lines.forEach((line, i) => {
    if (!picked(i)) return;
    const seq = advance(position, line.ts);
    sent.record(line, seq);
    ids.push(`${line.ts}/${seq}`);
  });
  return { position, sent, ids };
}

/** What the engine's `since=<floor>` read returns: lines at or after the floor's timestamp. */
function readSince(lines: SentLine[], floor: Position): SentLine[] {
  return lines.filter((l) => floor.count === 0 || l.ts >= floor.ts);
}

function complete(
  lines: SentLine[],
  sent: SentLines,
  unmatched = 0,
): { added: number[]; ids: string[] } {
  const c = sent.completion();
  const floor = sent.floor;
  const added: number[] = [];
  const ids: string[] = [];
  for (const line of readSince(lines, floor)) c.observe(line);
  for (const line of readSince(lines, floor)) {
    const seq = c.next(line);
    if (seq === undefined) continue;
    added.push(lines.indexOf(line));
    ids.push(`${line.ts}/${seq}`);
  }
  assert.equal(c.unmatched, unmatched, "sent lines not met in the read");
  return { added, ids };
}

function assertExactlyOnce(n: number, picked: (i: number) => boolean, added: number[]) {
  const got = [...Array.from({ length: n }, (_, i) => i).filter(picked), ...added].sort((a, b) =>
    a - b
  );
  assert.deepEqual(got, Array.from({ length: n }, (_, i) => i));
}

Deno.test("SentLines completes a complete prefix followed by a sparse pick, once each", () => {
  const lines = log(300, 120);
  const picked = (i: number) => i < 130 || i % 7 === 0;
  const { sent, ids } = follow(lines, picked, { ts: "", count: 0 });
  const { added, ids: newIds } = complete(lines, sent);
  assertExactlyOnce(300, picked, added);
  const all = [...ids, ...newIds];
  assert.equal(new Set(all).size, all.length, "message ids stay unique");
});

Deno.test("SentLines keeps its floor right when the ring grows and evicts", () => {
  const lines = log(500, 100);
  const picked = (i: number) => i < 420 || i % 3 === 0;
  for (const cap of [64, 100, 1000]) {
    const { sent, ids } = follow(lines, picked, { ts: "", count: 0 }, cap);
    assert.equal(sent.size, Math.min(cap, 420 + 27));
    const { added, ids: newIds } = complete(lines, sent);
    assertExactlyOnce(500, picked, added);
    const all = [...ids, ...newIds];
    assert.equal(new Set(all).size, all.length, `cap ${cap}`);
  }
});

Deno.test("SentLines tells identical lines of one second apart by their order", () => {
  const lines = log(60, 60, () => "same");
  const picked = (i: number) => i < 20 || i === 41 || i === 59;
  const { sent, ids } = follow(lines, picked, { ts: "", count: 0 });
  const { added, ids: newIds } = complete(lines, sent);
  assert.equal(added.length, 60 - (20 + 2));
  const all = [...ids, ...newIds];
  assert.equal(new Set(all).size, all.length);
});

Deno.test("SentLines from a resumed position skips the lines sent before it", () => {
  const lines = log(200, 50);
  // Resumed at the 30th line of the first second: the read from there repeats those 30.
  const start = { ts: lines[0].ts, count: 30 };
  const picked = (i: number) => i >= 30 && (i < 150 || i % 4 === 0);
  const { sent } = follow(lines, picked, start);
  const { added } = complete(lines, sent);
  assertExactlyOnce(200, (i) => i < 30 || picked(i), added);
});

Deno.test("SentLines with nothing missed adds nothing", () => {
  const lines = log(100, 30);
  const { sent } = follow(lines, () => true, { ts: "", count: 0 }, 40);
  assert.deepEqual(complete(lines, sent).added, []);
});

Deno.test("SentLines passes over a line sent cut, and the lines after it still match", () => {
  const lines = log(200, 100);
  const picked = (i: number) => i < 120 || i % 2 === 0;
  const { sent } = follow(lines, picked, { ts: "", count: 0 });
  // Line 150 was sent cut (a piece of it dropped), as something the log does not hold.
  const cutSent = new SentLines({ ts: "", count: 0 });
  const position = { ts: "", count: 0 };
  lines.forEach((line, i) => {
    if (!picked(i)) return;
    const seq = advance(position, line.ts);
    cutSent.record(i === 150 ? { ...line, message: enc.encode("line 1") } : line, seq);
  });
  assert.equal(sent.size, cutSent.size);
  const { added } = complete(lines, cutSent, 1);
  assertExactlyOnce(200, (i) => picked(i) && i !== 150, added);
});

/** `n` lines over a few seconds with distinct nanoseconds; every 100th in another form. */
function nanoLog(n: number, otherForm: boolean): SentLine[] {
  return Array.from({ length: n }, (_, i) => {
    const second = String(10 + Math.floor(i / 100)).padStart(2, "0");
    const nanos = String((i % 100) * 9_999_999 + 7).padStart(9, "0");
    const ts = otherForm && i % 100 === 50
      ? `2026-12-01T20:33:${second}.${nanos}+00:00`
      : `2026-12-01T20:33:${second}.${nanos}Z`;
    return { stream: 1, ts, message: enc.encode(`line ${i}`) };
  });
}

Deno.test("SentLines: the floor after evictions is the position the tail passed, to the nanosecond", () => {
  for (const otherForm of [false, true]) {
    const lines = nanoLog(400, otherForm);
    const picked = (i: number) => i % 3 !== 1;
    const cap = 64;
    const { sent } = follow(lines, picked, { ts: "", count: 0 }, cap);
    const sentLines = lines.filter((_, i) => picked(i));
    const expected = { ts: "", count: 0 };
    for (const line of sentLines.slice(0, sentLines.length - cap)) advance(expected, line.ts);
    assert.deepEqual(sent.floor, expected, `other form: ${otherForm}`);
  }
});

Deno.test("SentLines completes lines with nanosecond timestamps exactly, across evictions", () => {
  const lines = nanoLog(400, false);
  const picked = (i: number) => i < 250 || i % 5 === 0;
  for (const cap of [64, 1000]) {
    const { sent, ids } = follow(lines, picked, { ts: "", count: 0 }, cap);
    const { added, ids: newIds } = complete(lines, sent);
    assertExactlyOnce(400, picked, added);
    const all = [...ids, ...newIds];
    assert.equal(new Set(all).size, all.length, `cap ${cap}`);
  }
});

Deno.test("SentLines that kept no line yet completes a read from its floor, whole", () => {
  const lines = log(30, 10);
  const floor = { ts: lines[9].ts, count: 10 };
  const sent = new SentLines(floor);
  assert.equal(sent.size, 0);
  assert.deepEqual(sent.floor, floor);
  // Nothing after the floor was sent: every line after it is added, in order, once.
  const { added } = complete(lines, sent);
  assert.deepEqual(added, Array.from({ length: 20 }, (_, i) => i + 10));
});

const BASE_MS = Date.UTC(2026, 11, 1, 20, 33, 10);

/** The engine's form of the instant `ns` nanoseconds after 20:33:10. */
function nanoTs(ns: number): string {
  const second = Math.floor(ns / 1e9);
  const head = new Date(BASE_MS + second * 1000).toISOString().slice(0, 20);
  return `${head}${String(ns - second * 1e9).padStart(9, "0")}Z`;
}

/**
 * `n` lines `stepNs` apart in the log; every 7th is stderr, timestamped `skewNs` before the line
 * written before it (the engine timestamps the two streams apart and writes them out of order).
 */
function skewedLog(n: number, stepNs: number, skewNs: number): SentLine[] {
  return Array.from({ length: n }, (_, i) => {
    const err = i % 7 === 6;
    return {
      stream: err ? 2 : 1,
      ts: nanoTs(1e9 + i * stepNs - (err ? skewNs : 0)),
      message: enc.encode(`line ${i}`),
    };
  });
}

Deno.test("SentLines of a prefix stream keep only a second of lines: a steady writer's record stays small", () => {
  // 100 lines/s for 10 minutes; the record of a stream that may drop lines keeps the last 20,000.
  const lines = skewedLog(60_000, 10_000_000, 0);
  const prefix = follow(lines, () => true, { ts: "", count: 0 }, undefined, "prefix").sent;
  const sparse = follow(lines, () => true, { ts: "", count: 0 }).sent;
  const bytes = (sent: SentLines) => sent.slots * SENT_SLOT_BYTES;
  assert.ok(prefix.size <= 1 + REORDER_WINDOW_NS / 10_000_000, `kept ${prefix.size}`);
  assert.ok(bytes(prefix) <= 8 * 1024, `${bytes(prefix)} bytes`);
  assert.equal(sparse.size, 20_000);
  assert.ok(bytes(sparse) >= 400_000, `${bytes(sparse)} bytes`);
});

Deno.test("SentLines of a prefix stream give back a burst's slots once the window moved on", () => {
  // 20,000 lines in half a second, then 100 lines/s for 5 s.
  const burst = Array.from({ length: 20_000 }, (_, i) => ({
    stream: 1 as const,
    ts: nanoTs(1e9 + i * 25_000),
    message: enc.encode(`burst ${i}`),
  }));
  const steady = Array.from({ length: 500 }, (_, i) => ({
    stream: 1 as const,
    ts: nanoTs(2e9 + i * 10_000_000),
    message: enc.encode(`steady ${i}`),
  }));
  const lines = [...burst, ...steady];
  const { sent, ids } = follow(lines, () => true, { ts: "", count: 0 }, undefined, "prefix");
  assert.ok(sent.size <= 101, `kept ${sent.size}`);
  assert.ok(sent.slots <= 512, `slots ${sent.slots}`);
  // The stream ended after all of them: the completion adds nothing.
  const { added } = complete(lines, sent);
  assert.deepEqual(added, []);
  assert.equal(new Set(ids).size, ids.length);
});

Deno.test("SentLines of a prefix stream complete the rest exactly, lines written out of timestamp order included", () => {
  // 300 lines/s over 6 s of timestamps; stderr lines 40 ms older than the line before them.
  const lines = skewedLog(1_800, 3_333_333, 40_000_000);
  // The stream ends before each reordered line (and a few others).
  const ends = [1, 500, 1_799, ...lines.flatMap((l, i) => l.stream === 2 ? [i] : [])];
  for (const end of ends) {
    const picked = (i: number) => i < end;
    const { sent, ids } = follow(lines, picked, { ts: "", count: 0 }, undefined, "prefix");
    assert.ok(sent.size <= 1 + REORDER_WINDOW_NS / 3_333_333 + 50, `kept ${sent.size}`);
    const { added, ids: newIds } = complete(lines, sent);
    assertExactlyOnce(lines.length, picked, added);
    const all = [...ids, ...newIds];
    assert.equal(new Set(all).size, all.length, `end ${end}: message ids stay unique`);
  }
});

Deno.test("SentLines of a prefix stream resumed at a position complete exactly", () => {
  const lines = skewedLog(900, 5_000_000, 20_000_000);
  // Resumed after line 99 (a stdout line): the read from its timestamp repeats it.
  const start = { ts: lines[99].ts, count: 1 };
  const picked = (i: number) => i >= 100 && i < 700;
  const { sent } = follow(lines, picked, start, undefined, "prefix");
  const { added } = complete(lines, sent);
  assertExactlyOnce(lines.length, (i) => i < 100 || picked(i), added);
});

Deno.test("SentLines of a sparse stream let go of the lines proven in the prefix; the rest completes exactly", () => {
  const lines = log(3_000, 100);
  const picked = (i: number) => i < 2_500 || i % 3 === 0;
  const position = { ts: "", count: 0 };
  const sent = new SentLines(position);
  const ids: string[] = [];
  let mark = 0;
  lines.forEach((line, i) => {
    if (!picked(i)) return;
    const seq = advance(position, line.ts);
    sent.record(line, seq);
    ids.push(`${line.ts}/${seq}`);
    // An inspect asked after line 1,999 was read finds the run still running; it answers later.
    if (i === 1_999) mark = sent.recorded;
    if (i === 2_200) sent.letGo(mark);
  });
  const expected = { ts: "", count: 0 };
  for (const line of lines.slice(0, 2_000)) advance(expected, line.ts);
  assert.deepEqual(sent.floor, expected);
  assert.equal(sent.size, lines.filter((_, i) => i >= 2_000 && picked(i)).length);
  const { added, ids: newIds } = complete(lines, sent);
  assertExactlyOnce(3_000, picked, added);
  const all = [...ids, ...newIds];
  assert.equal(new Set(all).size, all.length, "message ids stay unique");
});
