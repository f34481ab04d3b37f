/**
 * The two physical limits karotten sits between, measured with the same parts it uses: the
 * engine's logs read through our HTTP client and demuxed, and a bare amqplib loop publishing
 * real envelopes with publisher confirms.
 * @module
 */
import { Buffer } from "node:buffer";
import { DEFAULT_TUNING } from "../lib/config.ts";
import type { DockerClient } from "../lib/docker/api.ts";
import { FrameDemuxer } from "../lib/docker/frames.ts";
import { delay } from "../lib/async/delay.ts";
import type { ContainerIdentity } from "../lib/message.ts";
import { EnvelopeEncoder, messageId } from "../lib/message.ts";
import type { ConnectionPool } from "../lib/docker/conn.ts";
import { httpGet } from "../lib/docker/http.ts";
import type { BenchBinding } from "./_broker.ts";
import { CpuMeter } from "./_proc.ts";

/** Longest run of one measurement. */
export const MEASURE_TIMEOUT_MS = 120_000;

/** A read of one container's whole log. */
export interface ReadRate {
  /** Complete lines (frames ending in a newline) counted. */
  lines: number;
  /** Body bytes read (frame headers and timestamps included). */
  bytes: number;
  /** From the request to the last expected line. */
  seconds: number;
}

/**
 * Reads the log of an exited container (follow ends with the log) through our HTTP client,
 * with `timestamps=1` as karotten asks, demuxes the frames and counts lines and bytes; nothing
 * else is done with them. The clock stops at the `expectLines`-th line.
 */
export async function readLogs(
  pool: ConnectionPool,
  id: string,
  expectLines: number,
): Promise<ReadRate> {
  const signal = AbortSignal.timeout(MEASURE_TIMEOUT_MS);
  const start = performance.now();
  const res = await httpGet(
    pool,
    `/containers/${id}/logs?follow=1&stdout=1&stderr=1&timestamps=1`,
    { signal, headerTimeoutMs: DEFAULT_TUNING.headerTimeoutMs },
  );
  let lines = 0;
  let bytes = 0;
  let end = 0;
  const demux = new FrameDemuxer((_stream, payload) => {
    if (payload.length > 0 && payload[payload.length - 1] === 10) lines++;
  });
  try {
    for await (const piece of res.body()) {
      bytes += piece.length;
      demux.push(piece);
      if (lines >= expectLines) {
        end = performance.now();
        break;
      }
    }
  } finally {
    res.cancel();
  }
  if (lines < expectLines) {
    throw new Error(`Cannot measure the read rate: the log ended after ${lines} of ${expectLines}`);
  }
  return { lines, bytes, seconds: (end - start) / 1000 };
}

/** A run of the bare publish loop. */
export interface PublishRate {
  /** Messages published and confirmed. */
  messages: number;
  /** Bytes of the largest body. */
  bodyBytes: number;
  /** From the first publish to the last confirm. */
  seconds: number;
  /** CPU time of this process per message, µs (the loop, amqplib, envelope building). */
  cpuUsPerMessage: number;
  /** CPU per message of each process watched (`loop` is this one), and `machine`, µs. */
  cpuUs: Record<string, number>;
  /** Busy share of all the machine's CPUs during the run, 0–1. */
  machineBusy: number;
}

/** Properties karotten publishes with (`lib/amqp/connection.ts`), but the message id. */
const PUBLISH_OPTIONS = { contentType: "application/json", persistent: true };

/** The properties of one message, as karotten sets them: with its message id. */
function publishOptions(
  containerId: string,
  timestamp: string,
  seq: number,
): { contentType: string; persistent: boolean; messageId: string } {
  return { ...PUBLISH_OPTIONS, messageId: messageId(containerId, timestamp, seq) };
}

/**
 * Publishes `n` envelopes of `lineBytes`-byte lines (newline not included, as karotten strips
 * it) into the binding's exchange on a confirm channel, with karotten's window of unconfirmed
 * messages and the channel's ack events, building each envelope as it goes. Resolves when the
 * last one is confirmed.
 */
