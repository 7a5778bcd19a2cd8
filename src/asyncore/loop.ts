/**
 * asyncore's loop: `loop`, `closeAll`, and the choice of a pass per backend.
 * Each backend's pass lives in `backends/` (select(2), poll(2), epoll(7), a
 * selectors-style object) over the interest cache of `interest.ts`; what
 * every pass shares (`readwrite`, the timeout conversion) is in `dispatch.ts`.
 *
 * Timeouts are seconds (null: wait forever), rounded up to the syscall's
 * resolution. Within one pass a channel that left its map (closed, or
 * replaced by a new channel on the same fd) is never dispatched again.
 */
import * as C from '../constants.js';
import { ExitNow, OSError, errno as E } from '../errors.js';
import type { BaseSelector } from '../selectors.js';
import { socketMap, type SocketMap } from './map.js';
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

export interface LoopOptions {
  /** Seconds each wait may last (default 30; null: forever). */
  timeout?: number | null;
  /** Python's use_poll: true means backend 'poll'. */
  usePoll?: boolean;
  /** 'select' (default, as asyncore), 'poll', 'epoll', or a selectors-style object. */
  backend?: Backend;
  /** The map to serve (default socketMap). */
  map?: SocketMap;
  /** Stop after this many passes (default: until the map is empty). */
  count?: number | null;
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
  return { ...o, timeout, count, map: o.map ?? socketMap };
}

/**
 * asyncore's `loop`: blocks, running passes until the map is empty or
 * `count` passes are done. Options: `timeout` seconds (default 30),
 * `usePoll`, `backend`, `map`, `count`. Also callable as Python's
 * `loop(timeout, usePoll, map, count)`. An ExitNow from a handler ends it.
 */
export function loop(options?: LoopOptions): void;
export function loop(timeout?: number | null, usePoll?: boolean, map?: SocketMap, count?: number | null): void;
export function loop(...args: unknown[]): void {
  const o = loopOptions(args);
  const pass = passFor(o.backend, o.usePoll);
  const map = o.map;
  try {
    if (o.count === null || o.count === undefined) {
      while (map.size > 0) pass(o.timeout ?? null, map);
    } else {
      let count = o.count;
      while (map.size > 0 && count > 0) {
        pass(o.timeout ?? null, map);
        count--;
      }
    }
  } finally {
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
