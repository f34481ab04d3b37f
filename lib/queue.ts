/**
 * The bounded message buffer between the Docker readers and the AMQP publisher: the only state
 * they share.
 *
 * ```
 *  readers --offer()/add()--> ring [ held: unpublished / in flight / confirmed ] --> publisher
 *                              | per container: its messages linked in order        next()
 *                              + containers with unpublished messages, in rotation -> markPublished()
 *                                head advances only past confirmed slots <-- confirm()/nack()
 * ```
 *
 * A ring of `capacity` slots addressed by absolute positions (`pos % capacity`). A message keeps
 * its slot until the broker confirms it, so published-but-unconfirmed messages count against the
 * capacity. The publisher takes one message per container in turn (`next()` rotates between the
 * containers that have unpublished messages), each container's oldest unpublished first: a quiet
 * container's line waits one round, not behind the whole buffer. Confirms may come out of order;
 * the head (and `onConfirmed`) advances in ring order, which keeps every container's order. A
 * nack makes the message unpublished again and first in its container's line. Every operation
 * is O(1) amortized and allocates nothing per message (typed-array links between slots).
 *
 * Bounded twice: at most `capacity` messages and `budgetBytes` of bodies (one add and one
 * subtract per message); a single body larger than the budget is taken into an empty queue.
 * Readers either `offer()` (drop mode: a refused message is counted against its container) or
 * `add()` with their `Lane` (pause mode): once one found no room, they take turns for the room
 * that frees (`Turns`), so a burst cannot hold back the other containers.
 * @module
 */
import type { Buffer } from "node:buffer";
import { releaseBody } from "./body_slabs.ts";
import { type Lane, Turns } from "./turns.ts";

/** One message to publish. */
export interface OutMessage {
  /** AMQP routing key. */
  routingKey: string;
  /** The message body (a node `Buffer`, as amqplib requires). */
  body: Buffer;
  /** Full container id. */
  containerId: string;
  /** The engine's RFC3339Nano timestamp of the line. */
  timestamp: string;
  /** 1-based count of this container's messages at this exact timestamp. */
  seq: number;
  /** AMQP `message_id`, deterministic per line (`messageId` in `message.ts`). */
  messageId: string;
}

/** Counts of messages refused by `offer()`, by the state the queue was in. */
export interface DropCounts {
  /** Refused because the queue was full. */
  full: number;
  /** Refused because the queue was full while the broker blocked publishing. */
  blocked: number;
}

/** One container's refused messages. */
export interface ContainerDrops extends DropCounts {
  /** The routing key of its first refused message (names the container in reports). */
  key: string;
}

/** What `takeDropped()` returns: the totals and the counts of each container that lost any. */
export interface DropReport extends DropCounts {
  /** By full container id. */
  containers: Map<string, ContainerDrops>;
}

/** Options of `MessageQueue`. */
export interface QueueOptions {
  /** Body bytes held at most (a single larger body is taken into an empty queue). @default Infinity */
  budgetBytes?: number;
  /**
   * Called for each message, in queue order, as the confirmed head advances past it; must not
   * throw.
   */
  onConfirmed?: (msg: OutMessage) => void;
}

/** Messages a reader may add in one turn while readers take turns at a full queue. */
export const TURN_MESSAGES = 256;
/** Spare `Line` records kept for containers that come back (beyond these, the GC takes them). */
const SPARE_LINES = 64;

const UNPUBLISHED = 0;
const IN_FLIGHT = 1;
const CONFIRMED = 2;

/** The bounded queue; see the module doc. */
export class MessageQueue {
  /** Messages held at most, unpublished and unconfirmed together. */
  readonly capacity: number;
  /** Body bytes held at most (a single larger body is taken into an empty queue). */
  readonly budgetBytes: number;
  readonly #onConfirmed: ((msg: OutMessage) => void) | undefined;
  #blocked = false;

