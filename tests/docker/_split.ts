/**
 * Test helper: the ways to feed a byte stream to a push decoder in pieces.
 * @module
 */

/** One way to cut a fixture, with a label for failure messages. */
export interface Split {
  /** E.g. "whole", "bytewise", "cut at 17", "random seed=42". */
  label: string;
  /** Fresh buffers, as a socket reader would hand them out. */
  parts: Uint8Array[];
}

/** Options of {@link splits}. */
export interface SplitOptions {
  /** Feed one byte at a time. @default true */
  bytewise?: boolean;
  /** Two pieces cut at these offsets; `"all"` for every offset. @default "all" */
  cuts?: "all" | number[];
  /** Seeds for random splits. @default 20 fixed seeds plus one varying per run */
  seeds?: number[];
  /** Largest random piece. @default 64 */
  maxPiece?: number;
}

/** A run-varying seed, printed in labels so a failure can be replayed. */
export const RUN_SEED = Date.now() % 0x1_0000_0000;

/** Seeded PRNG (mulberry32): uniform numbers in [0, 1). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

/** Joins pieces (re-exported for the decoder tests). */
export { concatBytes as concat } from "../../lib/bytes.ts";

/** Random pieces of 0..maxPiece bytes (empty pushes included), each a fresh buffer. */
export function randomPieces(bytes: Uint8Array, seed: number, maxPiece = 64): Uint8Array[] {
  const next = random(seed);
  const parts: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = Math.floor(next() * (maxPiece + 1));
    parts.push(bytes.slice(at, at + size));
    at += size;
  }
  return parts;
}

/** Whole, byte by byte, cut in two at each offset, and random pieces: each as fresh buffers. */
export function* splits(bytes: Uint8Array, opts: SplitOptions = {}): Generator<Split> {
  yield { label: "whole", parts: [bytes.slice()] };
  if (opts.bytewise ?? true) {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i++) parts.push(bytes.slice(i, i + 1));
    yield { label: "bytewise", parts };
  }
  const cuts = opts.cuts ?? "all";
  const offsets = cuts === "all" ? Array.from({ length: bytes.length + 1 }, (_, i) => i) : cuts;
  for (const at of offsets) {
    yield { label: `cut at ${at}`, parts: [bytes.slice(0, at), bytes.slice(at)] };
  }
  const seeds = opts.seeds ?? [...Array.from({ length: 20 }, (_, i) => i + 1), RUN_SEED];
  for (const seed of seeds) {
    yield { label: `random seed=${seed}`, parts: randomPieces(bytes, seed, opts.maxPiece) };
  }
}

/** ASCII/UTF-8 text to bytes. */
export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Bytes to text (UTF-8). */
export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
