/**
 * asyncore's loop: `loop`, `closeAll`, and the choice of a pass per backend.
 * Each backend's pass lives in `backends/` (select(2), poll(2), epoll(7), a
 * selectors-style object) over the interest cache of `interest.ts`; what
 * every pass shares (`readwrite`, the timeout conversion) is in `dispatch.ts`.
 *
 * Timeouts are seconds (null: wait forever), rounded up to the syscall's
 * resolution. Within one pass a channel that left its map (closed, or
 * replaced by a new channel on the same fd) is never dispatched again.
 *
 * A loop also runs the map's delayed calls (`timers.ts`): each wait is cut
 * to the next deadline, and the calls due run after the pass's I/O. With
 * `signals`, a SignalTrap's descriptor is watched beside the channels, and
 * the loop leaves with `Interrupted` after the pass in which one arrived.
 */
import { native } from '../native.js';
import * as C from '../constants.js';
import { ExitNow, Interrupted, OSError, errno as E } from '../errors.js';
import type { BaseSelector } from '../selectors.js';
import { compactTraceback } from './dispatcher.js';
import { sleepMs, toWaitMs } from './dispatch.js';
import { addWakeFd } from './interest.js';
import { socketMap, type SocketMap } from './map.js';
import { SignalTrap } from './signals.js';
import { passTimeout, timersOf, type DelayedCall } from './timers.js';
import { poll } from './backends/select.js';
import { poll2 } from './backends/poll.js';
import { pollEpoll, releaseEpoll } from './backends/epoll.js';
import { pollSelector } from './backends/selector.js';

export { read, write, exception, _exception, readwrite, toWaitMs } from './dispatch.js';
export { poll } from './backends/select.js';
export { poll2 } from './backends/poll.js';
export { pollEpoll, syncEpoll, dispatchEpoll, releaseEpoll, EpollSet } from './backends/epoll.js';
export { pollSelector } from './backends/selector.js';

const C_EBADF = E.EBADF!;

// ---------------------------------------------------------------- loop

/** Which poller a loop uses. */
export type Backend = 'select' | 'poll' | 'epoll' | BaseSelector<unknown>;

/**
 * The options of `loop()` (and, with `signal`, of `loopAsync()`). Each is
 * checked when the loop starts: TypeError for a wrong type (a NaN timeout
 * or count, a `backend` that is neither a known name nor an object with
 * `select()`, a non-function `onTimerError`), RangeError for 'epoll' where
 * it is missing (off Linux); `signals` as `SignalTrap` (TypeError /
 * RangeError for bad names).
 */
export interface LoopOptions {
  /** Seconds each wait may last (default 30; null: forever). */
  timeout?: number | null;
  /** Python's use_poll: true means backend 'poll'. */
  usePoll?: boolean;
  /** 'select' (default, as asyncore), 'poll', 'epoll', or a selectors-style object. */
  backend?: Backend;
  /** The map to serve (default socketMap). */
  map?: SocketMap;
  /** Stop after this many passes (default: until the map is empty and no delayed call is pending). */
  count?: number | null;
  /**
   * Signal names (as `os.constants.signals`, e.g. 'SIGINT', 'SIGTERM') that
   * end the loop: it leaves after the pass in which one arrived, throwing
   * `Interrupted` with its `signal`. Node's own handling of them (listeners,
   * or the default action) is put back when the loop returns or throws.
   */
  signals?: readonly string[];
  /**
   * Called with an error thrown by a delayed call's callback (and the call);
   * the loop goes on. Default: `logTimerError`, a compact traceback on stdout.
   */
  onTimerError?: (err: unknown, call: DelayedCall) => void;
}

export type Pass = (timeout: number | null, map: SocketMap) => void;

/** The pass function for a backend choice. */
export function passFor(backend: Backend | undefined, usePoll = false): Pass {
  const b = backend ?? (usePoll ? 'poll' : 'select');
  if (b === 'select') return poll;
  if (b === 'poll') return poll2;
  if (b === 'epoll') {
    if (!C.HAVE_EPOLL) throw new RangeError("backend 'epoll' is not available on this platform");
    return pollEpoll;
  }
  if (typeof b === 'object' && b !== null && typeof (b as BaseSelector<unknown>).select === 'function') {
    return (timeout, map) => pollSelector(timeout, map, b as BaseSelector<unknown>);
  }
  throw new TypeError(`backend must be 'select', 'poll', 'epoll' or a selector object, not ${String(b)}`);
}

/** Reads loop options, accepting Python's positional form `loop(timeout, usePoll, map, count)` too. */
export function loopOptions(args: unknown[]): Required<Pick<LoopOptions, 'map'>> & LoopOptions {
  const [first] = args;
  let o: LoopOptions;
  if (typeof first === 'number' || first === null) {
    o = { timeout: first as number | null, usePoll: args[1] as boolean, map: args[2] as SocketMap, count: args[3] as number };
  } else {
    o = (first ?? {}) as LoopOptions;
  }
  if (typeof o !== 'object') throw new TypeError('loop options must be an object');
  const count = o.count ?? null;
  if (count !== null && (typeof count !== 'number' || Number.isNaN(count))) throw new TypeError('count must be a number');
  const timeout = o.timeout === undefined ? 30 : o.timeout;
  if (timeout !== null && (typeof timeout !== 'number' || Number.isNaN(timeout))) throw new TypeError('timeout must be a number of seconds or null');
  if (o.signals !== undefined && !Array.isArray(o.signals)) throw new TypeError('signals must be an array of signal names');
  if (o.onTimerError !== undefined && typeof o.onTimerError !== 'function') throw new TypeError('onTimerError must be a function');
  return { ...o, timeout, count, map: o.map ?? socketMap };
}