  #slots: (OutMessage | undefined)[];
  #state: Uint8Array;
  /** Per slot: the slot of the next message of the same container, or -1. */
  #link: Int32Array;
  /** Per slot: its container's line. */
  #lineOf: (Line | undefined)[];
  /** The line of each container with messages held. */
  #lines = new Map<string, Line>();
  #spare: Line[] = [];
  /** The line appended to last (a burst finds its own without the map). */
  #lastLine = new Line();
  /** Lines with unpublished messages, in publishing rotation (linked by `Line.next`). */
  #readyHead: Line | undefined = undefined;
  #readyTail: Line | undefined = undefined;
  /** Bumped by `rewind()` to mark the lines it has reset. */
  #epoch = 0;
  /** Absolute position of the oldest held message (never confirmed: the head skips those). */
  #head = 0;
  /** Absolute position one past the newest message. */
  #tail = 0;
  /** Messages marked confirmed since start (released or still behind an unconfirmed one). */
  #marked = 0;
  /** Body bytes of the messages held. */
  #bytes = 0;
  /** Totals since start: never reset (metrics); `takeDropped` reports the growth. */
  #droppedFull = 0;
  #droppedBlocked = 0;
  #reportedFull = 0;
  #reportedBlocked = 0;
  #published = 0;
  #confirmed = 0;
  /** Drops per container since the last `takeDropped`. */
  #drops = new Map<string, ContainerDrops>();
  readonly #turns: Turns;
  #roomWaiters = new Waiters();
  #messageWaiters = new Waiters();
  #emptyWaiters = new Waiters();

