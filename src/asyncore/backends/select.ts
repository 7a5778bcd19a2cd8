/**
 * The select(2) pass: asyncore's `poll`. The descriptor lists persist
 * between passes and change in place (a swap-remove keeps them dense), so a
 * pass costs the kernel's own select(2) scan plus the ready channels.
 */
import { native } from '../../native.js';
import { OSError } from '../../errors.js';
import { exception, read, sleepMs, toWaitMs, write } from '../dispatch.js';
import { InterestCache, PerMap, READ, WRITE, type Registration } from '../interest.js';
import { socketMap, type SocketMap } from '../map.js';

/** A dense list of descriptors with the registration behind each entry. */
class FdList {
  fds: Int32Array<ArrayBuffer> = new Int32Array(64);
  regs: Registration[] = [];
  length = 0;

  /** Appends `r`; returns its index. */
  add(r: Registration): number {
    if (this.length === this.fds.length) {
      const grown = new Int32Array(this.fds.length * 2);
      grown.set(this.fds);
      this.fds = grown;
    }
    const i = this.length++;
    this.fds[i] = r.fd;
    this.regs[i] = r;
    return i;
  }

  /** Removes the entry at `i` by moving the last one into it; returns the moved registration. */
  removeAt(i: number): Registration | undefined {
    const last = --this.length;
    const moved = last !== i ? this.regs[last] : undefined;
    if (moved !== undefined) {
      this.fds[i] = this.fds[last]!;
      this.regs[i] = moved;
    }
    this.regs.length = last;
    return moved;
  }
}

/** The select lists of one map and the interest cache that keeps them. */
export class SelectLists extends InterestCache {
  readonly r = new FdList();
  readonly w = new FdList();
  /** Exceptional conditions are watched for every channel that reads. */
  readonly x = new FdList();
  // What the kernel overwrites (select(2) rewrites its sets): copies of the lists.
  sr: Int32Array<ArrayBuffer> = new Int32Array(64);
  sw: Int32Array<ArrayBuffer> = new Int32Array(64);
  sx: Int32Array<ArrayBuffer> = new Int32Array(64);
  readonly counts = new Int32Array(3);
  depth = 0;

  protected apply(reg: Registration, mask: number): void {
    const old = reg.mask > 0 ? reg.mask : 0;
    if (mask & READ && !(old & READ)) reg.slot = this.r.add(reg);
    if (!(mask & READ) && old & READ) this.drop(this.r, reg, 'slot');
    if (mask & WRITE && !(old & WRITE)) reg.slotW = this.w.add(reg);
    if (!(mask & WRITE) && old & WRITE) this.drop(this.w, reg, 'slotW');
    // Exceptional conditions (urgent data) are watched with reading, as the
    // poll and epoll passes ask POLLPRI only with POLLIN. asyncore also
    // watches writable-only channels, which spin on an urgent byte they do
    // not read (SO_OOBINLINE set, reading paused).
    if (mask & READ && !(old & READ)) reg.slotX = this.x.add(reg);
    if (!(mask & READ) && old & READ) this.drop(this.x, reg, 'slotX');
  }

  protected unapply(reg: Registration): void {
    this.apply(reg, 0);
  }

  private drop(list: FdList, reg: Registration, slot: 'slot' | 'slotW' | 'slotX'): void {
    const moved = list.removeAt(reg[slot]);
    if (moved !== undefined) moved[slot] = reg[slot];
    reg[slot] = -1;
  }
}

const kept = new PerMap('select lists', (map) => new SelectLists(map));

/** Forgets what is kept for `map` by this backend. */
export function releaseSelect(map: SocketMap): void {
  kept.release(map);
}

function copyInto(scratch: Int32Array<ArrayBuffer>, list: FdList): Int32Array<ArrayBuffer> {
  const out = scratch.length < list.length ? new Int32Array(list.fds.length) : scratch;
  out.set(list.fds.subarray(0, list.length));
  return out;
}

/**
 * One pass over select(2): asyncore's `poll`. Readable channels are asked for
 * reading and for exceptional conditions (urgent data), writable
 * non-accepting ones for writing. `timeout` in seconds (null: forever). RangeError for a
 * descriptor >= FD_SETSIZE.
 */
export function poll(timeout: number | null = 0, map: SocketMap = socketMap): void {
  if (map.size === 0 && kept.peek(map) === undefined) return;
  const s = kept.of(map);
  s.sync();
  const ms = toWaitMs(timeout);
  const nr = s.r.length, nw = s.w.length, nx = s.x.length;
  if (nr + nw + nx === 0) {
    if (map.size > 0) sleepMs(ms);
    return;
  }
  const nested = s.depth > 0;
  const sr = copyInto(nested ? new Int32Array(nr) : s.sr, s.r);
  const sw = copyInto(nested ? new Int32Array(nw) : s.sw, s.w);
  const sx = copyInto(nested ? new Int32Array(nx) : s.sx, s.x);
  if (!nested) {
    s.sr = sr;
    s.sw = sw;
    s.sx = sx;
  }
  const counts = nested ? new Int32Array(3) : s.counts;
  // A scan with no timeout first, then the blocking wait only when nothing
  // is ready: see the poll pass (a blocking select(2) queues a wait entry on
  // every descriptor scanned). With nothing ready the lists are untouched.
  let rc = native.select(sr, nr, sw, nw, sx, nx, 0, counts);
  if (rc === 0 && ms !== 0) rc = native.select(sr, nr, sw, nw, sx, nx, ms, counts);
  if (rc < 0) throw new OSError(-rc, 'select');
  if (rc === 0) return;
  const cr = counts[0]!, cw = counts[1]!, cx = counts[2]!;
  // Who each ready descriptor belongs to is fixed before any handler runs
  // (a handler may also run a nested pass that reuses the arrays).
  const ready: Array<Registration | undefined> = new Array(cr + cw + cx);
  for (let i = 0; i < cr; i++) ready[i] = s.lookup(sr[i]!);
  for (let i = 0; i < cw; i++) ready[cr + i] = s.lookup(sw[i]!);
  for (let i = 0; i < cx; i++) ready[cr + cw + i] = s.lookup(sx[i]!);
  s.depth++;
  try {
    for (let i = 0; i < cr; i++) {
      const r = ready[i];
      if (r !== undefined && r.onReady !== null && s.live(r)) r.onReady();
    }
    for (let i = 0; i < ready.length; i++) {
      const r = ready[i];
      if (r === undefined || r.onReady !== null || !s.live(r)) continue;
      if (i < cr) read(r.obj);
      else if (i < cr + cw) write(r.obj);
      else exception(r.obj);
      s.touch(r);
    }
  } finally {
    s.depth--;
  }
}
