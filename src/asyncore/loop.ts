/**
 * asyncore's loop and its passes: `poll` (select(2)), `poll2` (poll(2)),
 * `pollEpoll` (epoll(7), interest kept between passes), a pass over any
 * selectors-style object, `readwrite`, `loop`, `closeAll`.
 *
 * Timeouts are seconds (null: wait forever), rounded up to the syscall's
 * resolution. Within one pass a channel that left its map (closed, or
 * replaced by a new channel on the same fd) is never dispatched again.
 */
import { native } from '../native.js';
import * as C from '../constants.js';
import { ExitNow, OSError, errno as E } from '../errors.js';
import { EVENT_READ, EVENT_WRITE, type BaseSelector } from '../selectors.js';
import { DISCONNECTED, Dispatcher } from './dispatcher.js';
import { socketMap, watchMap, type Channel, type SocketMap } from './map.js';

const C_EPERM = E.EPERM!, C_EBADF = E.EBADF!, C_ENOENT = E.ENOENT!, C_EINVAL = E.EINVAL!;
const POLLIN = C.POLLIN, POLLPRI = C.POLLPRI, POLLOUT = C.POLLOUT;
const POLLERR = C.POLLERR, POLLHUP = C.POLLHUP, POLLNVAL = C.POLLNVAL;

/** Calls `obj.handleReadEvent()`; errors go to `handleError`, ExitNow passes through. */
export function read(obj: Channel): void {
  try {
    obj.handleReadEvent();
  } catch (err) {
    if (err instanceof ExitNow) throw err;
    obj.handleError(err);
  }
}

/** Calls `obj.handleWriteEvent()`; errors go to `handleError`, ExitNow passes through. */
export function write(obj: Channel): void {
  try {
    obj.handleWriteEvent();
  } catch (err) {
    if (err instanceof ExitNow) throw err;
    obj.handleError(err);
  }
}

/** Calls `obj.handleExptEvent()`; errors go to `handleError`, ExitNow passes through. */
export function exception(obj: Channel): void {
  try {
    obj.handleExptEvent();
  } catch (err) {
    if (err instanceof ExitNow) throw err;
    obj.handleError(err);
  }
}
export { exception as _exception };

/** True once a dispatcher left its map (closed) during the current dispatch. */
function gone(obj: Channel): boolean {
  return obj instanceof Dispatcher && obj.fileno() === null;
}

/**
 * Dispatches poll(2)-style `flags` to `obj`: POLLIN → read event, POLLOUT →
 * write event, POLLPRI → exceptional event, then POLLHUP / POLLERR /
 * POLLNVAL → handleClose. A hang-up with data still readable (POLLHUP with
 * POLLIN) delivers the data first and closes at EOF (Python closes at once
 * and loses it). POLLNVAL closes without touching the descriptor. An OSError
 * with a disconnection errno closes; other errors go to handleError.
 */
export function readwrite(obj: Channel, flags: number): void {
  try {
    if (flags & POLLIN) {
      obj.handleReadEvent();
      if (gone(obj)) return;
    }
    if (flags & POLLOUT) {
      obj.handleWriteEvent();
      if (gone(obj)) return;
    }
    if (flags & POLLPRI) {
      obj.handleExptEvent();
      if (gone(obj)) return;
    }
    if (flags & (POLLHUP | POLLERR | POLLNVAL)) {
      if (flags & POLLNVAL) {
        // The descriptor is not open: give it up so a number reused by
        // someone else in the meantime is not closed by mistake.
        if (obj instanceof Dispatcher && obj.socket && 'detach' in obj.socket) (obj.socket as { detach(): number }).detach();
        obj.handleClose();
      } else if ((flags & (POLLHUP | POLLERR | POLLIN)) === (POLLHUP | POLLIN)) {
        // Data is still readable: the reads go on until EOF closes.
      } else {
        obj.handleClose();
      }
    }
  } catch (err) {
    if (err instanceof OSError) {
      if (DISCONNECTED.has(err.errno)) obj.handleClose();
      else obj.handleError(err);
    } else if (err instanceof ExitNow) {
      throw err;
    } else {
      obj.handleError(err);
    }
  }
}

