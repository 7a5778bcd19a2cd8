/**
 * The interest cache: what every backend keeps between passes so that a
 * pass costs the ready and the changed channels, not the registered ones.
 *
 * asyncore asks every channel `readable()` and `writable()` before every
 * wait. The answers of most channels only change when something happens to
 * them, so the cache keeps each channel's last answer and its registration
 * with the poller (an epoll set, a `struct pollfd` array, select lists, a
 * selector) and asks again only a channel that
 * - joined the map, or was announced with `interestChanged()` (the library
 *   announces its own state changes: connect, listen, close, queued output);
 * - was dispatched in the previous pass (any of its handle*Event ran);
 * - does not report its interest: its class overrides `readable()` or
 *   `writable()` without declaring `static reportsInterest = true`. Such a
 *   channel is asked on every pass, exactly as asyncore does.
 *
 * The map's own changes arrive as notices (`watchMap`): a `ChannelMap`
 * reports `set` / `delete` itself, and dispatchers report theirs on any map.
 * A plain `Map` edited directly reports nothing, so for such a map every
 * pass also walks the map to find the edits (without asking the channels).
 *
 * Each backend subclasses `InterestCache` with `apply` (the channel's mask
 * changed: register / modify / unregister in the poller) and `unapply` (it
 * left). Masks are `READ | WRITE` bits; an accepting channel never has WRITE.
 */
import { ChannelMap, watchMap, type Channel, type MapChange, type SocketMap } from './map.js';

/** The channel wants to read (select rlist, POLLIN|POLLPRI, EPOLLIN|EPOLLPRI, EVENT_READ). */
export const READ = 1;
/** The channel wants to write (wlist, POLLOUT, EPOLLOUT, EVENT_WRITE). */
export const WRITE = 2;
/** Not asked yet. */
const UNKNOWN = -1;

/** One channel (or wake-up descriptor) as a backend knows it. */
export class Registration {
  /** The last answer, `READ | WRITE` bits; -1 before the first. */
  mask = UNKNOWN;
  /** Asked only when announced or dispatched (its class reports its interest). */
  tracked = false;
  /** Queued to be asked at the next sync. */
  dirty = false;
  /** The sync that last asked it (a channel is asked at most once per sync). */
  stamp = 0;
  /** It left the cache (the channel left the map, or the wake-up was removed). */
  gone = false;
  /** Whether the channel's classes declare `reportsInterest` (-1: not looked up yet). */
  classReports = -1;
  /** The next ask looks for methods of the object's own (it joined, or was announced). */
  checkOwn = true;
  /** Asked again after each dispatch (false when both methods are the library's own, which announce every change). */
  afterDispatch = true;
  /** Backend bookkeeping: an index into the poller's arrays (poll, select), or the kernel mask (epoll). */
  slot = -1;
  slotW = -1;
  slotX = -1;
  /** For a wake-up descriptor: called when it is readable. */
  readonly onReady: (() => void) | null;

  constructor(
    readonly fd: number,
    readonly obj: Channel,
    onReady: (() => void) | null = null,
  ) {
    this.onReady = onReady;
  }
}

// ------------------------------------------------ which channels report

const REPORTS = 'reportsInterest';
const declared = new WeakMap<object, boolean>();

/** True when the class that gives `proto` its method `name` declares `reportsInterest`. */
function definerDeclares(proto: object, name: string): boolean {
  let p: object | null = proto;
  while (p !== null) {
    const ctor = Object.hasOwn(p, 'constructor') ? (p as { constructor: unknown }).constructor : undefined;
    if (typeof ctor === 'function' && Object.hasOwn(ctor, REPORTS) && (ctor as unknown as Record<string, unknown>)[REPORTS] === false) return false;
    if (Object.hasOwn(p, name)) return typeof ctor === 'function' && Object.hasOwn(ctor, REPORTS) && (ctor as unknown as Record<string, unknown>)[REPORTS] === true;
    p = Object.getPrototypeOf(p) as object | null;
  }
  return false;
}

