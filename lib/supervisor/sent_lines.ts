/**
 * The lines a tail sent lately, kept small (stream, timestamp, hash and length of the message,
 * count), so that a follow stream the engine ended early can be completed from a full read of the
 * container's log without sending a line twice.
 *
 * Why: Podman 4.3 stops its log tailer 250 ms after the container died, and from then on drops
 * every line its reader does not take at once: the lines a follow stream delivers are a complete
 * prefix of the log, then a sparse pick of the rest. A non-follow read of a stopped container is
 * complete. The lines sent since the oldest one kept here (the floor) are a subsequence, in log
 * order, of what that read returns after the floor: walking both in order, every read line that is
 * not the next kept one was never sent.
 *
 * A dockerd follow stream that ends early ends after a complete prefix of the log (its reader
 * reads the log file in order and stops at an end of it): what such a completion must still find
 * is a line written after the last one sent but timestamped before it (stdout and stderr are
 * timestamped apart; seen here 48 ms and 7,159 lines out of order in a 400,000-line burst). So
 * for a prefix stream the record keeps only the lines within `REORDER_WINDOW_NS` of the newest
 * sent timestamp, not the last `SENT_LINES_KEPT`: a steady writer keeps about a second of lines.
 * A sparse stream (Podman) lets go of the lines read before an inspect found the run still
 * running (its tailer still followed then, see `held_lines.ts`): `letGo`, or as a party of the
 * stream's `RunProof`.
 * @module
 */
import { compareTimestamps } from "../time.ts";
import type { Position } from "../positions.ts";
import type { ProofParty } from "./run_proof.ts";

/**
 * Timestamps are kept split: the engine's form (`2026-11-25T20:24:44.123456789Z`) as its second
 * (`2026-11-25T20:24:44.`, one string shared by the lines of that second) and its nanoseconds (a
 * number), about 21 bytes a line in all instead of 81 with a string per line; any other form is
 * kept whole.
 */
const SECOND_LENGTH = 20;
/** Length of the engine's form. */
const ENGINE_LENGTH = 30;
/** In the nanoseconds array: the line's timestamp is kept whole in the seconds array. */
const WHOLE = 0xffff_ffff;

/** Lines kept per tail; a longer sparse end than this cannot be completed exactly. */
export const SENT_LINES_KEPT = 20_000;
/** A sparse stream keeping this many lines asks for a proof that its engine still follows. */
export const SENT_PROOF_AT = 2_048;
/**
 * For a prefix stream: a kept line older than the newest sent timestamp by more than this is let
 * go of; a line written out of timestamp order by less is still completed. One second: a
 * timestamp's second and nanoseconds are kept apart, so the window is the second before the
 * newest one's from the same nanoseconds on (`#slide`).
 */
export const REORDER_WINDOW_NS = 1_000_000_000;
/**
 * Bytes a slot takes: hash, length, count and nanoseconds (4 each), stream (1), and the reference
 * to its second's string (8; the strings are shared by the lines of a second).
 */
export const SENT_SLOT_BYTES = 25;

/**
 * What a stopped container's follow stream delivered before it ended: `prefix`, a complete prefix
 * of its log (dockerd); `sparse`, a complete prefix, then any pick of the rest (Podman 4.3).
 */
export type SentShape = "prefix" | "sparse";
/**
 * Slots taken at the first line (doubled up to `SENT_LINES_KEPT` as lines come); a tail that
 * sent nothing keeps none (hundreds of silent containers).
 */
const INITIAL_SLOTS = 64;
const NO_WORDS = new Uint32Array(0);
const NO_BYTES = new Uint8Array(0);

/** One line as sent. */
export interface SentLine {
  /** 1 stdout, 2 stderr. */
  stream: 1 | 2;
  /** Its timestamp (9 fractional digits). */
  ts: string;
  /** Its message bytes. */
  message: Uint8Array;
}

