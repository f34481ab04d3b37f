import assert from "node:assert/strict";
import { ENGINE_PIECE_BYTES, LineAssembler } from "../../lib/docker/lines.ts";
import type { StreamName } from "../../lib/message.ts";
import { bytes, concat, random, randomPieces, RUN_SEED, splits, text } from "./_split.ts";

const TS = "2026-11-25T20:24:44.123456789Z";
const TS2 = "2026-11-25T20:24:45.000000001Z";
const TS_OFF = "2026-11-25T21:24:44.5+01:00";
const MIB = 1024 * 1024;

/** `n` bytes of a recognisable pattern (no LF, no CR), starting at pattern position `from`. */
function fill(n: number, from = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = 97 + ((from + i) % 26);
  return out;
}

function entry(ts: string, content: Uint8Array | string): Uint8Array {
  return concat([
    bytes(ts === "" ? "" : `${ts} `),
    typeof content === "string" ? bytes(content) : content,
  ]);
}

/** Runs an assembler; events are "stream ts message" and "oversize stream", in order. */
function run(max: number, feed: (la: LineAssembler) => void, crlf = false) {
  const events: string[] = [];
  const messages: Uint8Array[] = [];
  const la = new LineAssembler({
    maxLineBytes: max,
    onLine: (s: StreamName, ts, m) => {
      events.push(`${s} ${ts} ${m.length > 100 ? `<${m.length} bytes>` : text(m)}`);
      messages.push(m);
    },
    onOversize: (s) => events.push(`oversize ${s}`),
    crlf,
  });
  feed(la);
  return { events, messages };
}

function raw(parts: Uint8Array[], max = MIB) {
  return run(max, (la) => {
    for (const p of parts) la.pushRaw(p);
    la.flush();
  });
}

Deno.test("LineAssembler.pushEntry emits a complete entry as a subarray, keeping CR", () => {
  const payloads = [
    entry(TS, "hello\n"),
    entry(TS2, "a\r\n"),
    entry(TS_OFF, "x\n"),
    entry(TS, "\n"),
  ];
  const { events, messages } = run(MIB, (la) => payloads.forEach((p) => la.pushEntry("stdout", p)));
  assert.deepEqual(events, [
    `stdout ${TS} hello`,
    `stdout ${TS2} a\r`,
    `stdout ${TS_OFF} x`,
    `stdout ${TS} `,
  ]);
  messages.forEach((m, i) => assert.equal(m.buffer, payloads[i].buffer));
});

Deno.test("LineAssembler.pushEntry takes an entry as a range of a larger buffer", () => {
  const pieces = [
    entry(TS, "hello\n"),
    entry(TS2, "split "),
    entry(TS2, "line\n"),
    entry("", "\n"),
  ];
  const want = run(MIB, (la) => pieces.forEach((p) => la.pushEntry("stderr", p)));
  const buf = concat([bytes("junk"), ...pieces, bytes("more junk")]);
  const got = run(MIB, (la) => {
    let at = 4;
    for (const p of pieces) {
      la.pushEntry("stderr", buf, at, at + p.length);
      at += p.length;
    }
  });
  assert.deepEqual(got.events, want.events);
  assert.equal(got.messages[0].buffer, buf.buffer, "a whole line is a view of the buffer");
});
Deno.test("LineAssembler.pushEntry takes the whole payload as content without a timestamp", () => {
  const { events } = run(MIB, (la) => {
    la.pushEntry("stderr", bytes("hello world\n"));
    la.pushEntry("stderr", bytes("2026-11-25T20:24:4 x\n")); // 18 bytes: too short
    la.pushEntry("stderr", bytes("\n"));
  });
  assert.deepEqual(events, ["stderr  hello world", "stderr  2026-11-25T20:24:4 x", "stderr  "]);
});

Deno.test("LineAssembler.pushEntry joins a 40000-byte line from 3 engine pieces", () => {
  const c = fill(40000);
  const { events, messages } = run(MIB, (la) => {
    la.pushEntry("stdout", entry(TS, c.subarray(0, 16384)));
    la.pushEntry("stdout", entry(TS2, c.subarray(16384, 32768)));
    la.pushEntry("stdout", entry(TS, concat([c.subarray(32768), bytes("\n")])));
  });
  assert.deepEqual(events, [`stdout ${TS} <40000 bytes>`]);
  assert.deepEqual(messages[0], c);
});

