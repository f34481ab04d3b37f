/**
 * `PublishFrames` writes the bytes amqplib's own publish path writes (its `Connection.sendMessage`
 * with the arguments `Channel.publish` builds), for short, empty, multi-frame and non-ASCII
 * messages, and never writes over a buffer it handed out.
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { PassThrough } from "node:stream";
import { PublishFrames } from "../../lib/amqp/publish_frames.ts";
import { Connection } from "amqplib/lib/connection.js";
import defs from "amqplib/lib/defs.js";
import Args from "amqplib/lib/api_args.js";

const CONTENT_TYPE = "application/json";

/** What amqplib writes for one persistent publish on `channel`, concatenated. */
function amqplibBytes(
  channel: number,
  frameMax: number,
  exchange: string,
  routingKey: string,
  body: Buffer,
  messageId: string,
): Buffer {
  const written: Buffer[] = [];
  const conn = new Connection(new PassThrough());
  conn.frameMax = frameMax;
  conn.channels[channel] = { buffer: { write: (b: Buffer) => written.push(b) } };
  const fields = Args.publish(exchange, routingKey, {
    contentType: CONTENT_TYPE,
    persistent: true,
    messageId,
  });
  conn.sendMessage(
    channel,
    defs.BasicPublish,
    fields,
    defs.BasicProperties,
    fields,
    body,
  );
  return Buffer.concat(written);
}

function body(n: number, seed = 7): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

const CASES: [string, number, number, string, string, number][] = [
  // name, channel, frameMax, exchange, key, body bytes
  ["short line", 1, 131072, "containers-logs", "proj.svc.stdout", 280],
  ["empty body", 1, 131072, "containers-logs", "proj.svc.stderr", 0],
  ["channel above 255", 300, 131072, "x", "a.b.stdout", 50],
  ["non-ASCII names", 2, 131072, "ëxchange", "prøject.sërvice.stdout", 120],
  ["exactly one full frame", 1, 4096, "ex", "k.k.stdout", 4096 - 8],
  ["one byte over a frame", 1, 4096, "ex", "k.k.stdout", 4096 - 7],
  ["40000-byte line", 1, 4096, "ex", "k.k.stdout", 40000],
  ["3 MiB line", 1, 131072, "containers-logs", "p.s.stdout", 3 * 1024 * 1024],
];

for (const [name, channel, frameMax, exchange, key, size] of CASES) {
  Deno.test(`PublishFrames: same bytes as amqplib: ${name}`, () => {
    const b = body(size);
    const id = "0123456789ab0kxw3p1z4q9m61";
    const frames = new PublishFrames(channel, exchange, frameMax, CONTENT_TYPE);
    frames.append(key, b, id);
    const ours = frames.take();
    assert.equal(frames.pending, 0);
    assert.deepEqual(Buffer.from(ours), amqplibBytes(channel, frameMax, exchange, key, b, id));
  });
}

Deno.test("PublishFrames: a pass is the messages' frames back to back; taken bytes stay", () => {
  const frames = new PublishFrames(1, "containers-logs", 131072, CONTENT_TYPE);
  const expected: Buffer[] = [];
  const taken: { view: Buffer; copy: Buffer }[] = [];
  // Enough passes and sizes to fill several slabs, one message longer than a slab among them.
  for (let pass = 0; pass < 40; pass++) {
    const want: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const size = pass === 17 && i === 3 ? 600_000 : 100 + ((pass * 50 + i) % 400);
      const b = body(size, pass + i);
      const key = `p${pass % 3}.s${i % 5}.stdout`;
      const id = `id-${pass}-${i}`;
      frames.append(key, b, id);
      want.push(amqplibBytes(1, 131072, "containers-logs", key, b, id));
    }
    const view = frames.take();
    const all = Buffer.concat(want);
    assert.deepEqual(Buffer.from(view), all);
    expected.push(all);
    taken.push({ view, copy: Buffer.from(view) });
  }
  for (const t of taken) assert.deepEqual(Buffer.from(t.view), t.copy);
});