/** Seconds → the milliseconds a wait is given: rounded up; null/undefined or negative: forever (-1). */
export function toWaitMs(timeout: number | null | undefined): number {
  if (timeout === null || timeout === undefined) return -1;
  if (typeof timeout !== 'number' || Number.isNaN(timeout)) throw new TypeError('timeout must be a number of seconds or null');
  if (timeout < 0) return -1;
  return Math.ceil(timeout * 1000);
}

const noFds = new Int32Array(2);

/** Sleeps the thread (asyncore sleeps when no channel wants any event). */
function sleepMs(ms: number): void {
  if (ms === 0) return;
  native.poll(noFds, 0, ms < 0 ? -1 : ms);
}

// ---------------------------------------------------------------- select(2)

let selR = new Int32Array(256), selW = new Int32Array(256), selX = new Int32Array(256);
const selCounts = new Int32Array(3);
const selSnap = new Map<number, Channel>();

/**
 * One pass over select(2): asyncore's `poll`. Readable channels are asked for
 * reading, writable non-accepting ones for writing, both for exceptional
 * conditions. `timeout` in seconds. RangeError for a descriptor >= FD_SETSIZE.
 */
export function poll(timeout: number | null = 0, map: SocketMap = socketMap): void {
  if (map.size === 0) return;
  if (selR.length < map.size) {
    const n = map.size * 2;
    selR = new Int32Array(n);
    selW = new Int32Array(n);
    selX = new Int32Array(n);
  }
  let nr = 0, nw = 0, nx = 0;
  selSnap.clear();
  for (const [fd, obj] of map) {
    const isR = obj.readable();
    const isW = obj.writable();
    if (isR) selR[nr++] = fd;
    if (isW && !obj.accepting) selW[nw++] = fd;
    if (isR || isW) {
      selX[nx++] = fd;
      selSnap.set(fd, obj);
    }
  }
  const ms = toWaitMs(timeout);
  if (nr + nw + nx === 0) {
    sleepMs(ms);
    return;
  }
  const r = native.select(selR, nr, selW, nw, selX, nx, ms, selCounts);
  if (r < 0) throw new OSError(-r, 'select');
  if (r === 0) return;
  const cr = selCounts[0]!, cw = selCounts[1]!, cx = selCounts[2]!;
  // Copy the ready sets: a handler may run a nested pass that reuses the arrays.
  const ready = Array.from(selR.subarray(0, cr));
  const readyW = Array.from(selW.subarray(0, cw));
  const readyX = Array.from(selX.subarray(0, cx));
  const snap = new Map(selSnap);
  for (const fd of ready) {
    const obj = snap.get(fd);
    if (obj !== undefined && map.get(fd) === obj) read(obj);
  }
  for (const fd of readyW) {
    const obj = snap.get(fd);
    if (obj !== undefined && map.get(fd) === obj) write(obj);
  }
  for (const fd of readyX) {
    const obj = snap.get(fd);
    if (obj !== undefined && map.get(fd) === obj) exception(obj);
  }
}

// ---------------------------------------------------------------- poll(2)

let pollFds = new Int32Array(512);
let pollObjs: Channel[] = [];

/**
 * One pass over poll(2): asyncore's `poll2`. `timeout` in seconds (Python's
 * poll2 truncates to whole ms, which turns 0.0005 into a busy loop; we round up).
 */
