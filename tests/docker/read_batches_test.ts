import assert from "node:assert/strict";
import { DockerClient } from "../../lib/docker/api.ts";
import { ConnectionPool } from "../../lib/docker/conn.ts";
import { startEngine, TEST_IMAGE } from "../helpers/engine.ts";

const LINES = 20_000;

Deno.test("a log read comes as one batch per socket read, not one per engine entry, whole and in order", async () => {
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
    const decoder = new TextDecoder();
    let batches = 0;
    let expected = 1;
    for await (const batch of stream) {
      if (batch.length > 0) batches++;
      for (const entry of batch) {
        assert.equal(decoder.decode(entry.message), String(expected));
        expected++;
      }
    }
    assert.equal(stream.flush().length, 0);
    assert.equal(expected - 1, LINES);
    // The engine sends each entry in a chunk of its own; reads of 4 KiB and more hold hundreds.
    assert.ok(batches < LINES / 20, `${batches} batches for ${LINES} lines`);
  } finally {
    pool.clear();
    await engine.stop();
  }
});
