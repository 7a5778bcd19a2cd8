/**
 * Delayed calls that a map's loop runs: `callLater`, `callEvery`,
 * `DelayedCall`, and the per-map queue the loops drive.
 *
 * Time is seconds on one monotonic clock, `now()` (performance.now() / 1000:
 * libuv's uv_hrtime, CLOCK_MONOTONIC on Linux, so it never jumps with the
 * wall clock). A call's `deadline` is on that clock.
 *
 * The queue of a map is a binary min-heap ordered by (deadline, sequence
 * number): equal deadlines run in the order they were scheduled (FIFO). Each
 * call knows its heap index, so scheduling, cancelling, `reset` and `delay`
 * are O(log n) and a cancelled call leaves the heap at once (no tombstones).
 *
 * How the loops use it (the contract of `TimerQueue`):
 * - the wait of a pass is cut to the next deadline, rounded UP to whole
 *   milliseconds (`passTimeout`): a deadline 0.2 ms away is waited for
 *   (1 ms), never spun on;
 * - after the pass's I/O dispatch, `runDue` runs the calls whose deadline is
 *   <= now, in (deadline, sequence) order. A call scheduled during that drain
 *   (even with delay 0) runs on a later drain, never in the same one, so
 *   timers cannot starve I/O. A call never runs before its deadline.
 */
import { performance } from 'node:perf_hooks';
import { ExitNow } from '../errors.js';
import { socketMap, type SocketMap } from './map.js';
import { PerMap } from './interest.js';

/** Seconds on the monotonic clock every deadline uses. */
export function now(): number {
  return performance.now() / 1000;
}

/** Options of `callLater` / `callEvery`. */
export interface CallOptions {
  /** The map whose loop runs the call (default `socketMap`). */
  map?: SocketMap;
}

function checkSeconds(seconds: unknown, what: string): number {
  // As socket.settimeout and loop's timeout: NaN is a TypeError, a bad number a RangeError.
  if (typeof seconds !== 'number' || Number.isNaN(seconds)) throw new TypeError(`${what} must be a number of seconds`);
  if (seconds < 0) throw new RangeError(`${what} must not be negative`);
  if (!Number.isFinite(seconds)) throw new RangeError(`${what} must be finite`);
  return seconds;
}

/**
 * A call scheduled with `callLater` or `callEvery`. Methods for callers:
 * `cancel`, `reset`, `delay`; read `deadline`, `cancelled`, `pending`.
 */
export class DelayedCall {
  /** Seconds on the monotonic clock (`now()`) when the call is (or was last) due. */
  deadline: number;
  /** The repeat interval in seconds (callEvery), or 0 for a single call. */
  readonly interval: number;
  /** @internal Tie-breaker: later schedules run later among equal deadlines. */
  seq = 0;
  /** @internal Position in the queue's heap; -1 when not queued. */
  index = -1;
  /** @internal callEvery's rhythm: deadline = origin + n * interval. */
  origin: number;
  /** @internal */
  n = 0;
  /** @internal The delay `reset()` restarts with. */
  readonly initialDelay: number;
  private _cancelled = false;
  private readonly callback: () => void;
  private readonly queue: TimerQueue;

  /** @internal Use `callLater` / `callEvery`. */
  constructor(queue: TimerQueue, seconds: number, interval: number, callback: () => void) {
    this.queue = queue;
    this.callback = callback;
    this.interval = interval;
    this.initialDelay = seconds;
    this.deadline = this.origin = now() + seconds;
    queue.push(this);
  }

  /** True once `cancel()` was called: the call will never run again. */
  get cancelled(): boolean {
    return this._cancelled;
  }

  /** True while the call is queued (scheduled and not yet run, or a callEvery not cancelled). */
  get pending(): boolean {
    return this.index >= 0;
  }

  /** Unschedules the call for good (O(log n)). Harmless when it already ran or was cancelled. */
  cancel(): void {
    this._cancelled = true;
    if (this.index >= 0) this.queue.remove(this);
  }

  /**
   * Restarts the call with its original delay from now (an idle timeout's
   * "traffic seen"). A call that already ran is scheduled again. Error when cancelled.
   */
  reset(): void {
    this.moveTo(now() + this.initialDelay);
  }