/**
 * The default report of an error thrown by a delayed call: one line on
 * stdout, as `Dispatcher#handleError` logs through `logInfo`:
 * `error: uncaptured exception in a delayed call (Type:message [file|fn|line] ...)`.
 */
export function logTimerError(err: unknown): void {
  let text: string;
  try {
    const [, type, value, info] = compactTraceback(err);
    text = `${type}:${value.message} ${info}`;
  } catch {
    text = String(err); // not an Error: nothing to trace
  }
  process.stdout.write(`error: uncaptured exception in a delayed call (${text})\n`);
}

/**
 * What `loop()` and `loopAsync()` keep around their passes: the signal trap
 * (its descriptor given to every pass on the map through `addWakeFd`) and
 * the report for timer errors.
 */
export class LoopSession {
  readonly report: (err: unknown, call: DelayedCall) => void;
  /** The first trapped signal that arrived, or null. */
  signal: string | null = null;
  readonly trap: SignalTrap | null = null;
  private readonly unwake: (() => void) | null = null;
  private readonly pollfd: Int32Array | null = null;

  constructor(map: SocketMap, o: LoopOptions) {
    this.report = o.onTimerError ?? logTimerError;
    if (o.signals !== undefined && o.signals.length > 0) {
      const trap = (this.trap = new SignalTrap(o.signals));
      try {
        this.unwake = addWakeFd(map, trap.fd, () => this.take());
      } catch (err) {
        trap.close();
        throw err;
      }
      this.pollfd = Int32Array.of(trap.fd, C.POLLIN);
    }
  }

  /** Drains the trap; remembers the first signal. */
  take(): void {
    const s = this.trap?.take() ?? null;
    if (s !== null && this.signal === null) this.signal = s;
  }

  /** Waits `timeout` seconds (null: forever) with no channel to watch: only the trap can end it early. */
  idleWait(timeout: number | null): void {
    const ms = toWaitMs(timeout);
    if (this.pollfd === null) {
      sleepMs(ms);
      return;
    }
    if (native.poll(this.pollfd, 1, ms) > 0) this.take();
  }

  /** The Interrupted to throw when a trapped signal arrived (checked at the end too: none is dropped by close). */
  interrupted(final = false): Interrupted | null {
    if (final && this.signal === null) this.take();
    return this.signal === null ? null : new Interrupted(this.signal);
  }

  /** Stops watching the trap and puts the signals' previous handling back. */
  close(): void {
    this.unwake?.();
    this.trap?.close();
  }
}

/**
 * asyncore's `loop`: blocks, running passes until the map is empty and no
 * delayed call is pending, or `count` passes are done. Options: `timeout`
 * seconds (default 30) bounds each wait, `usePoll`, `backend`, `map`,
 * `count`, `signals`, `onTimerError`. Also callable as Python's
 * `loop(timeout, usePoll, map, count)`.
 *
 * Each pass waits at most until the next delayed call's deadline (rounded
 * up to whole ms), dispatches the ready channels, then runs the calls that
 * are due (see `callLater`). With no channel left but calls pending, the
 * loop sleeps until the next one. An ExitNow from a handler or a delayed
 * call ends it; other errors from delayed calls go to `onTimerError`.
 * With `signals`, a signal named there ends it after the current pass with
 * `Interrupted` (RangeError / TypeError for bad names, as SignalTrap).
 *
 * @example
 * loop({ backend: 'epoll', timeout: null, signals: ['SIGINT', 'SIGTERM'] });
 */
export function loop(options?: LoopOptions): void;
export function loop(timeout?: number | null, usePoll?: boolean, map?: SocketMap, count?: number | null): void;
export function loop(...args: unknown[]): void {
  const o = loopOptions(args);
  const pass = passFor(o.backend, o.usePoll);
  const map = o.map;
  const timeout = o.timeout ?? null;
  const session = new LoopSession(map, o);
  try {
    let count = o.count ?? Infinity;
    while (count > 0) {
      const q = timersOf(map);
      if (map.size === 0 && (q === undefined || q.pending === 0)) break;
      if (map.size > 0) pass(passTimeout(timeout, q), map);
      else session.idleWait(passTimeout(timeout, q));
      // A handler may have made the map's first delayed call during the pass.
      timersOf(map)?.runDue(session.report);
      count--;
      const stop = session.interrupted();
      if (stop !== null) throw stop;
    }
    const stop = session.interrupted(true);
    if (stop !== null) throw stop;
  } finally {
    session.close();
    if (map.size === 0) releaseEpoll(map);
  }
}

/**
 * Closes every channel of `map` (default socketMap) and empties it. EBADF is
 * ignored; other errors propagate unless `ignoreAll`. ExitNow always propagates.
 */
export function closeAll(map: SocketMap = socketMap, ignoreAll = false): void {
  try {
    for (const obj of [...map.values()]) {
      try {
        (obj as { close?: () => void }).close?.();
      } catch (err) {
        if (err instanceof ExitNow) throw err;
        if (err instanceof OSError && err.errno === C_EBADF) continue;
        if (!ignoreAll) throw err;
      }
    }
    map.clear();
  } finally {
    releaseEpoll(map);
  }
}