export async function publishLoop(
  binding: BenchBinding,
  identity: ContainerIdentity,
  n: number,
  lineBytes: number,
  watch: Record<string, number | undefined> = {},
  withIds = true,
): Promise<PublishRate> {
  const ch = await binding.confirmChannel();
  const encoder = new EnvelopeEncoder(identity, "stdout");
  const window = DEFAULT_TUNING.publishWindow;
  const width = String(n).length;
  const line = new TextEncoder().encode(
    `${"0".repeat(width)} ${"x".repeat(lineBytes - width - 1)}`,
  );
  const timestamp = "2026-11-25T20:24:44.123456789Z";
  const settled = new Uint8Array(n + 1);
  let sent = 0;
  let confirmed = 0;
  let lowest = 1;
  let writable = true;
  let bodyBytes = 0;
  const done = Promise.withResolvers<void>();
  const pump = () => {
    while (writable && sent - confirmed < window && sent < n) {
      sent++;
      writeNumber(line, sent, width);
      const body: Buffer = encoder.encode(timestamp, line);
      if (body.length > bodyBytes) bodyBytes = body.length;
      const options = withIds
        ? publishOptions(identity.containerId, timestamp, sent)
        : PUBLISH_OPTIONS;
      if (!ch.publish(binding.exchange, encoder.routingKey, body, options)) {
        writable = false;
      }
    }
  };
  const settle = (tag: number) => {
    if (tag > 0 && tag <= n && settled[tag] === 0) {
      settled[tag] = 1;
      confirmed++;
    }
  };
  ch.on("ack", (f: { deliveryTag: number; multiple: boolean }) => {
    if (f.multiple) {
      for (let t = lowest; t <= f.deliveryTag; t++) settle(t);
      lowest = Math.max(lowest, f.deliveryTag + 1);
    } else settle(f.deliveryTag);
    if (confirmed === n) done.resolve();
    else pump();
  });
  ch.on("nack", (f: { deliveryTag: number }) => {
    done.reject(new Error(`the broker nacked message ${f.deliveryTag}`));
  });
  ch.on("drain", () => {
    writable = true;
    pump();
  });
  ch.on("error", (err: Error) => done.reject(err));
  const timer = setTimeout(
    () => done.reject(new Error(`publish loop: ${confirmed} of ${n} confirmed in time`)),
    MEASURE_TIMEOUT_MS,
  );
  const disturbed = binding.disturbed;
  const onDisturbed = () => done.reject(disturbed.reason);
  disturbed.addEventListener("abort", onDisturbed, { once: true });
  const meter = new CpuMeter({ loop: Deno.pid, ...watch });
  const start = performance.now();
  try {
    pump();
    await done.promise;
  } finally {
    clearTimeout(timer);
    disturbed.removeEventListener("abort", onDisturbed);
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = meter.take();
  await ch.close();
  return {
    messages: n,
    bodyBytes,
    seconds,
    cpuUsPerMessage: (cpu.loop / n) * 1e6,
    cpuUs: perItem(cpu, n),
    machineBusy: cpu.machine / (seconds * navigator.hardwareConcurrency),
  };
}

/** Writes `value` as `width` zero-padded ASCII digits at the start of `buf`. */
function writeNumber(buf: Uint8Array, value: number, width: number): void {
  let v = value;
  for (let i = width - 1; i >= 0; i--) {
    buf[i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
}

/** CPU seconds by process → µs per item. */
export function perItem(cpu: Record<string, number>, n: number): Record<string, number> {
  return Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, (v / n) * 1e6]));
}

/** A run of the bare shipper. */
export interface ShipRate {
  /** Lines shipped (the queue held this many at the end). */
  lines: number;
  /** From the first message seen in the queue to the last. */
  seconds: number;
  /** Lines in the queue when the first was seen. */
  before: number;
  /** CPU per line of this process (`shipper`) and each process watched, and `machine`, µs. */
  cpuUs: Record<string, number>;
  /** Busy share of all the machine's CPUs during the run, 0–1. */
  machineBusy: number;
}

/** Lines the bare shipper holds, read and not yet published, before it stops reading. */
const SHIPPER_BACKLOG = 8192;

/**
 * The least a shipper can do, in this process: follow `id` through our client, demux, cut lines,
 * build envelopes and publish them with a bare amqplib loop (window and confirms as karotten),
 * reading only while fewer than 8192 lines wait. Measured like karotten end to end (queue depth
 * polled until it holds `n`), so the ratio of the two is karotten's own overhead on this machine.
 */