Deno.test("LineAssembler says which lines were joined from several entries", () => {
  const joined: string[] = [];
  const la = new LineAssembler({
    maxLineBytes: 8,
    onLine: (s, _ts, m, j) => joined.push(`${s} ${text(m)} ${j}`),
  });
  la.pushEntry("stdout", entry(TS, "one\n"));
  la.pushEntry("stdout", entry(TS, "tw"));
  la.pushEntry("stderr", entry(TS, "err\n"));
  la.pushEntry("stdout", entry(TS2, "o\n"));
  la.pushEntry("stdout", entry(TS, "three\n"));
  la.pushEntry("stdout", entry(TS, "1234567890\n")); // cut within one entry
  la.pushEntry("stdout", entry(TS, "abcdef"));
  la.pushEntry("stdout", entry(TS, "ghijkl\n")); // cut after a second entry
  la.pushEntry("stdout", entry(TS, "last"));
  la.flush();
  assert.deepEqual(joined, [
    "stdout one false",
    "stderr err false",
    "stdout two true",
    "stdout three false",
    "stdout 12345678 false",
    "stdout 90 false",
    "stdout abcdefgh true",
    "stdout ijkl true",
    "stdout last false",
  ]);
  const raw: boolean[] = [];
  const tty = new LineAssembler({ maxLineBytes: MIB, onLine: (_s, _t, _m, j) => raw.push(j) });
  const a = fill(ENGINE_PIECE_BYTES);
  tty.pushRaw(concat([bytes(`${TS} `), a, bytes(`${TS} b\r\n${TS} c\r\n`)]));
  assert.deepEqual(raw, [true, false]);
});

Deno.test("LineAssembler.pushEntry keeps stdout and stderr pieces apart", () => {
  const { events } = run(MIB, (la) => {
    la.pushEntry("stdout", entry(TS, "out-a "));
    la.pushEntry("stderr", entry(TS2, "err-a "));
    la.pushEntry("stdout", entry(TS2, "out-b\n"));
    la.pushEntry("stdout", entry(TS2, "next\n"));
    la.pushEntry("stderr", entry(TS, "err-b\n"));
  });
  assert.deepEqual(events, [
    `stdout ${TS} out-a out-b`,
    `stdout ${TS2} next`,
    `stderr ${TS2} err-a err-b`,
  ]);
});

Deno.test("LineAssembler.pushEntry cuts a 3 MiB line into 1 MiB messages", () => {
  const c = fill(3 * MIB);
  const pieces = (tail: string) => {
    const out: Uint8Array[] = [];
    for (let at = 0; at < c.length; at += ENGINE_PIECE_BYTES) {
      out.push(entry(TS, c.subarray(at, at + ENGINE_PIECE_BYTES)));
    }
    out.push(entry(TS, tail));
    return out;
  };
  const want = [`stdout ${TS} <${MIB} bytes>`, "oversize stdout"];
  const asPieces = run(MIB, (la) => pieces("\n").forEach((p) => la.pushEntry("stdout", p)));
  const whole = run(MIB, (la) => la.pushEntry("stdout", entry(TS, concat([c, bytes("\n")]))));
  for (const r of [asPieces, whole]) {
    assert.deepEqual(r.events, [...want, ...want, `stdout ${TS} <${MIB} bytes>`]);
    assert.deepEqual(concat(r.messages), c);
  }
  const longer = run(MIB, (la) => pieces("tail\n").forEach((p) => la.pushEntry("stdout", p)));
  assert.deepEqual(longer.events, [...want, ...want, ...want, `stdout ${TS} tail`]);
});

Deno.test("LineAssembler.pushEntry emits a line of exactly maxLineBytes as one message", () => {
  const one = run(10, (la) => la.pushEntry("stdout", entry(TS, "0123456789\n")));
  const split = run(10, (la) => {
    for (const p of ["01234", "56789", "\n"]) la.pushEntry("stdout", entry(TS, p));
  });
  for (const r of [one, split]) assert.deepEqual(r.events, [`stdout ${TS} 0123456789`]);
  const over = run(10, (la) => {
    for (const p of ["01234", "56789", "A\n"]) la.pushEntry("stdout", entry(TS, p));
  });
  assert.deepEqual(over.events, [`stdout ${TS} 0123456789`, "oversize stdout", `stdout ${TS} A`]);
  const payload = entry(TS, `${"x".repeat(25)}\n`);
  const cut = run(10, (la) => la.pushEntry("stderr", payload));
  assert.deepEqual(cut.events.filter((e) => e.startsWith("oversize")).length, 2);
  assert.deepEqual(cut.messages.map((m) => m.length), [10, 10, 5]);
  cut.messages.forEach((m) => assert.equal(m.buffer, payload.buffer));
});