/**
 * A ring of the last `capacity` lines sent, and the position just before the oldest; a party of
 * a sparse stream's proof (`run_proof.ts`): what an inspect proves is let go of.
 */
export class SentLines implements ProofParty {
  readonly #capacity: number;
  #hash: Uint32Array;
  #len: Uint32Array;
  #stream: Uint8Array;
  #seq: Uint32Array;
  /** Per line: its timestamp's second (shared), or the whole timestamp (see `WHOLE`). */
  #second: string[];
  #nanos: Uint32Array;
  #start = 0;
  #size = 0;
  /**
   * The position as of just before the oldest kept line: its timestamp split as the lines' are
   * (`#floorTs` is its text, undefined until asked for), and its count.
   */
  #floorSecond: string;
  #floorNanos: number;
  #floorTs: string | undefined;
  #floorCount: number;
  /** Let go of lines older than the window (a prefix stream). */
  readonly #windowed: boolean;
  /**
   * The newest timestamp recorded in the engine's form, split (`#newestSecond` "" before any),
   * and the second before it (a line of that second is in the window if its nanoseconds are not
   * below `#newestNanos`).
   */
  #newestSecond = "";
  #newestNanos = 0;
  #secondBefore = "";
  /** Lines recorded so far (a mark for `letGo`). */
  #recorded = 0;
  /** `#recorded` when the proof's inspect in flight started. */
  #proofMark = 0;

  /**
   * `floor`: the position the stream started from (copied); `shape`: what the stream delivers
   * (a prefix stream keeps a window, see the module doc). Grows to `capacity` as needed.
   */
  constructor(floor: Position, shape: SentShape = "sparse", capacity = SENT_LINES_KEPT) {
    this.#capacity = capacity;
    this.#windowed = shape === "prefix";
    this.#hash = NO_WORDS;
    this.#len = NO_WORDS;
    this.#stream = NO_BYTES;
    this.#seq = NO_WORDS;
    this.#second = [];
    this.#nanos = NO_WORDS;
    this.#floorTs = floor.ts;
    this.#floorNanos = engineNanos(floor.ts);
    this.#floorSecond = this.#floorNanos === WHOLE ? floor.ts : floor.ts.slice(0, SECOND_LENGTH);
    this.#floorCount = floor.count;
  }

  /** Lines kept. */
  get size(): number {
    return this.#size;
  }

  /** Slots held (kept lines and room for more). */
  get slots(): number {
    return this.#hash.length;
  }

  /** Lines recorded so far: a mark for `letGo`. */
  get recorded(): number {
    return this.#recorded;
  }

  /**
   * The lines recorded before `mark` (a reading of `recorded`) are known to be in the complete
   * prefix of the log (the engine still followed after they were read): they are let go of, and
   * the floor moves past them.
   */
  letGo(mark: number): void {
    let k = this.#size - (this.#recorded - mark);
    if (k <= 0) return;
    while (k-- > 0) this.#evictOldest();
    this.#shrink();
  }

  /** For the proof: an inspect starts. */
  marked(): void {
    this.#proofMark = this.#recorded;
  }

