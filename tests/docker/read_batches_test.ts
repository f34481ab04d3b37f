import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/api.ts";
import { ConnectionPool } from "../../lib/docker/conn.ts";
import { READ_MAX_BYTES, READ_MIN_BYTES, ReadSize } from "../../lib/docker/http.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { api, chunkBytes, chunkEnd, FakeEngine, frame, write } from "../helpers/fake_engine.ts";
import { startEngine, TEST_IMAGE } from "../helpers/engine.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `count` log entries from `first` on, each in a chunk of its own, as the engine sends them. */
function entryChunks(first: number, count: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let n = first; n < first + count; n++) {
    parts.push(chunkBytes(frame(1, `2026-01-01T00:00:00.${String(n).padStart(9, "0")}Z ${n}\n`)));
  }
  return concatBytes(parts);
}

Deno.test("the chunks of one socket read come as one batch, not one per engine entry", async () => {
  // Groups small enough for the first reads (READ_MIN_BYTES, the head included).
  const PER_WRITE = 8;
  const WRITES = 3;
  const engine = await FakeEngine.start();
  // The test lets the engine write the next group only once the last one came out, so every
  // group arrives in a read of its own: the head's read, then body reads of READ_MIN_BYTES.
  const wanted: PromiseWithResolvers<void>[] = [];
  for (let i = 0; i < WRITES; i++) wanted.push(Promise.withResolvers<void>());
  engine.route(api("/containers/[0-9a-f]+/logs"), async (_req, conn) => {
    const head = encoder.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (let i = 0; i < WRITES; i++) {
      await wanted[i].promise;
      const body = entryChunks(i * PER_WRITE + 1, PER_WRITE);
      const bytes = i === 0 ? concatBytes([head, body]) : body;
      assert.ok(bytes.length <= READ_MIN_BYTES, `a group of ${bytes.length} bytes fits one read`);
      await write(conn, bytes);
    }
    await chunkEnd(conn);
    return "close";
  });
  const pool = new ConnectionPool(engine.sock, { maxIdle: 1, idleTimeoutMs: 5_000 });
  try {
    const docker = new DockerClient(pool, 10_000);
    wanted[0].resolve();
    const stream = await docker.logsUntilNow(
      "0123456789ab",
      { kind: "beginning" },
      { tty: false, maxLineBytes: 16_384 },
      AbortSignal.timeout(30_000),
    );
    const sizes: number[] = [];
    let expected = 1;
    for await (const batch of stream) {
      if (batch.length === 0) continue;
      sizes.push(batch.length);
      for (const entry of batch) {
        assert.equal(decoder.decode(entry.message), String(expected));
        expected++;
      }
      wanted[sizes.length]?.resolve();
    }
    assert.equal(stream.flush().length, 0);
    assert.deepEqual(sizes, Array(WRITES).fill(PER_WRITE));
  } finally {
    pool.clear();
    await engine.close();
  }
});

Deno.test("a long log read from a real engine comes whole and in order across many reads", async () => {
  const LINES = 20_000;
  const engine = await startEngine();
  const pool = new ConnectionPool(engine.sock, { maxIdle: 1, idleTimeoutMs: 5_000 });
  try {
    const id = await engine.run(TEST_IMAGE, "seq", "1", String(LINES));
    await engine.docker("wait", id);
    const docker = new DockerClient(pool, 10_000);
    const stream = await docker.logsUntilNow(
      id,
      { kind: "beginning" },
      { tty: false, maxLineBytes: 16_384 },
      AbortSignal.timeout(60_000),
    );
    let expected = 1;
    for await (const batch of stream) {
      for (const entry of batch) {
        assert.equal(decoder.decode(entry.message), String(expected));
        expected++;
      }
    }
    assert.equal(stream.flush().length, 0);
    assert.equal(expected - 1, LINES);
  } finally {
    pool.clear();
    await engine.stop();
  }
});

Deno.test("read sizes double on full reads up to the most, and halve back on small ones", () => {
  const size = new ReadSize();
  assert.equal(size.bytes, READ_MIN_BYTES);
  const seen = [size.bytes];
  while (size.bytes < READ_MAX_BYTES) {
    size.after(size.bytes);
    seen.push(size.bytes);
  }
  assert.deepEqual(seen, seen.map((_, i) => READ_MIN_BYTES * 2 ** i));
  size.after(READ_MAX_BYTES);
  assert.equal(size.bytes, READ_MAX_BYTES);
  // A read of a quarter or more keeps the size; under a quarter halves it, down to the least.
  size.after(READ_MAX_BYTES / 4);
  assert.equal(size.bytes, READ_MAX_BYTES);
  for (let i = 0; i < 20; i++) size.after(1);
  assert.equal(size.bytes, READ_MIN_BYTES);
});

Deno.test("a follow stream that waited with a small read takes a 1 MiB burst whole and in order", async () => {
  const LINES = 170_000; // `seq 1 170000`: 1,078,895 bytes
  const engine = await startEngine();
  const pool = new ConnectionPool(engine.sock, { maxIdle: 1, idleTimeoutMs: 5_000 });
  try {
    // Silent until it is told to print: the stream is followed, idle, before the burst.
    const id = await engine.run(
      TEST_IMAGE,
      "sh",
      "-c",
      `while [ ! -e /go ]; do sleep 0.1; done; seq 1 ${LINES}`,
    );
    const docker = new DockerClient(pool, 10_000);
    const stream = await docker.logs(
      id,
      { kind: "beginning" },
      { tty: false, maxLineBytes: 16_384 },
      AbortSignal.timeout(120_000),
    );
    await engine.docker("exec", id, "touch", "/go");
    let expected = 1;
    let bytes = 0;
    for await (const batch of stream) {
      for (const entry of batch) {
        assert.equal(decoder.decode(entry.message), String(expected));
        bytes += entry.message.length + 1;
        expected++;
      }
    }
    assert.equal(stream.flush().length, 0);
    assert.equal(expected - 1, LINES);
    assert.ok(bytes > 1024 * 1024, `${bytes} bytes`);
  } finally {
    pool.clear();
    await engine.stop();
  }
});