/** Podman 4.3's timestamps (whole seconds, `time.RFC3339`), as its libpod endpoint frames them. */
const PTS = "2026-12-06T12:37:43Z";
const PTS2 = "2026-12-06T12:37:44Z";

/** Feeds TTY entries (frame payloads) to an assembler with `crlf`; `[stream ts message joined]`. */
function ttyEntries(payloads: string[], max = MIB): string[] {
  const out: string[] = [];
  const la = new LineAssembler({
    maxLineBytes: max,
    onLine: (s, ts, m, j) => out.push(`${s} ${ts} ${JSON.stringify(text(m))} ${j}`),
    onOversize: (s) => out.push(`oversize ${s}`),
    crlf: true,
  });
  for (const p of payloads) la.pushEntry("stdout", bytes(p));
  la.flush();
  return out;
}

Deno.test("LineAssembler.pushEntry with crlf joins Podman's TTY pieces without their timestamps", () => {
  // Captured from Podman 4.3.1 (`printf 't 1'; sleep 0.3; printf '\n'` in a `-t` container):
  // a partial entry, then the line's `\r\n` as an entry of its own, with a later second.
  assert.deepEqual(ttyEntries([`${PTS} t 1`, `${PTS2} \r\n`, `${PTS2} done\r\n`]), [
    `stdout ${PTS} "t 1" true`,
    `stdout ${PTS2} "done" false`,
  ]);
  // `printf 'x 2\r'; sleep 0.3; printf '\n'`: the CR of the content stays, the line end's goes.
  assert.deepEqual(ttyEntries([`${PTS} x 2\r`, `${PTS2} \r\n`]), [`stdout ${PTS} "x 2\\r" true`]);
  // The line end's CR in one entry and its LF in the next.
  assert.deepEqual(ttyEntries([`${PTS} t 1\r`, `${PTS2} \n`]), [`stdout ${PTS} "t 1" true`]);
  // Only one CR goes, only before the LF; a CR inside a line stays.
  assert.deepEqual(ttyEntries([`${PTS} a\rb\r\r\n`, `${PTS} \r\n`, `${PTS} \n`]), [
    `stdout ${PTS} "a\\rb\\r" false`,
    `stdout ${PTS} "" false`,
    `stdout ${PTS} "" false`,
  ]);
});

Deno.test("LineAssembler.pushEntry with crlf keeps the timestamps a TTY line itself holds", () => {
  assert.deepEqual(
    ttyEntries([
      `${PTS} ${PTS2} started\r\n`,
      `${PTS} at `,
      `${PTS2} ${PTS2} ok`,
      `${PTS2} \r\n`,
      `${PTS} 2026-12-06T12:37:44.000000000Z x\r\n`,
    ]),
    [
      `stdout ${PTS} "${PTS2} started" false`,
      `stdout ${PTS} "at ${PTS2} ok" true`,
      `stdout ${PTS} "2026-12-06T12:37:44.000000000Z x" false`,
    ],
  );
});

Deno.test("LineAssembler.pushEntry with crlf joins a 9000-byte TTY line Podman read in 4095-byte pieces", () => {
  const a = "a".repeat(9000);
  const got = ttyEntries([
    `${PTS} ${a.slice(0, 4095)}`,
    `${PTS} ${a.slice(4095, 8190)}`,
    `${PTS2} ${a.slice(8190)}\r\n`,
    `${PTS2} end\r\n`,
  ]);
  assert.deepEqual(got, [`stdout ${PTS} ${JSON.stringify(a)} true`, `stdout ${PTS2} "end" false`]);
});

Deno.test("LineAssembler.pushEntry with crlf does not count the line end's CR against the cap", () => {
  assert.deepEqual(ttyEntries([`${PTS} abc\r`, `${PTS} \n`], 3), [`stdout ${PTS} "abc" true`]);
  assert.deepEqual(ttyEntries([`${PTS} ab`, `${PTS} c\r\n`], 3), [`stdout ${PTS} "abc" true`]);
  assert.deepEqual(ttyEntries([`${PTS} abc\r`, `${PTS} d\r\n`], 3), [
    `stdout ${PTS} "abc" true`,
    "oversize stdout",
    `stdout ${PTS} "\\rd" true`,
  ]);
  // Without crlf (a container without a TTY) the CR is content.
  const plain = run(3, (la) => {
    for (const p of [`${PTS} abc\r`, `${PTS} \n`]) la.pushEntry("stdout", bytes(p));
  });
  assert.deepEqual(plain.events, [`stdout ${PTS} abc`, "oversize stdout", `stdout ${PTS} \r`]);
});