Deno.test("PublishFrames: a slab is used again only once every view of it was written", () => {
  const frames = new PublishFrames(1, "containers-logs", 131072, CONTENT_TYPE);
  const unwritten: { view: Buffer; copy: Buffer }[] = [];
  const slabs = new Set<ArrayBufferLike>();
  let pending: Buffer[] = [];
  for (let pass = 0; pass < 400; pass++) {
    for (let i = 0; i < 20; i++) {
      const size = pass === 170 && i === 3 ? 600_000 : 100 + ((pass * 20 + i) % 900);
      frames.append(`p${pass % 3}.s.stdout`, body(size, pass + i), `id-${pass}-${i}`);
    }
    const view = frames.take();
    slabs.add(view.buffer);
    // Every 37th pass is never reported written; the others are, a few passes late.
    if (pass % 37 === 0) unwritten.push({ view, copy: Buffer.from(view) });
    else pending.push(view);
    if (pending.length > 3) {
      for (const v of pending) frames.written(v);
      pending = [];
    }
  }
  for (const u of unwritten) assert.deepEqual(Buffer.from(u.view), u.copy);
  // ~4 MB of frames went through: slabs were reused, not one new 256 KiB slab per 256 KiB.
  assert.ok(slabs.size < 4 + unwritten.length + 2, `${slabs.size} slabs`);
});

Deno.test("PublishFrames: with every pass written at once, one slab serves them all", () => {
  const frames = new PublishFrames(1, "containers-logs", 131072, CONTENT_TYPE);
  const slabs = new Set<ArrayBufferLike>();
  for (let pass = 0; pass < 100; pass++) {
    for (let i = 0; i < 30; i++) frames.append("p.s.stdout", body(300, i), `id-${pass}-${i}`);
    const view = frames.take();
    slabs.add(view.buffer);
    assert.equal(view.byteOffset, 0);
    frames.written(view);
  }
  assert.equal(slabs.size, 1);
});

Deno.test("PublishFrames: names over 255 bytes are refused and append nothing", () => {
  const frames = new PublishFrames(1, "ex", 131072, CONTENT_TYPE);
  assert.throws(() => frames.append("k".repeat(256), body(10), "id"), TypeError);
  assert.throws(() => frames.append("k", body(10), "i".repeat(256)), TypeError);
  assert.throws(() => frames.append("k", body(10), "é".repeat(128)), TypeError);
  assert.equal(frames.pending, 0);
  assert.throws(() => new PublishFrames(1, "e".repeat(256), 131072, CONTENT_TYPE), TypeError);
});

/**
 * Heap bytes still in use (after a full collection) once `PublishFrames` encoded one message for
 * each of `keys` routing keys never seen before, measured in a `deno` of its own that may force
 * collections.
 */
async function heapAfterNewKeys(keys: number): Promise<number> {
  const module = new URL("../../lib/amqp/publish_frames.ts", import.meta.url).href;
  const script = `
    import { PublishFrames } from ${JSON.stringify(module)};
    const body = new Uint8Array(200);
    const churn = (frames, tag) => {
      for (let n = 0; n < ${keys} / 100; n++) {
        for (let i = 0; i < 100; i++) {
          frames.append("standalone." + tag + "-" + (n * 100 + i) + ".stdout", body, "id-" + i);
        }
        frames.written(frames.take());
      }
    };
    const open = () => new PublishFrames(1, "containers-logs", 131072, "application/json");
    // The same code on another instance first, gone before the measure (a function's frame, not
    // the module's, held it): compiled code is not what is measured.
    (() => churn(open(), "warm-up"))();
    const frames = open();
    gc(); gc();
    const before = Deno.memoryUsage().heapUsed;
    churn(frames, "churned");
    gc(); gc();
    const grown = Deno.memoryUsage().heapUsed - before;
    // The instance is still in use: whatever it keeps is counted.
    frames.append("standalone.last.stdout", body, "id");
    console.log(grown);
  `;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", "--v8-flags=--expose-gc", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  assert.equal(code, 0, text.decode(stderr));
  return Number(text.decode(stdout).trim());
}

Deno.test("PublishFrames: keeps nothing per routing key (a churned container's key is let go of)", async () => {
  // Each churned container publishes under a key of its own; a method frame kept per key grew
  // the heap by ~290 bytes per container (860 KB here) up to a cap of 4096 keys.
  const grown = await heapAfterNewKeys(3000);
  assert.ok(grown < 100_000, `the heap grew by ${grown} bytes over 3000 new routing keys`);
});