/**
 * Whether `obj` tells the loop about every change of its `readable()` /
 * `writable()` answers (so the loop may keep the last answers): true when
 * the classes that define both methods declare `static reportsInterest =
 * true` and no class between declares `false`, and the object has no
 * methods of its own by those names.
 */
export function reportsInterest(obj: Channel): boolean {
  return !ownMethods(obj) && classReports(obj);
}

function ownMethods(obj: Channel): boolean {
  return Object.hasOwn(obj, 'readable') || Object.hasOwn(obj, 'writable');
}

function classReports(obj: Channel): boolean {
  const proto = Object.getPrototypeOf(obj) as object | null;
  if (proto === null) return false;
  let v = declared.get(proto);
  if (v === undefined) {
    v = definerDeclares(proto, 'readable') && definerDeclares(proto, 'writable');
    declared.set(proto, v);
  }
  return v;
}

// The library's own readable()/writable() whose every input is announced
// when it changes (state setters, queues): a channel using only these needs
// no question after a dispatch, which saves one per message.
const announcing = new WeakSet<object>();

/** Internal: marks library methods whose inputs all announce their changes. */
export function announcesEveryChange(...methods: Array<() => boolean>): void {
  for (const m of methods) announcing.add(m);
}

// ------------------------------------------------ wake-up descriptors

interface WakeFd {
  fd: number;
  onReady: () => void;
}
const wakeFds = new WeakMap<SocketMap, Set<WakeFd>>();
const cachesOf = new WeakMap<SocketMap, Set<InterestCache>>();

/** A channel-shaped stand-in for a wake-up descriptor; the loops never call it. */
const wakeChannel: Channel = {
  fileno: () => null,
  readable: () => true,
  writable: () => false,
  handleReadEvent() {},
  handleWriteEvent() {},
  handleExptEvent() {},
  handleClose() {},
  handleError() {},
};

/**
 * Has every pass on `map` (all backends and loopAsync) watch `fd` for
 * readability beside the channels, calling `onReady` when it is readable
 * (before the pass's channels are dispatched). The descriptor is not a
 * channel: it is not in the map and does not keep `loop()` running. Returns
 * the function that stops watching it; call that before closing `fd`.
 */
export function addWakeFd(map: SocketMap, fd: number, onReady: () => void): () => void {
  if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`fd must be a non-negative integer, not ${String(fd)}`);
  if (typeof onReady !== 'function') throw new TypeError('onReady must be a function');
  let set = wakeFds.get(map);
  if (set === undefined) wakeFds.set(map, (set = new Set()));
  const w: WakeFd = { fd, onReady };
  set.add(w);
  for (const c of cachesOf.get(map) ?? []) c.addWake(w.fd, w.onReady);
  return () => {
    if (!set!.delete(w)) return;
    for (const c of cachesOf.get(map) ?? []) c.removeWake(w.fd);
  };
}

// ------------------------------------------------ the cache

export abstract class InterestCache {
  /** Every channel of the map the cache knows, by descriptor. */
  readonly regs = new Map<number, Registration>();
  /** Wake-up descriptors, by descriptor. */
  readonly wakes = new Map<number, Registration>();
  /** Every current registration (channels and wake-ups) indexed by descriptor, for the per-event lookup. */
  private readonly byFd: Array<Registration | undefined> = [];
  /** How many registrations (channels and wake-ups) have a non-zero mask. */
  interested = 0;
  private dirty: Registration[] = [];
  private readonly untracked = new Set<Registration>();
  /** The next sync walks the whole map (the first one). */
  private full = true;
  /** The map reports nothing of its own: every sync walks it for direct edits. */
  private readonly plain: boolean;
  private readonly unwatch: () => void;
  private syncs = 0;

  constructor(readonly map: SocketMap) {
    this.plain = !(map instanceof ChannelMap);
    this.unwatch = watchMap(map, (change, fd, channel) => this.notice(change, fd, channel));
    let set = cachesOf.get(map);
    if (set === undefined) cachesOf.set(map, (set = new Set()));
    set.add(this);
  }