export async function bareShipper(
  docker: DockerClient,
  binding: BenchBinding,
  id: string,
  identity: ContainerIdentity,
  n: number,
  watch: Record<string, number | undefined> = {},
): Promise<ShipRate> {
  const signal = AbortSignal.timeout(MEASURE_TIMEOUT_MS);
  const ch = await binding.confirmChannel();
  const encoders = {
    stdout: new EnvelopeEncoder(identity, "stdout"),
    stderr: new EnvelopeEncoder(identity, "stderr"),
  };
  const window = DEFAULT_TUNING.publishWindow;
  const backlog: { key: string; body: Buffer; ts: string; seq: number }[] = [];
  let head = 0;
  let sent = 0;
  let confirmed = 0;
  let lowest = 1;
  let writable = true;
  let room: PromiseWithResolvers<void> | undefined;
  const settled = new Uint8Array(n + window + 1);
  const pump = () => {
    while (writable && sent - confirmed < window && head < backlog.length) {
      const m = backlog[head++];
      sent++;
      const options = publishOptions(identity.containerId, m.ts, m.seq);
      if (!ch.publish(binding.exchange, m.key, m.body, options)) writable = false;
    }
    if (head > 4096) {
      backlog.splice(0, head);
      head = 0;
    }
    if (room && backlog.length - head < SHIPPER_BACKLOG) {
      room.resolve();
      room = undefined;
    }
  };
  ch.on("ack", (f: { deliveryTag: number; multiple: boolean }) => {
    const settle = (t: number) => {
      if (t > 0 && t < settled.length && settled[t] === 0) {
        settled[t] = 1;
        confirmed++;
      }
    };
    if (f.multiple) {
      for (let t = lowest; t <= f.deliveryTag; t++) settle(t);
      lowest = Math.max(lowest, f.deliveryTag + 1);
    } else settle(f.deliveryTag);
    pump();
  });
  ch.on("drain", () => {
    writable = true;
    pump();
  });
  const disturbed = AbortSignal.any([signal, binding.disturbed]);
  const onDisturbed = () => room?.reject(disturbed.reason);
  disturbed.addEventListener("abort", onDisturbed, { once: true });
  let lastTs = "";
  let seq = 0;
  const meter = new CpuMeter({ shipper: Deno.pid, ...watch });
  const start = performance.now();
  const entries = await docker.logs(id, { kind: "beginning" }, {
    tty: false,
    maxLineBytes: 1 << 20,
  }, signal);
  let read = 0;
  let first: { at: number; count: number } | undefined;
  let end = 0;
  // Settled as a value, so that its failure is not an unhandled rejection while the reads run.
  const counting = (async (): Promise<unknown> => {
    for (;;) {
      const count = await binding.count();
      const at = performance.now();
      if (count > 0 && first === undefined) first = { at, count };
      if (count >= n) {
        end = at;
        return undefined;
      }
      binding.disturbed.throwIfAborted();
      if (signal.aborted) throw new Error(`bare shipper: the queue holds ${count} of ${n}`);
      await delay(20);
    }
  })().then(() => undefined, (err: unknown) => err ?? new Error("bare shipper: count failed"));
  try {
    for await (const batch of entries) {
      for (const { stream, ts, message } of batch) {
        const enc = encoders[stream];
        seq = ts === lastTs ? seq + 1 : 1;
        lastTs = ts;
        backlog.push({ key: enc.routingKey, body: enc.encode(ts, message), ts, seq });
      }
      read = sent + backlog.length - head;
      pump();
      while (backlog.length - head >= SHIPPER_BACKLOG) {
        room = Promise.withResolvers<void>();
        await room.promise;
      }
      if (read >= n) break;
    }
  } finally {
    disturbed.removeEventListener("abort", onDisturbed);
  }
  const failed = await counting;
  if (failed !== undefined) throw failed;
  const cpu = meter.take();
  await ch.close();
  return {
    lines: n,
    seconds: (end - first!.at) / 1000,
    before: first!.count,
    cpuUs: perItem(cpu, n),
    machineBusy: cpu.machine / ((end - start) / 1000 * navigator.hardwareConcurrency),
  };
}
