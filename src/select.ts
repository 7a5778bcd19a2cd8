/**
 * Python's `select` module, 1:1: `select()`, `Poll`, `Epoll`.
 *
 * Units, as Python's: `select(…, timeout)` seconds; `Poll#poll(timeout)`
 * milliseconds; `Epoll#poll(timeout)` seconds. A timeout of null/undefined
 * (or negative for poll/epoll) waits forever; waits last at least the
 * timeout (rounded up to the syscall's resolution) and EINTR is retried with
 * the time that is left.
 *
 * The allocation-free `wait(timeoutMs, fds, events)` of Poll and Epoll fills
 * caller-owned typed arrays and returns a count: the form for hot loops.
 *
 * Errno policy by call class (the addon applies it; each row is tested):
 * | class                    | EINTR                         | EAGAIN / EINPROGRESS          |
 * | waits (select/poll/epoll)| retried, remaining timeout    | n/a                            |
 * | I/O (send/recv/accept)   | retried                       | returned as -errno (a value)   |
 * | connect                  | returned; caller waits on POLLOUT | EINPROGRESS returned       |
 * | close                    | never retried (fd is gone)    | n/a                            |
 */
import { native } from './native.js';
import * as C from './constants.js';
import { OSError, KeyError, check, closedError, errno as E } from './errors.js';

export {
  POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL, POLLRDNORM, POLLRDBAND, POLLWRNORM, POLLWRBAND, POLLRDHUP,
  EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP, EPOLLRDNORM, EPOLLRDBAND, EPOLLWRNORM, EPOLLWRBAND,
  EPOLLMSG, EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE, EPOLL_CLOEXEC, FD_SETSIZE, HAVE_EPOLL,
} from './constants.js';

/** Something select/poll can watch: a descriptor number or an object with `fileno()`. */
export type FileLike = number | {
  /** The descriptor to watch: a non-negative integer (else TypeError / RangeError, see `toFd`). */
  fileno(): number;
};

/** Python's `_PyObject_AsFileDescriptor`: TypeError for a non-integer, RangeError for a negative one. */
export function toFd(obj: unknown): number {
  let fd: unknown = obj;
  if (typeof obj === 'object' && obj !== null && typeof (obj as { fileno?: unknown }).fileno === 'function') {
    fd = (obj as { fileno(): unknown }).fileno();
  }
  if (typeof fd !== 'number' || !Number.isInteger(fd)) {
    throw new TypeError('argument must be an int, or have a fileno() method returning an int');
  }
  if (fd < 0) throw new RangeError(`file descriptor cannot be a negative integer (${fd})`);
  if (fd > 0x7fffffff) throw new RangeError(`file descriptor out of range (${fd})`);
  return fd;
}

function checkMask(mask: unknown, what = 'eventmask'): number {
  if (typeof mask !== 'number' || !Number.isInteger(mask)) throw new TypeError(`${what} must be an integer`);
  if (mask < -0x80000000 || mask > 0xffffffff) throw new RangeError(`${what} out of range`);
  return mask >>> 0;
}

/** poll(2) masks are C shorts: like Python, a mask outside 0..0xFFFF is an error, not truncated. */
function checkPollMask(mask: unknown): number {
  if (typeof mask !== 'number' || !Number.isInteger(mask)) throw new TypeError('eventmask must be an integer');
  if (mask < 0 || mask > 0xffff) throw new RangeError(`eventmask out of range for poll (0..0xFFFF): ${mask}`);
  return mask;
}

function checkTimeoutNumber(t: unknown, what: string): number | null {
  if (t === null || t === undefined) return null;
  if (typeof t !== 'number' || Number.isNaN(t)) throw new TypeError(`${what} must be a number or null`);
  return t;
}

let sel: { r: Int32Array; w: Int32Array; x: Int32Array } = { r: new Int32Array(64), w: new Int32Array(64), x: new Int32Array(64) };
const selCounts = new Int32Array(3);

function fill(list: readonly FileLike[], into: Int32Array): Int32Array {
  const out = into.length >= list.length ? into : new Int32Array(list.length * 2);
  for (let i = 0; i < list.length; i++) out[i] = toFd(list[i]);
  return out;
}