export function poll2(timeout: number | null = 0, map: SocketMap = socketMap): void {
  const ms = toWaitMs(timeout);
  if (pollFds.length < map.size * 2) pollFds = new Int32Array(map.size * 4);
  let n = 0;
  const objs = pollObjs;
  for (const [fd, obj] of map) {
    let flags = 0;
    if (obj.readable()) flags |= POLLIN | POLLPRI;
    if (obj.writable() && !obj.accepting) flags |= POLLOUT;
    if (flags) {
      pollFds[2 * n] = fd;
      pollFds[2 * n + 1] = flags;
      objs[n] = obj;
      n++;
    }
  }
  if (n === 0) {
    // asyncore's poll2 polls an empty set, which sleeps for the timeout.
    sleepMs(ms);
    return;
  }
  const r = native.poll(pollFds, n, ms);
  if (r < 0) throw new OSError(-r, 'poll');
  if (r === 0) {
    objs.length = 0;
    return;
  }
  // Read the results out before dispatching: a handler may run a nested pass.
  const readyFds: number[] = [], readyObjs: Channel[] = [], readyEv: number[] = [];
  for (let i = 0; i < n; i++) {
    const rev = (pollFds[2 * i + 1]! >>> 16) & 0xffff;
    if (rev !== 0) {
      readyFds.push(pollFds[2 * i]!);
      readyObjs.push(objs[i]!);
      readyEv.push(rev);
    }
  }
  objs.length = 0;
  for (let i = 0; i < readyFds.length; i++) {
    const obj = readyObjs[i]!;
    if (map.get(readyFds[i]!) === obj) readwrite(obj, readyEv[i]!);
  }
}

// ---------------------------------------------------------------- epoll(7)

interface Registration {
  obj: Channel;
  /** The registered epoll mask; -1 when the descriptor turned out closed (reported as POLLNVAL). */
  mask: number;
  seen: number;
}

/**
 * The epoll set of one map, kept across passes and loop() calls: interest is
 * changed with epoll_ctl only when a channel's readable()/writable() answer
 * changed or it joined / left the map.
 */
export class EpollSet {
  readonly epfd: number;
  readonly reg = new Map<number, Registration>();
  /** Channels epoll cannot watch (EPERM: regular files), always ready as poll(2) reports them. */
  readonly alwaysReady = new Map<number, Registration>();
  /** How many registrations have mask -1 (closed descriptors). */
  broken = 0;
  fds = new Int32Array(64);
  evs = new Uint32Array(64);
  objs: Array<Channel | undefined> = [];
  pass = 0;
  /** Passes running on this set right now (a handler may run a nested pass). */
  depth = 0;
  /** Run just before the descriptor closes (loopAsync closes its uv_poll watcher there). */
  readonly beforeClose = new Set<() => void>();
  private unwatch: () => void;

  constructor(map: SocketMap) {
    this.epfd = native.epollCreate!(0);
    if (this.epfd < 0) throw new OSError(-this.epfd, 'epoll_create1');
    // A channel leaving the map is removed from the set at once, before its
    // descriptor is closed (a dup'ed descriptor would otherwise keep firing).
    this.unwatch = watchMap(map, (change, fd, channel) => {
      if (change === 'delete') this.forget(fd, channel);
    });
  }

  /** Removes `fd` from the kernel set and the books. */
  drop(fd: number, r: Registration): void {
    if (r.mask === -1) this.broken--;
    else native.epollCtl!(this.epfd, C.EPOLL_CTL_DEL, fd, 0);
    this.reg.delete(fd);
  }

  forget(fd: number, channel?: Channel): void {
    const r = this.reg.get(fd);
    if (r !== undefined && (channel === undefined || r.obj === channel)) this.drop(fd, r);
    const a = this.alwaysReady.get(fd);
    if (a !== undefined && (channel === undefined || a.obj === channel)) this.alwaysReady.delete(fd);
  }

  close(): void {
    for (const f of this.beforeClose) f();
    this.beforeClose.clear();
    this.unwatch();
    native.close(this.epfd);
    this.reg.clear();
    this.alwaysReady.clear();
    this.broken = 0;
  }
}

const epollSets = new WeakMap<SocketMap, EpollSet>();
const epollFinalizer = new FinalizationRegistry<number>((epfd) => native.close(epfd));

function epollSetOf(map: SocketMap): EpollSet {
  let s = epollSets.get(map);
  if (s === undefined) {
    s = new EpollSet(map);
    epollSets.set(map, s);
    epollFinalizer.register(map, s.epfd, s);
  }
  return s;
}

