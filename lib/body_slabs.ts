/**
 * Message bodies cut from shared slabs, and the slabs used again once every body cut from them
 * has been let go: a burst of lines makes no body garbage for the collector.
 *
 * A small body is a view into a 64 KiB slab (one allocation per 64 KiB of bodies instead of one
 * per line). The slab counts its bodies; `releaseBody()` says one is let go for good (the queue
 * calls it when the broker confirmed it or when drop mode refused it). A slab whose count falls to
 * zero is written over: the current one from its start, a full one kept as a spare. A body never
 * released (a reader stopped while it waited for room) only keeps its slab from reuse: that slab
 * is the collector's, as before. Larger bodies get their own buffer and are not counted.
 * @module
 */
import { Buffer } from "node:buffer";

/** Bodies up to this size are cut from a shared slab; larger ones get their own buffer. */
export const SLAB_BODY_MAX = 4096;
/** Bytes of a body slab. */
export const BODY_SLAB_BYTES = 64 * 1024;
/** Emptied full slabs kept for reuse (1 MiB; beyond these, the GC takes them). */
const SPARE_SLABS = 16;

let slab = new ArrayBuffer(BODY_SLAB_BYTES);
let slabAt = 0;
/**
 * Bodies cut and not yet released, by slab (a slab with none is absent). Weak: a slab whose
 * bodies are all gone without a release is the collector's.
 */
const live = new WeakMap<ArrayBufferLike, number>();
/** Bodies cut and not yet released, in all (tests). */
let liveCount = 0;
const spare: ArrayBuffer[] = [];

/** A `Buffer` of `size` bytes for one message body; see the module doc. */
export function bodyBuffer(size: number): Buffer {
  if (size > SLAB_BODY_MAX) return Buffer.allocUnsafe(size);
  if (slabAt + size > BODY_SLAB_BYTES) {
    const full = slab;
    slab = spare.pop() ?? new ArrayBuffer(BODY_SLAB_BYTES);
    slabAt = 0;
    if (!live.has(full)) keep(full);
  }
  const out = Buffer.from(slab, slabAt, size);
  slabAt += size;
  live.set(slab, (live.get(slab) ?? 0) + 1);
  liveCount++;
  return out;
}

/**
 * `body` (from `bodyBuffer`) is let go for good: nothing reads it any more. Call at most once per
 * body; a body from anywhere else is ignored.
 */
export function releaseBody(body: Uint8Array): void {
  const from = body.buffer;
  const left = live.get(from);
  if (left === undefined) return;
  liveCount--;
  if (left > 1) {
    live.set(from, left - 1);
    return;
  }
  live.delete(from);
  if (from === slab) slabAt = 0;
  else keep(from as ArrayBuffer);
}

/** Bodies cut from slabs and not released yet (tests). */
export function liveBodies(): number {
  return liveCount;
}

function keep(emptied: ArrayBuffer): void {
  if (spare.length < SPARE_SLABS) spare.push(emptied);
}
