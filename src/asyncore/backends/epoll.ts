/**
 * The epoll(7) pass: one epoll set per map, kept across passes and loop()
 * calls. epoll_ctl runs only when a channel's interest changed, and the
 * wait returns only the ready descriptors, so a pass costs the ready and
 * the changed channels. Linux only.
 */
import { native } from '../../native.js';
import * as C from '../../constants.js';
import { OSError, errno as E } from '../../errors.js';
import { readwrite, sleepMs, toWaitMs } from '../dispatch.js';
import { InterestCache, PerMap, READ, WRITE, type Registration } from '../interest.js';
import { socketMap, type SocketMap } from '../map.js';

const C_EPERM = E.EPERM!, C_EBADF = E.EBADF!, C_ENOENT = E.ENOENT!, C_EINVAL = E.EINVAL!, C_EEXIST = E.EEXIST!;
const POLLIN = C.POLLIN, POLLOUT = C.POLLOUT, POLLNVAL = C.POLLNVAL;
const EP_READ = C.EPOLLIN | C.EPOLLPRI;

// What `Registration#slot` holds for this backend: the mask registered with
// the kernel (> 0), or one of these.
const NONE = -1;
/** The descriptor turned out closed: reported as POLLNVAL, as poll(2) would. */
const BROKEN = -2;
/** epoll refuses it (EPERM: a regular file): always ready, as poll(2) reports such files. */
const FILE = -3;

function kernelMask(mask: number): number {
  return (mask & READ ? EP_READ : 0) | (mask & WRITE ? C.EPOLLOUT : 0);
}

/** The epoll set of one map and the interest cache that keeps it. */
export class EpollSet extends InterestCache {
  readonly epfd: number;
  /** Channels epoll cannot watch (regular files), always ready. */
  readonly alwaysReady = new Set<Registration>();
  /** Channels whose descriptor turned out closed. */
  readonly brokenRegs = new Set<Registration>();
  /** How many descriptors are in the kernel set. */
  inKernel = 0;
  fds = new Int32Array(64);
  evs = new Uint32Array(64);
  regsOut: Array<Registration | undefined> = [];
  /** Passes running on this set right now (a handler may run a nested pass). */
  depth = 0;
  /** Run just before the descriptor closes (loopAsync closes its uv_poll watcher there). */
  readonly beforeClose = new Set<() => void>();

  constructor(map: SocketMap) {
    const epfd = native.epollCreate!(0);
    if (epfd < 0) throw new OSError(-epfd, 'epoll_create1');
    super(map);
    this.epfd = epfd;
  }

  /** How many channels are reported as closed descriptors. */
  get broken(): number {
    return this.brokenRegs.size;
  }

  protected apply(r: Registration, mask: number): void {
    if (mask === 0) {
      this.unapply(r);
      return;
    }
    if (r.slot === FILE || r.slot === BROKEN) return;
    const km = kernelMask(mask);
    if (r.slot === km) return;
    const epfd = this.epfd;
    let rc: number;
    if (r.slot === NONE) {
      rc = native.epollCtl!(epfd, C.EPOLL_CTL_ADD, r.fd, km);
      // Still in the set under a number that was closed and reused unnoticed.
      if (rc === -C_EEXIST) rc = native.epollCtl!(epfd, C.EPOLL_CTL_MOD, r.fd, km);
      if (rc === -C_EPERM) {
        r.slot = FILE;
        this.alwaysReady.add(r);
        return;
      }
    } else {
      rc = native.epollCtl!(epfd, C.EPOLL_CTL_MOD, r.fd, km);
      if (rc === -C_ENOENT) rc = -C_EBADF; // the kernel dropped it: the descriptor was closed
      else if (rc >= 0) {
        r.slot = km;
        return;
      }
      this.inKernel--;
    }
    if (rc >= 0) {
      r.slot = km;
      this.inKernel++;
      return;
    }
    // EBADF: the channel's fd is closed. EINVAL with fd === epfd: it was
    // closed and the set itself took the number. Either way the pass reports
    // POLLNVAL for it, as poll(2) would.
    if (rc === -C_EBADF || (rc === -C_EINVAL && r.fd === epfd)) {
      r.slot = BROKEN;
      this.brokenRegs.add(r);
      return;
    }
    r.slot = NONE;
    throw new OSError(-rc, 'epoll_ctl');
  }