/** The objects of `list` whose descriptor is ready, in input order; one listed twice is reported twice, as Python's. */
function pick<T>(list: readonly T[], ready: Int32Array, n: number): T[] {
  if (n === 0) return [];
  const set = new Set<number>();
  for (let i = 0; i < n; i++) set.add(ready[i]!);
  const out: T[] = [];
  for (const o of list) if (set.has(toFd(o))) out.push(o);
  return out;
}

/**
 * select(2): waits until some of the objects are ready; returns the ready
 * subsets `[readable, writable, exceptional]` of the objects given.
 * `timeout` in seconds (null: forever). RangeError for an fd >= FD_SETSIZE
 * (use Poll or Epoll) or a negative timeout; OSError EBADF for a closed fd.
 */
export function select<R extends FileLike, W extends FileLike, X extends FileLike>(
  rlist: readonly R[],
  wlist: readonly W[],
  xlist: readonly X[],
  timeout: number | null = null,
): [R[], W[], X[]] {
  for (const [name, l] of [['rlist', rlist], ['wlist', wlist], ['xlist', xlist]] as const) {
    if (!Array.isArray(l) && !(l && typeof (l as Iterable<unknown>)[Symbol.iterator] === 'function'))
      throw new TypeError(`${name} must be an array`);
  }
  const rl = Array.from(rlist), wl = Array.from(wlist), xl = Array.from(xlist);
  const t = checkTimeoutNumber(timeout, 'timeout');
  if (t !== null && t < 0) throw new RangeError('timeout must be non-negative');
  // The arrays are filled before the call, so a fileno() that throws leaves nothing half-done.
  const r = fill(rl, sel.r), w = fill(wl, sel.w), x = fill(xl, sel.x);
  sel = { r: r.length > sel.r.length ? r : sel.r, w: w.length > sel.w.length ? w : sel.w, x: x.length > sel.x.length ? x : sel.x };
  const ms = t === null ? -1 : t * 1000;
  const n = native.select(r, rl.length, w, wl.length, x, xl.length, ms, selCounts);
  if (n < 0) throw new OSError(-n, 'select');
  return [pick(rl, r, selCounts[0]!), pick(wl, w, selCounts[1]!), pick(xl, x, selCounts[2]!)];
}

/** The allocation-free wait shared by Poll and Epoll (and asyncore's passes). */
export interface Waiter {
  /** Waits up to `timeoutMs` (negative: forever); fills `fds` / `events`; returns the count. */
  wait(timeoutMs: number, fds: Int32Array, events: Uint32Array): number;
}

/** epoll_wait(2)'s bound on maxevents on Linux: INT_MAX / sizeof(struct epoll_event) (12 bytes on x86-64, 16 elsewhere). */
const EP_MAX_EVENTS = Math.floor(0x7fffffff / (process.arch === 'x64' ? 12 : 16));

const DEFAULT_POLL_MASK = C.POLLIN | C.POLLPRI | C.POLLOUT;

/**
 * Python's `select.poll()` object. The registration lives in an array of
 * struct pollfd kept between calls (no rebuilding per wait).
 */
export class Poll implements Waiter {
  private pollfds = new Int32Array(32);
  private index = new Map<number, number>();
  private outFds = new Int32Array(0);
  private outEvents = new Uint32Array(0);

  /** Registers (or re-registers) `fd` for `eventmask` (default POLLIN|POLLPRI|POLLOUT). */
  register(fd: FileLike, eventmask: number = DEFAULT_POLL_MASK): void {
    const f = toFd(fd);
    const mask = checkPollMask(eventmask);
    let i = this.index.get(f);
    if (i === undefined) {
      i = this.index.size;
      if ((i + 1) * 2 > this.pollfds.length) {
        const grown = new Int32Array(this.pollfds.length * 2);
        grown.set(this.pollfds);
        this.pollfds = grown;
      }
      this.index.set(f, i);
    }
    this.pollfds[2 * i] = f;
    this.pollfds[2 * i + 1] = mask;
  }

  /** Changes the mask of a registered fd; OSError ENOENT when it is not registered. */
  modify(fd: FileLike, eventmask: number): void {
    const f = toFd(fd);
    const mask = checkPollMask(eventmask);
    const i = this.index.get(f);
    if (i === undefined) throw new OSError(E.ENOENT, 'poll.modify');
    this.pollfds[2 * i + 1] = mask;
  }