  /**
   * Moves the deadline to now + `seconds` (a callEvery then repeats every
   * `interval` from there). TypeError / RangeError for a bad delay, Error when cancelled.
   */
  delay(seconds: number): void {
    this.moveTo(now() + checkSeconds(seconds, 'delay'));
  }

  private moveTo(deadline: number): void {
    if (this._cancelled) throw new Error('the call was cancelled');
    this.deadline = this.origin = deadline;
    this.n = 0;
    this.queue.reschedule(this);
  }

  /** @internal Runs the callback (the queue's drain calls it). */
  run(): void {
    this.callback();
  }
}

/**
 * The timers of one map: a binary min-heap of DelayedCalls ordered by
 * (deadline, seq). Used by the loops; users go through callLater/callEvery.
 */
export class TimerQueue {
  private heap: DelayedCall[] = [];
  private nextSeq = 0;
  private listeners = new Set<() => void>();
  /** Drains running now (a callback may run a nested loop). */
  private draining = 0;
  /** The earliest deadline moved while draining: notify once at the end. */
  private changed = false;

  /** How many calls are queued (cancelled ones are not). */
  get pending(): number {
    return this.heap.length;
  }

  /** The earliest deadline in seconds on `now()`'s clock, or Infinity when nothing is queued. */
  nextDeadline(): number {
    return this.heap.length === 0 ? Infinity : this.heap[0]!.deadline;
  }

  /**
   * Calls `listener` whenever the earliest deadline may have changed (a call
   * became first, or the first left or moved); loopAsync re-arms its timer
   * there. During a drain it is called once, at the end. Returns the unsubscribe.
   */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private notify(): void {
    if (this.draining > 0) this.changed = true;
    else for (const l of this.listeners) l();
  }

  /** @internal */
  push(call: DelayedCall): void {
    call.seq = this.nextSeq++;
    const i = this.heap.length;
    this.heap.push(call);
    call.index = i;
    if (this.up(i) === 0) this.notify();
  }

  /** @internal Takes `call` out (it must be queued). */
  remove(call: DelayedCall): void {
    const i = call.index;
    const last = this.heap.pop()!;
    call.index = -1;
    if (last !== call) {
      this.heap[i] = last;
      last.index = i;
      this.down(this.up(i));
    }
    if (i === 0) this.notify();
  }

  /** @internal After a deadline change: a new sequence number and the heap put right. */
  reschedule(call: DelayedCall): void {
    if (call.index < 0) {
      this.push(call);
      return;
    }
    const wasFirst = call.index === 0;
    call.seq = this.nextSeq++;
    const i = this.down(this.up(call.index));
    if (wasFirst || i === 0) this.notify();
  }

  /**
   * Runs every call due now (deadline <= now()) in (deadline, seq) order.
   * Calls scheduled or moved while it runs wait for the next drain. A call
   * cancelled by an earlier one never runs. A callback's error goes to
   * `report` and the drain goes on; ExitNow propagates at once and the calls
   * not yet run stay queued. A callEvery is put back at its next slot after
   * it ran (see callEvery for the rule). Returns how many calls ran.
   */
  runDue(report: (err: unknown, call: DelayedCall) => void): number {
    const heap = this.heap;
    if (heap.length === 0) return 0;
    const t = now();
    // Everything scheduled from here on has seq >= limit: it cannot run in this drain.
    const limit = this.nextSeq;
    let ran = 0;
    this.draining++;
    try {
      while (heap.length > 0) {
        const call = heap[0]!;
        // Heap order is (deadline, seq): once the first is not due, or is new
        // (a new call with deadline <= t sorts after every older one due), stop.
        if (call.deadline > t || call.seq >= limit) break;
        this.remove(call);
        ran++;
        try {
          call.run();
        } catch (err) {
          if (err instanceof ExitNow) throw err;
          report(err, call);
        } finally {
          // The callback may have cancelled, reset or delayed its own call.
          if (call.interval > 0 && !call.cancelled && call.index < 0) this.repeat(call, t);
        }
      }
    } finally {
      this.draining--;
      if (this.draining === 0 && this.changed) {
        this.changed = false;
        this.notify();
      }
    }
    return ran;
  }