  /** The backend registers, modifies or unregisters `r` for `mask` (`r.mask` still holds the old one, -1 at first). */
  protected abstract apply(r: Registration, mask: number): void;
  /** The backend forgets `r`, which had the non-zero mask `r.mask`. */
  protected abstract unapply(r: Registration): void;

  private notice(change: MapChange, fd: number, channel: Channel | undefined): void {
    let r = this.regs.get(fd);
    if (change === 'delete') {
      if (r !== undefined && (channel === undefined || r.obj === channel)) this.remove(r);
      return;
    }
    if (r !== undefined && channel !== undefined && r.obj !== channel) {
      // The descriptor now belongs to another channel.
      this.remove(r);
      r = undefined;
    }
    if (r === undefined) {
      const obj = channel ?? this.map.get(fd);
      if (obj === undefined || (change === 'interest' && this.map.get(fd) !== obj)) return;
      r = this.create(fd, obj);
    }
    r.checkOwn = true;
    this.mark(r);
  }

  private create(fd: number, obj: Channel): Registration {
    const r = new Registration(fd, obj);
    this.regs.set(fd, r);
    this.byFd[fd] = r;
    return r;
  }

  private mark(r: Registration): void {
    if (r.dirty) return;
    r.dirty = true;
    this.dirty.push(r);
  }

  /** After a dispatch: the channel's answers may have changed; ask it at the next sync. */
  touch(r: Registration): void {
    if (!r.dirty && r.tracked && r.afterDispatch && !r.gone) this.mark(r);
  }

  /** Forgets `r` (it left the map). */
  remove(r: Registration): void {
    if (r.gone || this.regs.get(r.fd) !== r) return;
    r.gone = true;
    this.regs.delete(r.fd);
    if (this.byFd[r.fd] === r) this.byFd[r.fd] = this.wakes.get(r.fd);
    this.untracked.delete(r);
    if (r.mask > 0) {
      this.unapply(r);
      this.interested--;
    }
    r.mask = UNKNOWN;
  }

  /** Asks `r`'s channel and brings its registration up to date. */
  private ask(r: Registration): void {
    r.stamp = this.syncs;
    const obj = r.obj;
    let mask = 0;
    if (obj.readable()) mask |= READ;
    if (obj.writable() && !obj.accepting) mask |= WRITE;
    if (r.gone) return; // readable()/writable() closed it
    if (r.classReports === -1) r.classReports = classReports(obj) ? 1 : 0;
    // After a dispatch only the answers are asked again: whether the object
    // has readable()/writable() of its own is looked at when it joins and
    // whenever it is announced.
    let tracked = r.tracked;
    if (r.checkOwn || r.mask === UNKNOWN) {
      r.checkOwn = false;
      tracked = r.classReports === 1 && !ownMethods(obj);
      r.afterDispatch = !(announcing.has(obj.readable) && announcing.has(obj.writable));
    }
    if (tracked !== r.tracked || r.mask === UNKNOWN) {
      r.tracked = tracked;
      if (tracked) this.untracked.delete(r);
      else this.untracked.add(r);
    }
    if (mask === r.mask) return;
    if (r.mask <= 0 && mask > 0) this.interested++;
    else if (r.mask > 0 && mask === 0) this.interested--;
    this.apply(r, mask);
    r.mask = mask;
  }

  /**
   * Brings the poller up to date before a wait: asks the channels whose
   * answers may have changed (all of them the first time).
   */
  sync(): void {
    this.syncs++;
    if (this.full || this.plain) this.walk();
    const dirty = this.dirty;
    if (dirty.length > 0) {
      this.dirty = [];
      let i = 0;
      try {
        for (; i < dirty.length; i++) {
          const r = dirty[i]!;
          r.dirty = false;
          if (!r.gone && (!this.plain || this.map.get(r.fd) === r.obj)) this.ask(r);
        }
      } finally {
        // A readable()/writable() threw (ExitNow, a bug): that channel and
        // the rest stay queued for the next sync.
        for (; i < dirty.length; i++) {
          const r = dirty[i]!;
          r.dirty = false;
          if (!r.gone) this.mark(r);
        }
      }
    }
    if (this.untracked.size > 0) {
      const now = this.syncs;
      for (const r of this.untracked) if (r.stamp !== now) this.ask(r);
    }
  }

