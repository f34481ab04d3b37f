/**
 * The bounded message buffer between the Docker readers and the AMQP publisher: the only state
 * they share.
 *
 * ```
 *  readers ──offer()──▶ [ confirmed-head … in flight … unpublished ] ──next()/markPublished()──▶ publisher
 *                        ▲ head advances only past confirmed slots ◀──confirm()/nack()──┘
 * ```
 *
 * A ring of `capacity` slots addressed by absolute positions (`pos % capacity`). A message keeps
 * its slot until the broker confirms it, so published-but-unconfirmed messages count against the
 * capacity. Confirms may come out of order; a nack makes the message unpublished again, and
 * `next()` hands out the oldest unpublished message first. Every operation is O(1) amortized and
 * allocates nothing per message.
 *
 * Bounded twice: at most `capacity` messages and `budgetBytes` of bodies (one add and one
 * subtract per message); a single body larger than the budget is taken into an empty queue.
 * Readers either `offer()` (drop mode: a refused message is counted against its container) or
 * `add()` with their `Lane` (pause mode): once one found no room, they take turns for the room
 * that frees (`Turns`), so a burst cannot hold back the other containers.
 * @module
 */
import type { Buffer } from "node:buffer";
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
  /** Absolute position of the oldest held message (never confirmed: the head skips those). */
  #head = 0;
  /** Absolute position one past the newest message. */
  #tail = 0;
  /** No unpublished message lies before this position. */
  #cursor = 0;
  /** One past the highest position ever marked in flight (bounds `rewind()`). */
  #highWater = 0;
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

  /** The oldest message held (the next to be confirmed), or undefined when empty. */
  oldest(): OutMessage | undefined {
    return this.#head < this.#tail ? this.#slots[this.#head % this.capacity] : undefined;
  }

  /** Drop mode: appends `msg`, or, when it does not fit, counts a drop and returns false. */
  offer(msg: OutMessage): boolean {
    if (!this.#fits(msg.body.length)) {
      this.#countDrop(msg);
      return false;
    }
    this.#append(msg);
    return true;
  }

  /**
   * Pause mode: appends `msg` when it fits and, while readers take turns, `lane` holds the turn.
   * False: call `waitForTurn(lane, …)` and try again.
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
    if (this.#messageWaiters.size > 0) this.#messageWaiters.wake(Infinity);
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

  /** The oldest message not yet published (nacked and rewound ones included), or undefined. */
  next(): OutMessage | undefined {
    const cap = this.capacity;
    while (this.#cursor < this.#tail && this.#state[this.#cursor % cap] !== UNPUBLISHED) {
      this.#cursor++;
    }
    return this.#cursor < this.#tail ? this.#slots[this.#cursor % cap] : undefined;
  }

  /**
   * Marks the message `next()` returned as published and returns its position, the token for
   * `confirm`/`nack`. Call only right after `next()` returned a message.
   */
  markPublished(): number {
    const pos = this.#cursor++;
    this.#state[pos % this.capacity] = IN_FLIGHT;
    if (this.#cursor > this.#highWater) this.#highWater = this.#cursor;
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
    if (pos !== this.#head) return;
    let s = slot;
    while (this.#head < this.#tail && this.#state[s] === CONFIRMED) {
      const msg = this.#slots[s]!;
      this.#slots[s] = undefined;
      this.#head++;
      this.#confirmed++;
      this.#bytes -= msg.body.length;
      this.#onConfirmed?.(msg);
      s = this.#head % cap;
    }
    if (this.#cursor < this.#head) this.#cursor = this.#head;
    const size = this.#tail - this.#head;
    if (this.#turns.contended) this.#turns.grant();
    if (this.#roomWaiters.size > 0 && this.#fits(0)) this.#roomWaiters.wake(cap - size);
    if (size === 0 && this.#emptyWaiters.size > 0) this.#emptyWaiters.wake(Infinity);
  }

  /** The broker refused the message at `pos`: it becomes unpublished again (retried, in order). */
  nack(pos: number): void {
    if (pos < this.#head || pos >= this.#tail) return;
    const slot = pos % this.capacity;
    if (this.#state[slot] !== IN_FLIGHT) return;
    this.#state[slot] = UNPUBLISHED;
    if (pos < this.#cursor) this.#cursor = pos;
    if (this.#messageWaiters.size > 0) this.#messageWaiters.wake(Infinity);
  }

  /** After a reconnect: every unconfirmed message becomes unpublished again, in queue order. */
  rewind(): void {
    const cap = this.capacity;
    const end = Math.min(this.#highWater, this.#tail);
    for (let pos = this.#head; pos < end; pos++) {
      const slot = pos % cap;
      if (this.#state[slot] === IN_FLIGHT) this.#state[slot] = UNPUBLISHED;
    }
    this.#cursor = this.#head;
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