  /** callEvery's next slot: origin + n·interval, the first one after `t`. */
  private repeat(call: DelayedCall, t: number): void {
    const iv = call.interval;
    let n = call.n + 1;
    let d = call.origin + n * iv;
    if (d <= t) {
      // Late past one or more slots: skip them (no burst of catch-up runs).
      n = Math.floor((t - call.origin) / iv) + 1;
      d = call.origin + n * iv;
      if (d <= t) d = call.origin + ++n * iv;
    }
    call.n = n;
    call.deadline = d;
    this.push(call);
  }

  // Heap order: (deadline, seq) lexicographic.
  private less(a: DelayedCall, b: DelayedCall): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
  }

  private up(i: number): number {
    const heap = this.heap;
    const x = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (!this.less(x, parent)) break;
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = x;
    x.index = i;
    return i;
  }

  private down(i: number): number {
    const heap = this.heap;
    const n = heap.length;
    const x = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(heap[r]!, heap[l]!) ? r : l;
      const child = heap[c]!;
      if (!this.less(child, x)) break;
      heap[i] = child;
      child.index = i;
      i = c;
    }
    heap[i] = x;
    x.index = i;
    return i;
  }
}

// On the map itself (one property load per pass; loop() looks twice a pass).
const queues = new PerMap('timer queue', () => new TimerQueue());

/** The timer queue of `map`, or undefined when no call was ever scheduled on it. */
export function timersOf(map: SocketMap): TimerQueue | undefined {
  return queues.peek(map);
}

/** The timer queue of `map`, made when missing (loopAsync subscribes to it before any call exists). */
export function timerQueue(map: SocketMap): TimerQueue {
  return queues.of(map);
}

function queueFor(options: CallOptions | undefined): TimerQueue {
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('options must be an object');
  const map = options?.map ?? socketMap;
  if (!(map instanceof Map)) throw new TypeError('options.map must be a Map');
  return timerQueue(map);
}

function checkCallback(callback: unknown): () => void {
  if (typeof callback !== 'function') throw new TypeError('callback must be a function');
  return callback as () => void;
}

/**
 * Runs `callback` once, `seconds` from now (a float; 0: on the loop's next
 * drain), from the loop of `options.map` (default socketMap): `loop()` or
 * `loopAsync()`. It never runs early; how late depends on the pass it waits
 * behind. TypeError for a non-number or NaN delay or a non-function
 * callback, RangeError for a negative or infinite delay.
 *
 * @example
 * const idle = callLater(30, () => channel.close());
 * // on traffic:
 * idle.reset();
 */
export function callLater(seconds: number, callback: () => void, options?: CallOptions): DelayedCall {
  checkSeconds(seconds, 'delay');
  const cb = checkCallback(callback);
  return new DelayedCall(queueFor(options), seconds, 0, cb);
}

/**
 * Runs `callback` every `seconds` (first run `seconds` from now) until
 * cancelled, from the loop of `options.map` (default socketMap).
 *
 * The rhythm is kept: the k-th run is due at start + k·seconds, whenever the
 * previous run actually happened, so one late run does not shift the later
 * ones. When the loop was late past one or more slots, those runs are
 * skipped, not replayed in a burst: the next run is at the first slot after
 * the drain's start. An error from the callback is reported and the call keeps
 * repeating. `reset()` / `delay(s)` restart the rhythm from the new deadline.
 * TypeError as callLater; RangeError for an interval that is not > 0 or infinite.
 */
export function callEvery(seconds: number, callback: () => void, options?: CallOptions): DelayedCall {
  checkSeconds(seconds, 'interval');
  if (seconds === 0) throw new RangeError('interval must be greater than 0');
  const cb = checkCallback(callback);
  return new DelayedCall(queueFor(options), seconds, seconds, cb);
}

/**
 * The timeout (seconds, null = forever) a pass is given when `queue` may
 * have calls due: the loop's own `timeout` cut to the next deadline. The
 * pass rounds it up to whole ms, so a deadline under 1 ms away is waited for.
 */
export function passTimeout(timeout: number | null, queue: TimerQueue | undefined): number | null {
  if (queue === undefined || queue.pending === 0) return timeout;
  const left = Math.max(0, queue.nextDeadline() - now());
  return timeout === null || timeout < 0 || left < timeout ? left : timeout;
}