  /** The first sync, and every sync of a plain Map: finds channels the cache was not told about. */
  private walk(): void {
    const first = this.full;
    this.full = false;
    if (first) for (const w of wakeFds.get(this.map) ?? []) this.addWake(w.fd, w.onReady);
    let seen = 0;
    for (const [fd, obj] of this.map) {
      let r = this.regs.get(fd);
      if (r !== undefined && r.obj !== obj) {
        this.remove(r);
        r = undefined;
      }
      if (r === undefined) r = this.create(fd, obj);
      seen++;
      if (first || r.mask === UNKNOWN) this.mark(r);
    }
    if (seen !== this.regs.size) {
      for (const r of [...this.regs.values()]) if (this.map.get(r.fd) !== r.obj) this.remove(r);
    }
  }

  /** The registration a ready descriptor belongs to, if it is still current. */
  lookup(fd: number): Registration | undefined {
    return this.byFd[fd];
  }

  /** Whether `r` may still be dispatched: its channel is in the map under its fd (or it is a wake-up). */
  live(r: Registration): boolean {
    if (r.gone) return false;
    // A ChannelMap reports every change, so `gone` says it all; a plain Map may have been edited directly.
    return r.onReady !== null || !this.plain || this.map.get(r.fd) === r.obj;
  }

  addWake(fd: number, onReady: () => void): void {
    const old = this.wakes.get(fd);
    if (old !== undefined) this.removeWake(fd);
    const r = new Registration(fd, wakeChannel, onReady);
    this.wakes.set(fd, r);
    if (this.byFd[fd] === undefined) this.byFd[fd] = r;
    this.interested++;
    this.apply(r, READ);
    r.mask = READ;
  }

  removeWake(fd: number): void {
    const r = this.wakes.get(fd);
    if (r === undefined) return;
    this.wakes.delete(fd);
    if (this.byFd[fd] === r) this.byFd[fd] = this.regs.get(fd);
    r.gone = true;
    this.unapply(r);
    this.interested--;
    r.mask = UNKNOWN;
  }

  /** Unregisters everything and stops listening to the map. */
  close(): void {
    this.unwatch();
    cachesOf.get(this.map)?.delete(this);
    for (const r of [...this.regs.values()]) this.remove(r);
    for (const fd of [...this.wakes.keys()]) this.removeWake(fd);
    this.dirty = [];
    this.full = true;
  }
}

/**
 * A backend's state for each map, kept on the map itself under a private
 * symbol: found with one property load per pass (a WeakMap lookup cost more
 * than the rest of an idle pass), and collected with the map.
 */
export class PerMap<T extends object> {
  private readonly key: symbol;

  constructor(
    name: string,
    private readonly make: (map: SocketMap) => T,
  ) {
    this.key = Symbol(`asyncore-native ${name}`);
  }

  /** The state of `map`, made on first use. */
  of(map: SocketMap): T {
    let s = (map as unknown as Record<symbol, T | undefined>)[this.key];
    if (s === undefined) {
      s = this.make(map);
      Object.defineProperty(map, this.key, { value: s, writable: true, configurable: true, enumerable: false });
    }
    return s;
  }

  /** The state of `map` if it has one. */
  peek(map: SocketMap): T | undefined {
    return (map as unknown as Record<symbol, T | undefined>)[this.key];
  }

  /** Closes (when it has `close`) and forgets the state of `map`. */
  release(map: SocketMap): void {
    const s = this.peek(map);
    if (s === undefined) return;
    (map as unknown as Record<symbol, T | undefined>)[this.key] = undefined;
    (s as { close?: () => void }).close?.();
  }
}