  /** Removes `fd`; KeyError when it is not registered. */
  unregister(fd: FileLike): void {
    const f = toFd(fd);
    const i = this.index.get(f);
    if (i === undefined) throw new KeyError(f);
    const last = this.index.size - 1;
    if (i !== last) {
      const lf = this.pollfds[2 * last]!;
      this.pollfds[2 * i] = lf;
      this.pollfds[2 * i + 1] = this.pollfds[2 * last + 1]! & 0xffff;
      this.index.set(lf, i);
    }
    this.index.delete(f);
  }

  /** How many descriptors are registered. */
  get size(): number {
    return this.index.size;
  }

  /**
   * Waits up to `timeout` milliseconds (null/undefined or negative: forever;
   * fractions round up) and returns `[fd, revents][]`. RangeError beyond
   * 2^31 - 1 ms (poll(2)'s int; Python: OverflowError), TypeError for NaN.
   */
  poll(timeout: number | null = null): Array<[number, number]> {
    const t = checkTimeoutNumber(timeout, 'timeout');
    // poll(2) takes an int of milliseconds (Python: OverflowError beyond it).
    if (t !== null && Math.ceil(t) > 0x7fffffff) throw new RangeError(`timeout too large for poll (ms > ${0x7fffffff})`);
    const n = this.index.size;
    if (this.outFds.length < n) {
      this.outFds = new Int32Array(n);
      this.outEvents = new Uint32Array(n);
    }
    const count = this.wait(t === null ? -1 : t, this.outFds, this.outEvents);
    const out: Array<[number, number]> = [];
    for (let i = 0; i < count; i++) out.push([this.outFds[i]!, this.outEvents[i]!]);
    return out;
  }

  /** Allocation-free poll: fills `fds` / `events` (up to their length); returns the count. Timeout in ms. */
  wait(timeoutMs: number, fds: Int32Array, events: Uint32Array): number {
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs)) throw new TypeError('timeout must be a number');
    const r = native.poll(this.pollfds, this.index.size, timeoutMs < 0 ? -1 : Math.ceil(timeoutMs), fds, events);
    if (r < 0) throw new OSError(-r, 'poll');
    return r;
  }
}

/**
 * Python's `select.epoll` (Linux). Closed objects throw OSError EBADF
 * (Python: ValueError). Double registration: OSError EEXIST; unknown fd:
 * ENOENT; a closed fd: EBADF.
 */
export class Epoll implements Waiter {
  private epfd: number;
  private outFds = new Int32Array(0);
  private outEvents = new Uint32Array(0);

  /** `sizehint` is ignored by the kernel but checked as Python does; `flags` may be EPOLL_CLOEXEC (always set). */
  constructor(sizehint = -1, flags = 0) {
    if (!native.epollCreate) throw new OSError(E.ENOSYS, 'epoll_create1', 'epoll is not available on this platform');
    if (typeof sizehint !== 'number' || !Number.isInteger(sizehint)) throw new TypeError('sizehint must be an integer');
    if (sizehint === 0 || sizehint < -1) throw new RangeError('negative sizehint');
    if (typeof flags !== 'number' || !Number.isInteger(flags)) throw new TypeError('flags must be an integer');
    if (flags & ~C.EPOLL_CLOEXEC) throw new OSError(E.EINVAL, 'epoll_create1');
    this.epfd = check(native.epollCreate(0), 'epoll_create1');
  }

  /** Wraps an existing epoll descriptor (taking ownership of it). */
  static fromfd(fd: number): Epoll {
    const e = Object.create(Epoll.prototype) as Epoll;
    e.epfd = toFd(fd);
    e.outFds = new Int32Array(0);
    e.outEvents = new Uint32Array(0);
    return e;
  }

  /** True once `close()` ran. */
  get closed(): boolean {
    return this.epfd < 0;
  }

  /**
   * The epoll descriptor itself; it is pollable: readable when events wait.
   * OSError EBADF once closed (Python: ValueError).
   */
  fileno(): number {
    if (this.epfd < 0) throw closedError('epoll object', 'fileno');
    return this.epfd;
  }

  /** Closes the epoll descriptor; a second call does nothing. Never throws (an error from close(2) is dropped). */
  close(): void {
    if (this.epfd < 0) return;
    const fd = this.epfd;
    this.epfd = -1;
    native.close(fd);
  }

  private live(syscall: string): number {
    if (this.epfd < 0) throw closedError('epoll object', syscall);
    return this.epfd;
  }

