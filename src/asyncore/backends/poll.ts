/**
 * The poll(2) pass: asyncore's `poll2`. The `struct pollfd` array persists
 * between passes and changes in place (a swap-remove keeps it dense), so a
 * pass costs the kernel's own poll(2) scan plus the ready channels.
 */
import { native } from '../../native.js';
import * as C from '../../constants.js';
import { OSError } from '../../errors.js';
import { readwrite, sleepMs, toWaitMs } from '../dispatch.js';
import { InterestCache, PerMap, READ, WRITE, type Registration } from '../interest.js';
import { socketMap, type SocketMap } from '../map.js';

const POLL_READ = C.POLLIN | C.POLLPRI;

/**
 * The pollfd array of one map and the interest cache that keeps it. Entry i
 * is `fds[2i]` = fd and `fds[2i+1]` = events | revents << 16, the layout of
 * `struct pollfd`.
 */
export class PollArray extends InterestCache {
  fds = new Int32Array(128);
  regsAt: Registration[] = [];
  length = 0;
  depth = 0;

  protected apply(r: Registration, mask: number): void {
    if (mask === 0) {
      this.unapply(r);
      return;
    }
    const events = (mask & READ ? POLL_READ : 0) | (mask & WRITE ? C.POLLOUT : 0);
    if (r.slot < 0) {
      if (2 * this.length === this.fds.length) {
        const grown = new Int32Array(this.fds.length * 2);
        grown.set(this.fds);
        this.fds = grown;
      }
      r.slot = this.length++;
      this.fds[2 * r.slot] = r.fd;
      this.regsAt[r.slot] = r;
    }
    this.fds[2 * r.slot + 1] = events;
  }

  protected unapply(r: Registration): void {
    const i = r.slot;
    if (i < 0) return;
    const last = --this.length;
    if (i !== last) {
      const moved = this.regsAt[last]!;
      this.fds[2 * i] = this.fds[2 * last]!;
      this.fds[2 * i + 1] = this.fds[2 * last + 1]!;
      this.regsAt[i] = moved;
      moved.slot = i;
    }
    this.regsAt.length = last;
    r.slot = -1;
  }
}

const kept = new PerMap('poll array', (map) => new PollArray(map));

/** Forgets what is kept for `map` by this backend. */
export function releasePoll(map: SocketMap): void {
  kept.release(map);
}

/**
 * One pass over poll(2): asyncore's `poll2`. `timeout` in seconds (null:
 * forever; Python's poll2 truncates to whole ms, which turns 0.0005 into a
 * busy loop; we round up).
 */
export function poll2(timeout: number | null = 0, map: SocketMap = socketMap): void {
  const ms = toWaitMs(timeout);
  const p = kept.of(map);
  p.sync();
  const n = p.length;
  if (n === 0) {
    // asyncore's poll2 polls an empty set, which sleeps for the timeout.
    sleepMs(ms);
    return;
  }
  // A nested pass (run by a handler) polls a copy: the outer pass still reads its results.
  const nested = p.depth > 0;
  const fds = nested ? p.fds.slice(0, 2 * n) : p.fds;
  // A scan with no timeout first: a blocking poll(2) also queues a wait
  // entry on every descriptor it scans before the first ready one (most of a
  // busy server's descriptors are idle), which a timeout-0 scan does not.
  // Only when nothing is ready does the pass block. Measured beside 5 000
  // idle connections: 1.5x the messages per second (bench/README.md, "Idle
  // connections").
  let rc = native.poll(fds, n, 0);
  if (rc === 0 && ms !== 0) rc = native.poll(fds, n, ms);
  if (rc < 0) throw new OSError(-rc, 'poll');
  if (rc === 0) return;
  // Read the results out before dispatching: handlers change the array.
  const ready: Registration[] = [];
  const revents: number[] = [];
  for (let i = 0, found = 0; i < n && found < rc; i++) {
    const rev = (fds[2 * i + 1]! >>> 16) & 0xffff;
    if (rev !== 0) {
      found++;
      ready.push(p.regsAt[i]!);
      revents.push(rev);
    }
  }
  p.depth++;
  try {
    for (const r of ready) if (r.onReady !== null && p.live(r)) r.onReady();
    for (let i = 0; i < ready.length; i++) {
      const r = ready[i]!;
      if (r.onReady === null && p.live(r)) {
        readwrite(r.obj, revents[i]!);
        p.touch(r);
      }
    }
  } finally {
    p.depth--;
  }
}