  /** For the proof: the lines recorded before the inspect started are let go of if it ran on. */
  found(running: boolean): void {
    if (running) this.letGo(this.#proofMark);
  }

  /** The position just before the oldest kept line: a complete read resumes after it. */
  get floor(): Position {
    this.#floorTs ??= joinTs(this.#floorSecond, this.#floorNanos);
    return { ts: this.#floorTs, count: this.#floorCount };
  }

  /**
   * Keeps a sent line and the count it was sent with (evicting the oldest when full, and for a
   * prefix stream the lines the window left behind).
   */
  record(line: SentLine, seq: number): void {
    const ts = line.ts;
    const nanos = engineNanos(ts);
    let second = ts;
    if (nanos !== WHOLE) {
      // Lines of one second share its string.
      const slots = this.#hash.length;
      const p = (this.#start + this.#size + slots - 1) % slots;
      const prev = this.#size > 0 && this.#nanos[p] !== WHOLE ? this.#second[p] : "";
      second = prev !== "" && ts.startsWith(prev) ? prev : ts.slice(0, SECOND_LENGTH);
      if (this.#windowed) this.#slide(second, nanos);
    }
    if (this.#size === this.#hash.length) {
      if (this.#size < this.#capacity) this.#resize(this.#grown());
      else this.#evictOldest();
    }
    const slots = this.#hash.length;
    const at = (this.#start + this.#size) % slots;
    this.#second[at] = second;
    this.#nanos[at] = nanos;
    this.#hash[at] = fnv1a32(line.message);
    this.#len[at] = line.message.length;
    this.#stream[at] = line.stream;
    this.#seq[at] = seq;
    this.#size++;
    this.#recorded++;
  }

  /** Lets go of the oldest kept line; the floor moves past it. */
  #evictOldest(): void {
    const i = this.#start;
    this.#advanceFloor(i);
    this.#start = (i + 1) % this.#hash.length;
    this.#size--;
  }

  /**
   * A line at (`second`, `nanos`) is recorded: the window moves up to it, and the oldest kept
   * lines it left behind are let go of (in the order sent, as the floor needs).
   */
  #slide(second: string, nanos: number): void {
    if (second === this.#newestSecond) {
      if (nanos > this.#newestNanos) this.#newestNanos = nanos;
    } else if (this.#newestSecond === "" || second > this.#newestSecond) {
      this.#newestSecond = second;
      this.#newestNanos = nanos;
      this.#secondBefore = secondBefore(second);
    }
    let evicted = false;
    while (this.#size > 0) {
      const i = this.#start;
      const n = this.#nanos[i];
      if (n === WHOLE) break;
      const s = this.#second[i];
      const old = s === this.#newestSecond
        ? false
        : s === this.#secondBefore
        ? n < this.#newestNanos
        : s < this.#secondBefore;
      if (!old) break;
      this.#evictOldest();
      evicted = true;
    }
    if (evicted) this.#shrink();
  }

  /** A ring left three-quarters empty gives back slots (halved until a quarter is used). */
  #shrink(): void {
    let slots = this.#hash.length;
    while (slots > INITIAL_SLOTS && this.#size <= slots / 4) slots = Math.ceil(slots / 2);
    if (slots < this.#hash.length) this.#resize(slots);
  }

  /** Twice the slots, or the first ones (at most `capacity`). */
  #grown(): number {
    return Math.min(this.#capacity, Math.max(INITIAL_SLOTS, this.#hash.length * 2));
  }

  /** Moves the kept lines, oldest first, into `slots` new slots (at least as many as kept). */
  #resize(slots: number): void {
    const held = this.#hash.length;
    const order = Array.from({ length: this.#size }, (_, k) => (this.#start + k) % held);
    const hash = new Uint32Array(slots);
    const len = new Uint32Array(slots);
    const stream = new Uint8Array(slots);
    const seq = new Uint32Array(slots);
    const second = new Array<string>(slots);
    const nanos = new Uint32Array(slots);
    order.forEach((i, k) => {
      hash[k] = this.#hash[i];
      len[k] = this.#len[i];
      stream[k] = this.#stream[i];
      seq[k] = this.#seq[i];
      second[k] = this.#second[i];
      nanos[k] = this.#nanos[i];
    });
    this.#hash = hash;
    this.#len = len;
    this.#stream = stream;
    this.#seq = seq;
    this.#second = second;
    this.#nanos = nanos;
    this.#start = 0;
  }

  /** The timestamp of the line in slot `i`, as recorded. */
  #tsAt(i: number): string {
    return joinTs(this.#second[i], this.#nanos[i]);
  }

  /**
   * The floor moves past the evicted line in slot `i` the way the tail's position moved past it
   * (an older line, count 0, did not move it). Engine-form timestamps are compared as numbers,
   * without building their text.
   */
  #advanceFloor(i: number): void {
    const seq = this.#seq[i];
    if (seq === 0) return;
    const second = this.#second[i];
    const nanos = this.#nanos[i];
    let order: number;
    let same = false;
    if (this.#floorCount === 0) order = 1;
    else if (nanos !== WHOLE && this.#floorNanos !== WHOLE) {
      const fs = this.#floorSecond;
      order = second === fs ? nanos - this.#floorNanos : second < fs ? -1 : 1;
      same = order === 0;
    } else {
      const ts = this.#tsAt(i);
      const floor = this.floor.ts;
      order = compareTimestamps(ts, floor);
      same = ts === floor;
    }
    if (order > 0) {
      this.#floorSecond = second;
      this.#floorNanos = nanos;
      this.#floorTs = undefined;
      this.#floorCount = seq;
    } else if (same && seq > this.#floorCount) this.#floorCount = seq;
  }

  /** Starts matching a complete read of the log against the kept lines (consumes them). */
  completion(): Completion {
    const kept: Kept[] = [];
    const slots = this.#hash.length;
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#start + k) % slots;
      kept.push({
        ts: this.#tsAt(i),
        hash: this.#hash[i],
        len: this.#len[i],
        stream: this.#stream[i],
        seq: this.#seq[i],
      });
    }
    this.#size = 0;
    return new Completion(this.floor, kept);
  }
}

interface Kept {
  ts: string;
  hash: number;
  len: number;
  stream: number;
  seq: number;
}

/**
 * Matches a complete read from the floor against the kept lines, in two passes over the same
 * read: `observe()` each line, then `next()` each line again, which says whether it was sent
 * already (undefined) or which count to send it with (never one already used at its timestamp).
 *
 * A kept line that the read does not hold at all from where the walk stands (a line joined
 * across a dropped piece; `held_lines.ts` keeps those from being sent) is passed over, so that
 * it does not hold up the lines after it.
 */
export class Completion {
  /** Where the kept lines begin: a complete read starts here (`since` its timestamp). */
  readonly floor: Position;
  /** The kept lines from the floor on; let go of once matched (pass 2 needs only `#used`). */
  #kept: Kept[];
  readonly #byLine: boolean;
  /** The read's lines after the floor, as keys (pass 1); let go of once matched. */
  #read: string[] = [];
  /** Per read line after the floor: never sent (decided after pass 1). */
  #fresh: boolean[] | undefined;
  #floorLeft = 0;
  #at = 0;
  #unmatched = 0;
  /**
   * Highest count used per timestamp (kept lines and lines sent by this completion); made once
   * the matching is done, so that it never lives beside the matching's own maps.
   */
  #used = new Map<string, number>();

  constructor(floor: Position, kept: Kept[]) {
    this.floor = floor;
    // A floor with a count is a line: the read starts at its timestamp (inclusive), and a kept
    // line older than it cannot be in the read. Without, it is an instant the engine filtered by.
    this.#byLine = floor.ts !== "" && floor.count > 0;
    this.#kept = this.#byLine ? kept.filter((k) => compareTimestamps(k.ts, floor.ts) >= 0) : kept;
    this.#floorLeft = floor.count;
  }

  /** Kept lines the read did not hold (sent cut, or lost to a longer sparse end than kept). */
  get unmatched(): number {
    return this.#unmatched;
  }

  /** Pass 1: the next line of the complete read. */
  observe(line: SentLine): void {
    if (this.#beforeFloor(line)) return;
    this.#read.push(keyOf(line.ts, line.stream, fnv1a32(line.message), line.message.length));
  }

  /** Pass 2, the same read again: undefined when sent already, else the count to send with. */
  next(line: SentLine): number | undefined {
    if (this.#fresh === undefined) {
      this.#fresh = this.#match();
      this.#floorLeft = this.floor.count;
      this.#used = this.#usedCounts();
      this.#kept = [];
    }
    if (this.#beforeFloor(line)) return undefined;
    // A read that grew since pass 1 (the container ran again): its new lines were never sent.
    const fresh = this.#fresh[this.#at++] ?? true;
    if (!fresh) return undefined;
    const seq = (this.#used.get(line.ts) ?? 0) + 1;
    this.#used.set(line.ts, seq);
    return seq;
  }

  /** Lines at or before the floor line (a read from its timestamp repeats them). */
  #beforeFloor(line: SentLine): boolean {
    if (!this.#byLine) return false;
    const c = compareTimestamps(line.ts, this.floor.ts);
    if (c < 0) return true;
    if (c === 0 && this.#floorLeft > 0) {
      this.#floorLeft--;
      return true;
    }
    return false;
  }

  /**
   * Walks the read and the kept lines in order; true for each read line never sent. Lets go of
   * the read's keys: nothing else needs them.
   */
  #match(): boolean[] {
    const read = this.#read;
    this.#read = [];
    const left = new Map<string, number>();
    for (const key of read) left.set(key, (left.get(key) ?? 0) + 1);
    const kept = this.#kept;
    const keptKey = (i: number) => {
      const k = kept[i];
      return keyOf(k.ts, k.stream, k.hash, k.len);
    };
    const fresh: boolean[] = [];
    let k = 0;
    // The key of `kept[k]`, made when `k` moves (not kept for every line at once).
    let next = k < kept.length ? keptKey(k) : "";
    for (const key of read) {
      while (k < kept.length && (left.get(next) ?? 0) === 0) {
        k++;
        this.#unmatched++;
        if (k < kept.length) next = keptKey(k);
      }
      if (k < kept.length && next === key) {
        k++;
        if (k < kept.length) next = keptKey(k);
        fresh.push(false);
      } else fresh.push(true);
      left.set(key, left.get(key)! - 1);
    }
    this.#unmatched += kept.length - k;
    return fresh;
  }

  /** The highest count of each timestamp among the floor and the kept lines. */
  #usedCounts(): Map<string, number> {
    const used = new Map<string, number>();
    if (this.#byLine) used.set(this.floor.ts, this.floor.count);
    for (const k of this.#kept) {
      if (k.seq > (used.get(k.ts) ?? 0)) used.set(k.ts, k.seq);
    }
    return used;
  }
}

function keyOf(ts: string, stream: number, hash: number, len: number): string {
  return `${ts}|${stream}|${hash}|${len}`;
}

/** The second before an engine-form second (`2026-11-25T20:24:44.` -> `...20:24:43.`). */
function secondBefore(second: string): string {
  const ms = Date.parse(`${second}000Z`);
  return Number.isNaN(ms) ? "" : new Date(ms - 1000).toISOString().slice(0, SECOND_LENGTH);
}

/** A timestamp from its split form (see `WHOLE`). */
function joinTs(second: string, nanos: number): string {
  return nanos === WHOLE ? second : second + String(nanos).padStart(9, "0") + "Z";
}

/**
 * The nanoseconds of a timestamp in the engine's form (`...T20:24:44.123456789Z`), or `WHOLE` for
 * any other form.
 */
function engineNanos(ts: string): number {
  if (ts.length !== ENGINE_LENGTH || ts.charCodeAt(ENGINE_LENGTH - 1) !== 90) return WHOLE;
  if (ts.charCodeAt(SECOND_LENGTH - 1) !== 46) return WHOLE; // "."
  let n = 0;
  for (let i = SECOND_LENGTH; i < ENGINE_LENGTH - 1; i++) {
    const d = ts.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return WHOLE;
    n = n * 10 + d;
  }
  return n;
}

/** FNV-1a, 32 bits, of the bytes. */
function fnv1a32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