/** Closes the epoll set kept for `map` (loop() does it when the map empties; closeAll too). */
export function releaseEpoll(map: SocketMap): void {
  const s = epollSets.get(map);
  if (s === undefined) return;
  epollSets.delete(map);
  epollFinalizer.unregister(s);
  s.close();
}

const EP_READ = C.EPOLLIN | C.EPOLLPRI;

// The sweep's state lives here so the per-channel callback allocates nothing.
let sweepSet: EpollSet;
let sweepSeen = 0;

function sweepOne(obj: Channel, fd: number): void {
  const s = sweepSet;
  const pass = s.pass;
  let mask = 0;
  if (obj.readable()) mask |= EP_READ;
  if (obj.writable() && !obj.accepting) mask |= C.EPOLLOUT;
  let r = s.reg.get(fd);
  if (r !== undefined && r.obj !== obj) {
    // The fd now belongs to another channel that joined without our notice.
    s.drop(fd, r);
    r = undefined;
  }
  if (r === undefined) {
    const a = s.alwaysReady.get(fd);
    if (a !== undefined && a.obj === obj) {
      a.mask = mask;
      a.seen = pass;
      return;
    }
    if (mask === 0) return;
    const rc = native.epollCtl!(s.epfd, C.EPOLL_CTL_ADD, fd, mask);
    if (rc === -C_EPERM) {
      s.alwaysReady.set(fd, { obj, mask, seen: pass });
      return;
    }
    // EBADF: the channel's fd is closed. EINVAL with fd === epfd: it was
    // closed and the set itself took the number. Either way the pass
    // reports POLLNVAL for it, as poll(2) would.
    const gone = rc === -C_EBADF || (rc === -C_EINVAL && fd === s.epfd);
    if (rc < 0 && !gone) throw new OSError(-rc, 'epoll_ctl');
    if (rc < 0) s.broken++;
    s.reg.set(fd, { obj, mask: rc < 0 ? -1 : mask, seen: pass });
    sweepSeen++;
    return;
  }
  r.seen = pass;
  sweepSeen++;
  if (r.mask === mask || r.mask === -1) return;
  if (mask === 0) {
    s.drop(fd, r);
    sweepSeen--;
    return;
  }
  const rc = native.epollCtl!(s.epfd, C.EPOLL_CTL_MOD, fd, mask);
  if (rc < 0 && rc !== -C_EBADF && rc !== -C_ENOENT) throw new OSError(-rc, 'epoll_ctl');
  if (rc < 0) s.broken++;
  r.mask = rc < 0 ? -1 : mask;
}

/**
 * Brings the epoll set of `map` up to date with every channel's
 * readable()/writable(); returns the set. epoll_ctl runs only for changes.
 */
export function syncEpoll(map: SocketMap): EpollSet {
  const s = epollSetOf(map);
  const pass = ++s.pass;
  const outerSet = sweepSet, outerSeen = sweepSeen;
  sweepSet = s;
  sweepSeen = 0;
  try {
    map.forEach(sweepOne);
    if (sweepSeen !== s.reg.size) {
      // Some channels left the map without a notice (a plain Map edited directly).
      for (const [fd, r] of s.reg) if (r.seen !== pass) s.drop(fd, r);
    }
  } finally {
    sweepSet = outerSet;
    sweepSeen = outerSeen;
  }
  if (s.alwaysReady.size > 0) for (const [fd, a] of s.alwaysReady) if (a.seen !== pass) s.alwaysReady.delete(fd);
  return s;
}

/**
 * One pass over epoll(7) for `map`, with interest kept between passes.
 * `timeout` in seconds (rounded up to whole ms). Linux only.
 */
export function pollEpoll(timeout: number | null = 0, map: SocketMap = socketMap): void {
  const s = syncEpoll(map);
  dispatchEpoll(s, map, toWaitMs(timeout));
}