  /** See `QueueOptions`. */
  constructor(capacity: number, options: QueueOptions = {}) {
    const { budgetBytes = Infinity, onConfirmed } = options;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `Cannot create queue: capacity must be a positive integer, got ${capacity}`,
      );
    }
    if (!(budgetBytes >= 1)) {
      throw new RangeError(`Cannot create queue: budgetBytes must be positive, got ${budgetBytes}`);
    }
    this.capacity = capacity;
    this.budgetBytes = budgetBytes;
    this.#turns = new Turns(TURN_MESSAGES, (need) => this.#fits(need));
    this.#slots = new Array<OutMessage | undefined>(capacity).fill(undefined);
    this.#state = new Uint8Array(capacity);
    this.#link = new Int32Array(capacity);
    this.#lineOf = new Array<Line | undefined>(capacity).fill(undefined);
    this.#onConfirmed = onConfirmed;
  }

  /** True while the broker has blocked publishing (memory or disk alarm). */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** The publisher tells the broker's block state (it decides which drop counter counts). */
  setBlocked(blocked: boolean): void {
    this.#blocked = blocked;
  }

  /** Messages held: not yet published plus published and unconfirmed. */
  get size(): number {
    return this.#tail - this.#head;
  }

  /** Body bytes of the messages held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Every drop since the queue was made, by cause. */
  get droppedTotal(): DropCounts {
    return { full: this.#droppedFull, blocked: this.#droppedBlocked };
  }

  /** Messages handed to the publisher since start (a message published again counts again). */
  get publishedTotal(): number {
    return this.#published;
  }

  /** Messages confirmed by the broker (and released) since start. */
  get confirmedTotal(): number {
    return this.#confirmed;
  }

  /** Confirmed messages still holding their slot behind an older unconfirmed one. */
  get confirmedHeld(): number {
    return this.#marked - this.#confirmed;
  }

  /** The oldest message held (the next to be confirmed), or undefined when empty. */
  oldest(): OutMessage | undefined {
    return this.#head < this.#tail ? this.#slots[this.#head % this.capacity] : undefined;
  }

  /** Drop mode: appends `msg`, or, when it does not fit, counts a drop and returns false. */
  offer(msg: OutMessage): boolean {
    if (!this.#fits(msg.body.length)) {
      this.#countDrop(msg);
      releaseBody(msg.body);
      return false;
    }
    this.#append(msg);
    return true;
  }

  /**
   * Pause mode: appends `msg` when it fits and, while readers take turns, `lane` holds the turn.
   * False: call `waitForTurn(lane, ...)` and try again.
   */
  add(msg: OutMessage, lane: Lane): boolean {
    if (!this.#fits(msg.body.length)) return false;
    if (this.#turns.contended && !this.#turns.take(lane)) return false;
    this.#append(msg);
    return true;
  }

  /**
   * Resolves when `lane` is given the turn with room for a body of `need` bytes (readers are
   * served oldest first, `TURN_MESSAGES` each); rejects with `signal.reason` on abort.
   */
  waitForTurn(lane: Lane, need: number, signal: AbortSignal): Promise<void> {
    return this.#turns.wait(lane, need, signal);
  }

  /** `lane` has nothing more to add for now: it gives up a turn it holds. */
  endTurn(lane: Lane): void {
    this.#turns.end(lane);
  }

  /** Readers waiting for a turn (none while there is room for all). */
  get waitingReaders(): number {
    return this.#turns.waiting;
  }

  /**
   * Resolves once a small message fits (immediately if so), for a single writer without a lane;
   * rejects with `signal.reason` on abort.
   */
  waitForRoom(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#fits(0)) return Promise.resolve();
    return this.#roomWaiters.wait(signal);
  }

  /** Returns the drops counted since the last call, in total and per container. */
  takeDropped(): DropReport {
    const report = {
      full: this.#droppedFull - this.#reportedFull,
      blocked: this.#droppedBlocked - this.#reportedBlocked,
      containers: this.#drops,
    };
    this.#reportedFull = this.#droppedFull;
    this.#reportedBlocked = this.#droppedBlocked;
    this.#drops = new Map();
    return report;
  }

  /** True when a body of `need` bytes fits now: a free slot, and room in the byte budget. */
  #fits(need: number): boolean {
    const size = this.#tail - this.#head;
    return size < this.capacity && (this.#bytes + need <= this.budgetBytes || size === 0);
  }

  #append(msg: OutMessage): void {
    const slot = this.#tail % this.capacity;
    this.#slots[slot] = msg;
    this.#state[slot] = UNPUBLISHED;
    this.#tail++;
    this.#bytes += msg.body.length;
    const id = msg.containerId;
    let line: Line | undefined = this.#lastLine;
    if (line.key !== id) line = this.#lines.get(id);
    if (line === undefined) {
      line = this.#spare.pop() ?? new Line();
      line.key = id;
      this.#lines.set(id, line);
    }
    this.#lastLine = line;
    this.#lineOf[slot] = line;
    this.#link[slot] = -1;
    if (line.last >= 0) this.#link[line.last] = slot;
    else line.first = slot;
    line.last = slot;
    if (line.unpublished++ === 0) {
      line.cursor = slot;
      this.#enqueue(line);
    }
    if (this.#messageWaiters.size > 0) this.#messageWaiters.wake(Infinity);
  }

  /** Puts `line` at the back of the publishing rotation. */
  #enqueue(line: Line): void {
    line.next = undefined;
    if (this.#readyTail === undefined) this.#readyHead = line;
    else this.#readyTail.next = line;
    this.#readyTail = line;
  }

  /** Ring order of `slot` counted from the head (0 for the head's slot). */
  #offset(slot: number): number {
    const cap = this.capacity;
    return (slot - (this.#head % cap) + cap) % cap;
  }

  #countDrop(msg: OutMessage): void {
    let c = this.#drops.get(msg.containerId);
    if (c === undefined) {
      c = { full: 0, blocked: 0, key: msg.routingKey };
      this.#drops.set(msg.containerId, c);
    }
    if (this.#blocked) {
      this.#droppedBlocked++;
      c.blocked++;
    } else {
      this.#droppedFull++;
      c.full++;
    }
  }

  /**
   * The next message to publish, or undefined: the oldest unpublished message (nacked and rewound
   * ones included) of the container whose turn it is; containers take turns one message each.
   */
  next(): OutMessage | undefined {
    const line = this.#readyHead;
    return line === undefined ? undefined : this.#slots[line.cursor];
  }

  /**
   * Marks the message `next()` returned as published, passes the turn to the next container and
   * returns the message's position, the token for `confirm`/`nack`. Call only right after
   * `next()` returned a message.
   */
  markPublished(): number {
    const line = this.#readyHead!;
    const slot = line.cursor;
    const state = this.#state;
    state[slot] = IN_FLIGHT;
    const rest = line.next;
    if (--line.unpublished > 0) {
      // Past its in-flight and confirmed messages (a nack or rewind left them behind it).
      let s = this.#link[slot];
      while (state[s] !== UNPUBLISHED) s = this.#link[s];
      line.cursor = s;
      if (rest !== undefined) {
        // To the back of the rotation (alone in it, it stays where it is).
        this.#readyHead = rest;
        line.next = undefined;
        this.#readyTail!.next = line;
        this.#readyTail = line;
      }
    } else {
      line.cursor = -1;
      line.next = undefined;
      this.#readyHead = rest;
      if (rest === undefined) this.#readyTail = undefined;
    }
    const pos = this.#head + this.#offset(slot);
    this.#published++;
    return pos;
  }

  /** The broker confirmed the message at `pos`; advances the head past confirmed messages. */
  confirm(pos: number): void {
    if (pos < this.#head || pos >= this.#tail) return;
    const cap = this.capacity;
    const slot = pos % cap;
    if (this.#state[slot] !== IN_FLIGHT) return;
    this.#state[slot] = CONFIRMED;
    this.#marked++;
    if (pos !== this.#head) return;
    let s = slot;
    while (this.#head < this.#tail && this.#state[s] === CONFIRMED) {
      const msg = this.#slots[s]!;
      this.#slots[s] = undefined;
      this.#release(s);
      this.#head++;
      this.#confirmed++;
      this.#bytes -= msg.body.length;
      this.#onConfirmed?.(msg);
      releaseBody(msg.body);
      s = this.#head % cap;
    }
    const size = this.#tail - this.#head;
    if (this.#turns.contended) this.#turns.grant();
    if (this.#roomWaiters.size > 0 && this.#fits(0)) this.#roomWaiters.wake(cap - size);
    if (size === 0 && this.#emptyWaiters.size > 0) this.#emptyWaiters.wake(Infinity);
  }

  /** The head passes `slot`, the oldest message of its container: its line lets go of it. */
  #release(slot: number): void {
    const line = this.#lineOf[slot]!;
    this.#lineOf[slot] = undefined;
    line.first = this.#link[slot];
    if (line.first >= 0) return;
    line.last = -1;
    this.#lines.delete(line.key!);
    line.key = null;
    if (this.#spare.length < SPARE_LINES) this.#spare.push(line);
  }

  /**
   * The broker refused the message at `pos`: it becomes unpublished again, first in its
   * container's line (retried before that container's newer messages).
   */
  nack(pos: number): void {
    if (pos < this.#head || pos >= this.#tail) return;
    const slot = pos % this.capacity;
    if (this.#state[slot] !== IN_FLIGHT) return;
    this.#state[slot] = UNPUBLISHED;
    const line = this.#lineOf[slot]!;
    if (line.unpublished++ === 0) {
      line.cursor = slot;
      this.#enqueue(line);
    } else if (this.#offset(slot) < this.#offset(line.cursor)) {
      line.cursor = slot;
    }
    if (this.#messageWaiters.size > 0) this.#messageWaiters.wake(Infinity);
  }

  /**
   * After a reconnect: every unconfirmed message becomes unpublished again, each container's in
   * order; the rotation starts with the container of the oldest. O(size).
   */
  rewind(): void {
    const cap = this.capacity;
    const state = this.#state;
    const epoch = ++this.#epoch;
    this.#readyHead = this.#readyTail = undefined;
    for (let pos = this.#head; pos < this.#tail; pos++) {
      const slot = pos % cap;
      const line = this.#lineOf[slot]!;
      if (line.epoch !== epoch) {
        line.epoch = epoch;
        line.unpublished = 0;
        line.cursor = -1;
        line.next = undefined;
      }
      if (state[slot] === IN_FLIGHT) state[slot] = UNPUBLISHED;
      if (state[slot] === UNPUBLISHED && line.unpublished++ === 0) {
        line.cursor = slot;
        this.#enqueue(line);
      }
    }
    if (this.#head < this.#tail && this.#messageWaiters.size > 0) {
      this.#messageWaiters.wake(Infinity);
    }
  }

  /** Resolves once `next()` has a message (immediately if so); rejects on abort. */
  waitForMessage(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.next() !== undefined) return Promise.resolve();
    return this.#messageWaiters.wait(signal);
  }

  /** Resolves once every message is confirmed (`size === 0`); rejects on abort. */
  waitForEmpty(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.size === 0) return Promise.resolve();
    return this.#emptyWaiters.wait(signal);
  }
}

/** One container's messages held in the ring, linked oldest first (slots, -1 for none). */
class Line {
  /** Full container id (the key in `#lines`); null once released. */
  key: string | null = null;
  /** Its oldest held message. */
  first = -1;
  /** Its newest held message. */
  last = -1;
  /** Its oldest unpublished message; -1 exactly when `unpublished` is 0. */
  cursor = -1;
  /** Its messages not yet published; the line is in the rotation exactly while this is > 0. */
  unpublished = 0;
  /** The next line in the rotation. */
  next: Line | undefined = undefined;
  /** The `rewind()` that last reset it. */
  epoch = 0;
}

interface Waiter {
  resolve: () => void;
  signal: AbortSignal;
  onAbort: () => void;
}

/** Pending `wait()` calls, woken oldest first; an aborted wait removes itself. */
class Waiters {
  #list: Waiter[] = [];

  get size(): number {
    return this.#list.length;
  }

  wait(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        signal,
        onAbort: () => {
          const i = this.#list.indexOf(waiter);
          if (i >= 0) this.#list.splice(i, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.#list.push(waiter);
    });
  }

  /** Resolves up to `n` waiters, oldest first. */
  wake(n: number): void {
    const woken = this.#list.splice(0, Math.min(n, this.#list.length));
    for (const w of woken) {
      w.signal.removeEventListener("abort", w.onAbort);
      w.resolve();
    }
  }
}