  private ctl(op: number, fd: FileLike, mask: number, syscall: string): void {
    const ep = this.live(syscall);
    const r = native.epollCtl!(ep, op, toFd(fd), mask);
    if (r < 0) throw new OSError(-r, syscall);
  }

  /**
   * Adds `fd` with `eventmask` (default EPOLLIN|EPOLLPRI|EPOLLOUT; EPOLLET,
   * EPOLLONESHOT, … may be or'ed in). OSError EEXIST when it is registered
   * already, EBADF for a closed fd (or a closed Epoll), EPERM for a file
   * epoll cannot watch (a regular file); TypeError / RangeError for a bad fd
   * or a mask outside 32 bits.
   */
  register(fd: FileLike, eventmask: number = C.EPOLLIN | C.EPOLLPRI | C.EPOLLOUT): void {
    this.ctl(C.EPOLL_CTL_ADD, fd, checkMask(eventmask), 'epoll_ctl');
  }

  /**
   * Changes the mask of a registered `fd`. OSError ENOENT when it is not
   * registered, EBADF for a closed fd (or a closed Epoll); TypeError /
   * RangeError as `register`.
   */
  modify(fd: FileLike, eventmask: number): void {
    this.ctl(C.EPOLL_CTL_MOD, fd, checkMask(eventmask), 'epoll_ctl');
  }

  /**
   * Removes `fd`. OSError ENOENT when it is not registered, EBADF for a
   * descriptor that is closed already (closing it took it out of the set;
   * Python raises too); TypeError / RangeError for a bad fd.
   */
  unregister(fd: FileLike): void {
    this.ctl(C.EPOLL_CTL_DEL, fd, 0, 'epoll_ctl');
  }

  /**
   * Waits up to `timeout` seconds (null or negative: forever; rounded up to
   * whole ms) for at most `maxevents` events (-1: FD_SETSIZE - 1); returns
   * `[fd, events][]` with unsigned masks.
   */
  poll(timeout: number | null = null, maxevents = -1): Array<[number, number]> {
    this.live('epoll_wait');
    const t = checkTimeoutNumber(timeout, 'timeout');
    if (typeof maxevents !== 'number' || !Number.isInteger(maxevents)) throw new TypeError('maxevents must be an integer');
    if (maxevents === 0 || maxevents < -1) throw new RangeError(`maxevents must be greater than 0, got ${maxevents}`);
    const max = maxevents === -1 ? C.FD_SETSIZE - 1 : maxevents;
    // The kernel's limit (EP_MAX_EVENTS = INT_MAX / sizeof(struct epoll_event)):
    // its EINVAL is given before arrays of that size are allocated.
    if (max > EP_MAX_EVENTS) throw new OSError(E.EINVAL, 'epoll_wait');
    if (this.outFds.length < max) {
      this.outFds = new Int32Array(max);
      this.outEvents = new Uint32Array(max);
    }
    const ms = t === null || t < 0 ? -1 : Math.ceil(t * 1000);
    const n = this.waitN(ms, this.outFds, this.outEvents, max);
    const out: Array<[number, number]> = [];
    for (let i = 0; i < n; i++) out.push([this.outFds[i]!, this.outEvents[i]!]);
    return out;
  }

  /**
   * Allocation-free epoll_wait: fills `fds` / `events` (at most the shorter
   * one's length); returns the count. Timeout in milliseconds (negative:
   * forever; fractions round up). RangeError for empty arrays, TypeError for
   * a NaN timeout or arrays of the wrong type, OSError EBADF once closed.
   */
  wait(timeoutMs: number, fds: Int32Array, events: Uint32Array): number {
    return this.waitN(timeoutMs, fds, events, Math.min(fds.length, events.length));
  }

  private waitN(timeoutMs: number, fds: Int32Array, events: Uint32Array, max: number): number {
    const ep = this.live('epoll_wait');
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs)) throw new TypeError('timeout must be a number');
    const r = native.epollWait!(ep, fds, events, max, timeoutMs < 0 ? -1 : Math.ceil(timeoutMs));
    if (r < 0) throw new OSError(-r, 'epoll_wait');
    return r;
  }

  /** `close()`, for `using` declarations. */
  [Symbol.for('nodejs.dispose')](): void {
    this.close();
  }
}