/** Waits on the set (0 ms when a channel is always ready) and dispatches the events. */
export function dispatchEpoll(s: EpollSet, map: SocketMap, ms: number): void {
  let extra: Array<[number, Channel, number]> | null = null;
  if (s.broken > 0 || s.alwaysReady.size > 0) {
    extra = [];
    if (s.broken > 0) for (const [fd, r] of s.reg) if (r.mask === -1) extra.push([fd, r.obj, POLLNVAL]);
    for (const [fd, a] of s.alwaysReady) {
      const ev = (a.mask & C.EPOLLIN ? POLLIN : 0) | (a.mask & C.EPOLLOUT ? POLLOUT : 0);
      if (ev) extra.push([fd, a.obj, ev]);
    }
  }
  const nExtra = extra === null ? 0 : extra.length;
  if (s.reg.size === s.broken && nExtra === 0) {
    sleepMs(ms);
    return;
  }
  const want = Math.min(Math.max(64, s.reg.size), 65536);
  if (s.fds.length < want) {
    s.fds = new Int32Array(want);
    s.evs = new Uint32Array(want);
  }
  // A handler may run a nested pass on the same map: it gets its own arrays.
  const nested = s.depth > 0;
  const fds = nested ? new Int32Array(want) : s.fds;
  const evs = nested ? new Uint32Array(want) : s.evs;
  const objs = nested ? [] : s.objs;
  const n = s.reg.size === s.broken ? 0 : native.epollWait!(s.epfd, fds, evs, fds.length, nExtra ? 0 : ms);
  if (n < 0) throw new OSError(-n, 'epoll_wait');
  if (n + nExtra === 0) return;
  // Who each event belongs to is fixed before any handler runs.
  for (let i = 0; i < n; i++) objs[i] = s.reg.get(fds[i]!)?.obj;
  s.depth++;
  try {
    for (let i = 0; i < n; i++) {
      const obj = objs[i];
      const fd = fds[i]!;
      if (obj !== undefined && map.get(fd) === obj) readwrite(obj, evs[i]!);
    }
    if (extra !== null) for (const [fd, obj, ev] of extra) if (map.get(fd) === obj) readwrite(obj, ev);
  } finally {
    s.depth--;
    objs.fill(undefined, 0, n);
  }
}

// ------------------------------------------------------- a selector object

const selectorRegs = new WeakMap<BaseSelector<unknown>, Map<number, Channel>>();

/**
 * One pass over a selectors-style object (register / modify / unregister /
 * select). EVENT_READ dispatches a read event, EVENT_WRITE a write event.
 * The selector is never closed by the loop.
 */
export function pollSelector(timeout: number | null, map: SocketMap, selector: BaseSelector<unknown>): void {
  let regs = selectorRegs.get(selector);
  if (!regs) selectorRegs.set(selector, (regs = new Map()));
  const present = new Set<number>();
  for (const [fd, obj] of map) {
    let ev = 0;
    if (obj.readable()) ev |= EVENT_READ;
    if (obj.writable() && !obj.accepting) ev |= EVENT_WRITE;
    const had = regs.get(fd);
    if (had !== undefined && had !== obj) {
      try {
        selector.unregister(fd);
      } catch {
        /* already gone */
      }
      regs.delete(fd);
    }
    if (ev === 0) {
      if (regs.has(fd)) {
        selector.unregister(fd);
        regs.delete(fd);
      }
      continue;
    }
    present.add(fd);
    if (regs.has(fd)) {
      if (selector.getKey(fd).events !== ev) selector.modify(fd, ev, obj);
    } else {
      selector.register(fd, ev, obj);
      regs.set(fd, obj);
    }
  }
  for (const fd of [...regs.keys()]) {
    if (!present.has(fd)) {
      try {
        selector.unregister(fd);
      } catch {
        /* the fd was closed and forgotten */
      }
      regs.delete(fd);
    }
  }
  if (present.size === 0) {
    sleepMs(toWaitMs(timeout));
    return;
  }
  const t = timeout === null || timeout === undefined || timeout < 0 ? null : timeout;
  for (const [key, ev] of selector.select(t)) {
    const obj = key.data as Channel;
    if (map.get(key.fd) !== obj) continue;
    readwrite(obj, (ev & EVENT_READ ? POLLIN : 0) | (ev & EVENT_WRITE ? POLLOUT : 0));
  }
}

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