Deno.test("LineAssembler.flush emits pending lines; discard drops them", () => {
  const feed = (la: LineAssembler) => {
    la.pushEntry("stdout", entry(TS, "partial"));
    la.pushEntry("stderr", entry(TS2, "also "));
    la.pushEntry("stderr", entry(TS, "partial"));
    la.pushEntry("stdout", entry(TS2, ""));
  };
  const flushed = run(MIB, (la) => {
    feed(la);
    la.flush();
    la.flush();
  });
  assert.deepEqual(flushed.events, [`stdout ${TS} partial`, `stderr ${TS2} also partial`]);
  const discarded = run(MIB, (la) => {
    feed(la);
    la.discard();
    la.pushEntry("stdout", entry(TS2, "fresh\n"));
    la.flush();
  });
  assert.deepEqual(discarded.events, [`stdout ${TS2} fresh`]);
});

const RAW = bytes(
  `${TS} a\r\n${TS} b\n${TS} \r\n${TS2} \n${TS} c\rd\r\n${TS} e\r\r\n` +
    `no timestamp here\n\n${TS_OFF} f\n${TS} g`,
);
const RAW_LINES = [
  `stdout ${TS} a`,
  `stdout ${TS} b`,
  `stdout ${TS} `,
  `stdout ${TS2} `,
  `stdout ${TS} c\rd`,
  `stdout ${TS} e\r`,
  "stdout  no timestamp here",
  "stdout  ",
  `stdout ${TS_OFF} f`,
  `stdout ${TS} g`,
];

Deno.test("LineAssembler.pushRaw splits TTY lines, strips one CR, however the bytes are split", () => {
  for (const { label, parts } of splits(RAW)) {
    assert.deepEqual(raw(parts).events, RAW_LINES, label);
  }
});

Deno.test("LineAssembler.pushRaw emits lines as subarrays of the push", () => {
  const chunk = bytes(`${TS} a\r\n${TS} bc\n`);
  const { messages } = raw([chunk]);
  assert.deepEqual(messages.map(text), ["a", "bc"]);
  messages.forEach((m) => assert.equal(m.buffer, chunk.buffer));
});

Deno.test("LineAssembler.pushRaw joins engine pieces with a repeated timestamp", () => {
  const P = ENGINE_PIECE_BYTES;
  const [a, b, c] = [fill(P), fill(P, 3), fill(7232, 5)];
  const e = fill(P - 1);
  const lines = [
    entry(TS, concat([a, bytes(`${TS} `), b, bytes(`${TS} `), c, bytes("\r\n")])), // 40000
    entry(TS2, concat([a, bytes("\r\n")])), // exactly one piece
    entry(TS, concat([e, bytes(`\r${TS} \n`)])), // CR closes the piece, LF the line
    entry(TS2, concat([a, bytes("XYZ\n")])), // no prefix after the piece: plain content
    entry(TS2, concat([a, bytes(`${TS2.slice(0, 12)}!\n`)])), // prefix starts, then differs
    entry(TS, concat([a, bytes(`${TS2} more\n`)])), // another line's timestamp: content
    entry(TS, concat([a, bytes(`${TS} ${TS} x\n`)])), // a piece starting with the timestamp
    entry(TS, concat([a, bytes(`${TS} `)])), // EOF after a repeated prefix
  ];
  const want = [
    concat([a, b, c]),
    a,
    e,
    concat([a, bytes("XYZ")]),
    concat([a, bytes(`${TS2.slice(0, 12)}!`)]),
    concat([a, bytes(`${TS2} more`)]),
    concat([a, bytes(`${TS} x`)]),
    a,
  ];
  const input = concat(lines);
  const bounds: number[] = [];
  for (let at = 0, k = 0; k < lines.length; at += lines[k++].length) {
    for (const off of [0, 30, P + 31, 2 * P + 62]) bounds.push(at + off);
  }
  const cuts = bounds.flatMap((b) => Array.from({ length: 40 }, (_, i) => b - 4 + i));
  const ways = splits(input, {
    cuts: cuts.filter((c) => c >= 0 && c <= input.length),
    maxPiece: 4096,
  });
  for (
    const { label, parts } of [
      ...ways,
      ...splits(input, { bytewise: false, cuts: [], seeds: [11] }),
    ]
  ) {
    const { events, messages } = raw(parts);
    assert.equal(events.length, want.length, label);
    assert.equal(events.filter((e) => e.startsWith(`stdout ${TS2} `)).length, 3, label);
    messages.forEach((m, i) => assert.deepEqual(m, want[i], `${label}, line ${i}`));
  }
});