  protected unapply(r: Registration): void {
    if (r.slot > 0) {
      native.epollCtl!(this.epfd, C.EPOLL_CTL_DEL, r.fd, 0);
      this.inKernel--;
    } else if (r.slot === BROKEN) {
      this.brokenRegs.delete(r);
    } else if (r.slot === FILE) {
      this.alwaysReady.delete(r);
    }
    r.slot = NONE;
  }

  override close(): void {
    for (const f of this.beforeClose) f();
    this.beforeClose.clear();
    super.close();
    native.close(this.epfd);
  }
}

const epollFinalizer = new FinalizationRegistry<number>((epfd) => native.close(epfd));
const sets = new PerMap('epoll set', (map) => {
  const s = new EpollSet(map);
  epollFinalizer.register(map, s.epfd, s);
  return s;
});

/** Closes the epoll set kept for `map` (loop() does it when the map empties; closeAll too). */
export function releaseEpoll(map: SocketMap): void {
  const s = sets.peek(map);
  if (s === undefined) return;
  epollFinalizer.unregister(s);
  sets.release(map);
}

/** Brings the epoll set of `map` up to date (epoll_ctl only for changes); returns it. */
export function syncEpoll(map: SocketMap): EpollSet {
  const s = sets.of(map);
  s.sync();
  return s;
}

/**
 * One pass over epoll(7) for `map`, with interest kept between passes.
 * `timeout` in seconds (rounded up to whole ms; null: forever). Linux only.
 */
export function pollEpoll(timeout: number | null = 0, map: SocketMap = socketMap): void {
  dispatchEpoll(syncEpoll(map), map, toWaitMs(timeout));
}

/** Waits on the set (0 ms when a channel is always ready) and dispatches the events. */
export function dispatchEpoll(s: EpollSet, _map: SocketMap, ms: number): void {
  let extra: Array<[Registration, number]> | null = null;
  if (s.brokenRegs.size > 0 || s.alwaysReady.size > 0) {
    extra = [];
    for (const r of s.brokenRegs) extra.push([r, POLLNVAL]);
    for (const r of s.alwaysReady) {
      const ev = (r.mask & READ ? POLLIN : 0) | (r.mask & WRITE ? POLLOUT : 0);
      if (ev) extra.push([r, ev]);
    }
  }
  const nExtra = extra === null ? 0 : extra.length;
  if (s.inKernel === 0 && nExtra === 0) {
    sleepMs(ms);
    return;
  }
  const want = Math.min(Math.max(64, s.inKernel), 65536);
  if (s.fds.length < want) {
    s.fds = new Int32Array(want);
    s.evs = new Uint32Array(want);
  }
  // A handler may run a nested pass on the same map: it gets its own arrays.
  const nested = s.depth > 0;
  const fds = nested ? new Int32Array(want) : s.fds;
  const evs = nested ? new Uint32Array(want) : s.evs;
  const regs = nested ? [] : s.regsOut;
  const n = s.inKernel === 0 ? 0 : native.epollWait!(s.epfd, fds, evs, fds.length, nExtra ? 0 : ms);
  if (n < 0) throw new OSError(-n, 'epoll_wait');
  if (n + nExtra === 0) return;
  s.depth++;
  try {
    // Who each event belongs to is fixed before any handler runs; wake-up
    // descriptors are served first.
    let wakes = false;
    for (let i = 0; i < n; i++) {
      const r = (regs[i] = s.lookup(fds[i]!));
      if (r !== undefined && r.onReady !== null) wakes = true;
    }
    if (wakes) for (let i = 0; i < n; i++) if (regs[i]?.onReady != null && s.live(regs[i]!)) regs[i]!.onReady!();
    for (let i = 0; i < n; i++) {
      const r = regs[i];
      if (r !== undefined && r.onReady === null && s.live(r)) {
        readwrite(r.obj, evs[i]!);
        s.touch(r);
      }
    }
    if (extra !== null) {
      for (const [r, ev] of extra) {
        if (s.live(r)) {
          readwrite(r.obj, ev);
          s.touch(r);
        }
      }
    }
  } finally {
    s.depth--;
    for (let i = 0; i < n; i++) regs[i] = undefined;
  }
}
