/**
 * `Fifo`: the queue under asyncore's output buffers (Python's deque), on a
 * ring buffer. `push`, `unshift`, `shift`, `peek`, `at` and `length` are
 * O(1) (`push` / `unshift` amortised: the ring doubles when full), so a
 * queue that a peer makes long — a client that pipelines requests and reads
 * nothing — costs the same per item at 200 000 items as at 10. (An Array's
 * `shift()` moves every element once the array leaves V8's small-array fast
 * path: draining n items that way is O(n²).)
 */

/** Rings at least this big are given back once the queue is empty. */
const SHRINK_AT = 1024;
const MIN_CAPACITY = 8;

/**
 * A first-in first-out queue on a ring buffer (Python's `collections.deque`
 * as asynchat uses it): `push` / `shift` at the ends, `unshift` to put an
 * item back in front, `peek` / `at` / `length` to look, all O(1) (`push` /
 * `unshift` amortised: the ring doubles when full). It is
 * `AsyncChat#producerFifo`, and the output queue of `DispatcherWithSend`.
 */
export class Fifo<T> implements Iterable<T> {
  private ring: Array<T | undefined> = new Array<T | undefined>(MIN_CAPACITY);
  private head = 0;
  private size = 0;

  /** An empty queue, or one holding `items` in their iteration order (the first item at the front). */
  constructor(items?: Iterable<T>) {
    if (items !== undefined) for (const x of items) this.push(x);
  }

  /** How many items are queued. */
  get length(): number {
    return this.size;
  }

  /** The first item (undefined when empty). */
  peek(): T | undefined {
    return this.size === 0 ? undefined : this.ring[this.head];
  }

  /** The item `i` places from the front (undefined outside 0 .. length-1). */
  at(i: number): T | undefined {
    if (!(i >= 0 && i < this.size)) return undefined;
    return this.ring[(this.head + i) & (this.ring.length - 1)];
  }

  /** Replaces the first item (Python's `fifo[0] = x`); RangeError when empty. */
  setFirst(item: T): void {
    if (this.size === 0) throw new RangeError('the queue is empty');
    this.ring[this.head] = item;
  }

  /** Appends at the back. */
  push(item: T): void {
    if (this.size === this.ring.length) this.grow();
    this.ring[(this.head + this.size) & (this.ring.length - 1)] = item;
    this.size++;
  }

  /** Inserts at the front (Python's `appendleft`). */
  unshift(item: T): void {
    if (this.size === this.ring.length) this.grow();
    this.head = (this.head - 1) & (this.ring.length - 1);
    this.ring[this.head] = item;
    this.size++;
  }

  /** Removes and returns the first item (undefined when empty). */
  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) & (this.ring.length - 1);
    this.size--;
    if (this.size === 0) this.reset();
    return item;
  }

  /** Empties the queue. */
  clear(): void {
    this.ring = new Array<T | undefined>(MIN_CAPACITY);
    this.head = 0;
    this.size = 0;
  }

  /**
   * The items, front first, without removing them. The iteration reads the
   * live ring: a push or shift during it changes what it yields (iterate
   * `toArray()` to change the queue while going through it).
   */
  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.size; i++) yield this.ring[(this.head + i) & (this.ring.length - 1)] as T;
  }

  /** The items, front first, as a new array. */
  toArray(): T[] {
    return [...this];
  }

  private grow(): void {
    const old = this.ring;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = old[(this.head + i) & (old.length - 1)];
    this.ring = next;
    this.head = 0;
  }

  // An empty queue starts again at the front, and a big ring is given back.
  private reset(): void {
    this.head = 0;
    if (this.ring.length >= SHRINK_AT) this.ring = new Array<T | undefined>(MIN_CAPACITY);
  }
}