Deno.test("LineAssembler.pushRaw reads a timestamp torn across pushes", () => {
  const r = raw([
    bytes("2026-11-25T20:2"),
    bytes("4:44.123456789Z"),
    bytes(" hi\n2026-11-"),
    bytes("2"),
  ]);
  assert.deepEqual(r.events, [`stdout ${TS} hi`, "stdout  2026-11-2"]);
});

Deno.test("LineAssembler.pushRaw caps lines the same way however the bytes are split", () => {
  const input = bytes(
    `${TS} ${"x".repeat(2500)}\r\n${TS2} 0123456789\r\n${TS} 01234567890\r\n${TS} ab`,
  );
  const want = [
    `stdout ${TS} <1000 bytes>`,
    "oversize stdout",
    `stdout ${TS} <1000 bytes>`,
    "oversize stdout",
    `stdout ${TS} <500 bytes>`,
    `stdout ${TS2} 0123456789`,
  ];
  for (const { label, parts } of splits(input)) {
    const r = raw(parts, 1000);
    assert.deepEqual(r.events.slice(0, 6), want, label);
    assert.deepEqual(r.events.slice(6), [`stdout ${TS} 01234567890`, `stdout ${TS} ab`], label);
  }
  for (const { label, parts } of splits(bytes(`${TS} 0123456789\r\n${TS} 0123456789A\r\n`))) {
    const r = raw(parts, 10);
    const cut = [`stdout ${TS} 0123456789`, "oversize stdout", `stdout ${TS} A`];
    assert.deepEqual(r.events, [`stdout ${TS} 0123456789`, ...cut], label);
  }
});

Deno.test("LineAssembler.discard drops a raw line in progress", () => {
  const r = run(MIB, (la) => {
    la.pushRaw(bytes(`${TS} half a li`));
    la.discard();
    la.pushRaw(bytes(`2026-11-25T20:2`));
    la.discard();
    la.pushRaw(bytes(`${TS2} whole\n`));
    la.flush();
  });
  assert.deepEqual(r.events, [`stdout ${TS2} whole`]);
});

Deno.test("LineAssembler messages stay intact after more pushes", () => {
  const input = concat([RAW, bytes("\n"), entry(TS, concat([fill(40000), bytes("\n")]))]);
  for (const seed of [1, 2, 3]) {
    const copies: Uint8Array[] = [];
    const { messages } = run(3000, (la) => {
      const la2 = new LineAssembler({
        maxLineBytes: 3000,
        onLine: (_s, _t, m) => copies.push(m.slice()),
      });
      for (const p of randomPieces(input, seed, 700)) {
        la.pushRaw(p);
        la2.pushRaw(p);
      }
      la.flush();
      la2.flush();
    });
    assert.equal(messages.length, RAW_LINES.length + 14, `seed ${seed}`);
    assert.deepEqual(messages, copies, `seed ${seed}`);
  }
});

Deno.test("LineAssembler.pushRaw output on random streams does not depend on the split", () => {
  const next = random(RUN_SEED);
  const tokens = [`${TS} `, `${TS2} `, TS.slice(0, 9), "\r", "\n", "\r\n", "ab", " ", "xyz"];
  for (let round = 0; round < 200; round++) {
    const parts: Uint8Array[] = [];
    for (let n = Math.floor(next() * 40); n > 0; n--) {
      const r = next();
      const filler = fill(ENGINE_PIECE_BYTES - 1 - Math.floor(next() * 3), round);
      parts.push(r < 0.03 ? filler : bytes(tokens[Math.floor(r * tokens.length)]));
    }
    const input = concat(parts);
    const max = 1 + Math.floor(next() * 40);
    const want = raw([input], max);
    const label = `round ${round} (seed ${RUN_SEED})`;
    const ways = [1, 2, 3].map((s) => randomPieces(input, RUN_SEED + s, 8));
    if (input.length < 200) ways.push([...splits(input)][1].parts);
    for (const [k, way] of ways.entries()) {
      assert.deepEqual(raw(way, max), want, `${label} way ${k}`);
    }
  }
});
