/**
 * Python's `selectors` module: one contract, three implementations.
 *
 * The contract every selector meets (and the suite in test/ checks for each):
 * - `register(fileobj, events, data?)` → SelectorKey. `events` is a non-zero
 *   mask of EVENT_READ | EVENT_WRITE (RangeError otherwise); an fd already
 *   registered is a KeyError; a bad fileobj is TypeError / RangeError.
 * - `unregister(fileobj)` → the key; KeyError when unknown. Unregistering a
 *   descriptor that was already closed does not throw.
 * - `modify(fileobj, events, data?)` → the key; KeyError when unknown. As in
 *   Python, leaving `data` out sets it to undefined (Python: None).
 * - `select(timeout?)` → `[key, events][]`, `timeout` in seconds: null /
 *   undefined waits forever, <= 0 polls. Events are those the key asked for.
 * - `getKey(fileobj)` (KeyError when unknown), `getMap()` (fileobj → key, read
 *   only), `close()` (then every method throws OSError EBADF).
 */
import * as C from './constants.js';
import { KeyError, closedError } from './errors.js';
import { Epoll, Poll, toFd, select as selectFds, type FileLike } from './select.js';

/** Readable interest / readiness. */
export const EVENT_READ = 1;
/** Writable interest / readiness. */
export const EVENT_WRITE = 2;

/** What a selector remembers about one registered object. */
export interface SelectorKey<T = unknown> {
  /** The object that was registered: a descriptor number or an object with `fileno()`. */
  readonly fileobj: FileLike;
  /** Its descriptor number at registration. */
  readonly fd: number;
  /** The interest: EVENT_READ, EVENT_WRITE or both. */
  readonly events: number;
  /** The caller's value given to `register` / `modify`. */
  readonly data: T;
}

function checkEvents(events: unknown): number {
  if (typeof events !== 'number' || !Number.isInteger(events)) throw new TypeError('events must be an integer');
  if (events === 0 || events & ~(EVENT_READ | EVENT_WRITE)) throw new RangeError(`Invalid events: ${events}`);
  return events;
}

/**
 * The base of every selector: the bookkeeping, with the kernel part left to
 * subclasses. `T` is the type of the keys' `data`.
 *
 * Methods for callers: `register`, `unregister`, `modify`, `select`,
 * `getKey`, `getMap`, `close`. Methods a new backend implements: `osRegister`,
 * `osUnregister`, `osModify`, `osSelect` (the kernel side only; the keys are
 * kept here).
 */
export abstract class BaseSelector<T = unknown> {
  /** The registered keys by descriptor number (for subclasses; callers use `getMap()`). */
  protected readonly fdToKey = new Map<number, SelectorKey<T>>();
  private isClosed = false;

  /**
   * Hook: tells the kernel side about a new descriptor. A throw leaves it
   * unregistered.
   * @param events EVENT_READ | EVENT_WRITE
   */
  protected abstract osRegister(fd: number, events: number): void;
  /** Hook: forgets a descriptor; must not throw for one that was already closed. */
  protected abstract osUnregister(fd: number, events: number): void;
  /** Hook: changes a descriptor's interest from `oldEvents` to `events`. A throw drops the key. */
  protected abstract osModify(fd: number, oldEvents: number, events: number): void;
  /**
   * Hook: waits for readiness.
   * @param timeout seconds; null waits forever, 0 does not block
   * @returns `[fd, EVENT_READ | EVENT_WRITE]` pairs; fds not (or no longer) registered are ignored
   */
  protected abstract osSelect(timeout: number | null): Array<[number, number]>;

  /** @internal Throws OSError EBADF when the selector is closed. */
  protected live(what: string): void {
    if (this.isClosed) throw closedError('selector', what);
  }

  /** Finds the key of `fileobj` (by its descriptor), or undefined. */
  protected lookup(fileobj: FileLike): SelectorKey<T> | undefined {
    const direct = this.fdToKey.get(typeof fileobj === 'number' ? fileobj : -1);
    if (direct) return direct;
    try {
      return this.fdToKey.get(toFd(fileobj));
    } catch (e) {
      // A closed object's fileno() may fail: look it up by identity, as Python does.
      for (const key of this.fdToKey.values()) if (key.fileobj === fileobj) return key;
      throw e;
    }
  }

  /**
   * Starts watching `fileobj` for `events`.
   * @param events EVENT_READ, EVENT_WRITE or both
   * @param data any value, returned in the key
   * @returns the new key
   * @throws KeyError when its descriptor is already registered; RangeError for `events` 0 or with
   *   other bits; TypeError / RangeError for a bad `fileobj`; OSError from the kernel (epoll EPERM
   *   for a regular file); OSError EBADF when closed
   */
  register(fileobj: FileLike, events: number, data?: T): SelectorKey<T> {
    this.live('register');
    const ev = checkEvents(events);
    const fd = toFd(fileobj);
    if (this.fdToKey.has(fd)) throw new KeyError(fileobj, `${String(fileobj)} (FD ${fd}) is already registered`);
    const key: SelectorKey<T> = Object.freeze({ fileobj, fd, events: ev, data: data as T });
    this.osRegister(fd, ev);
    this.fdToKey.set(fd, key);
    return key;
  }

  /**
   * Stops watching `fileobj` (an object or its descriptor number). A descriptor
   * closed before this call is unregistered without error.
   * @returns the key it had
   * @throws KeyError when not registered; OSError EBADF when closed
   */
  unregister(fileobj: FileLike): SelectorKey<T> {
    this.live('unregister');
    const key = this.lookup(fileobj);
    if (!key) throw new KeyError(fileobj, `${String(fileobj)} is not registered`);
    this.fdToKey.delete(key.fd);
    this.osUnregister(key.fd, key.events);
    return key;
  }

  /**
   * Changes the interest and data of a registered `fileobj`; `data` left out
   * becomes undefined, as Python's None.
   * @returns the new key (keys are immutable)
   * @throws KeyError when not registered; RangeError for bad `events`; OSError when the kernel
   *   refuses (the key is then dropped); OSError EBADF when closed
   */
  modify(fileobj: FileLike, events: number, data?: T): SelectorKey<T> {
    this.live('modify');
    const key = this.lookup(fileobj);
    if (!key) throw new KeyError(fileobj, `${String(fileobj)} is not registered`);
    const ev = checkEvents(events);
    if (ev === key.events && data === key.data) return key;
    if (ev !== key.events) {
      try {
        this.osModify(key.fd, key.events, ev);
      } catch (e) {
        // The kernel refused (e.g. epoll EBADF for a closed fd): the key is dropped
        // rather than left describing an interest that no longer exists (bpo-30014).
        this.fdToKey.delete(key.fd);
        throw e;
      }
    }
    const next: SelectorKey<T> = Object.freeze({ fileobj: key.fileobj, fd: key.fd, events: ev, data: data as T });
    this.fdToKey.set(key.fd, next);
    return next;
  }

  /**
   * Waits until a registered object is ready.
   * @param timeout seconds; null / undefined waits forever; <= 0 does not block. Rounded up to
   *   the backend's resolution, so a wait is never shorter than asked.
   * @returns `[key, events]` for each ready object, `events` within the key's interest; `[]` on
   *   timeout. A signal ends the wait early only if its handler throws (EINTR is retried).
   * @throws TypeError for a timeout that is not a number or null; OSError EBADF when closed
   */
  select(timeout: number | null = null): Array<[SelectorKey<T>, number]> {
    this.live('select');
    if (timeout !== null && timeout !== undefined && (typeof timeout !== 'number' || Number.isNaN(timeout)))
      throw new TypeError('timeout must be a number of seconds or null');
    const t = timeout === null || timeout === undefined ? null : Math.max(0, timeout);
    const ready: Array<[SelectorKey<T>, number]> = [];
    for (const [fd, ev] of this.osSelect(t)) {
      const key = this.fdToKey.get(fd);
      if (key && ev & key.events) ready.push([key, ev & key.events]);
    }
    return ready;
  }

  /**
   * @returns the key of `fileobj` (an object or its descriptor number)
   * @throws KeyError when not registered; OSError EBADF when closed
   */
  getKey(fileobj: FileLike): SelectorKey<T> {
    this.live('getKey');
    const key = this.lookup(fileobj);
    if (!key) throw new KeyError(fileobj, `${String(fileobj)} is not registered`);
    return key;
  }

  /**
   * fileobj → key: a read-only live view (it follows later register /
   * unregister calls, as Python's mapping does). `get` / `has` accept the
   * object or its descriptor number.
   * @throws OSError EBADF when closed
   */
  getMap(): ReadonlyMap<FileLike, SelectorKey<T>> {
    this.live('getMap');
    return (this.mapView ??= new SelectorMapping(this.fdToKey, (f) => this.lookup(f)));
  }
  private mapView?: SelectorMapping<T>;

  /**
   * Forgets every key and releases the kernel side (EpollSelector closes its
   * epoll descriptor); the registered objects stay open. Closing twice is harmless.
   */
  close(): void {
    this.fdToKey.clear();
    this.isClosed = true;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** `close()`, for `using`. */
  [Symbol.for('nodejs.dispose')](): void {
    this.close();
  }
}

/** The live, read-only view `getMap()` returns. */
class SelectorMapping<T> implements ReadonlyMap<FileLike, SelectorKey<T>> {
  constructor(
    private readonly keys_: ReadonlyMap<number, SelectorKey<T>>,
    private readonly find: (fileobj: FileLike) => SelectorKey<T> | undefined,
  ) {}
  get size(): number {
    return this.keys_.size;
  }
  get(fileobj: FileLike): SelectorKey<T> | undefined {
    try {
      return this.find(fileobj);
    } catch {
      return undefined; // not a file object at all: not in the map
    }
  }
  has(fileobj: FileLike): boolean {
    return this.get(fileobj) !== undefined;
  }
  *entries(): MapIterator<[FileLike, SelectorKey<T>]> {
    for (const k of this.keys_.values()) yield [k.fileobj, k];
  }
  *keys(): MapIterator<FileLike> {
    for (const k of this.keys_.values()) yield k.fileobj;
  }
  values(): MapIterator<SelectorKey<T>> {
    return this.keys_.values();
  }
  [Symbol.iterator](): MapIterator<[FileLike, SelectorKey<T>]> {
    return this.entries();
  }
  forEach(cb: (key: SelectorKey<T>, fileobj: FileLike, map: ReadonlyMap<FileLike, SelectorKey<T>>) => void, thisArg?: unknown): void {
    for (const k of this.keys_.values()) cb.call(thisArg, k, k.fileobj, this);
  }
}

/** select(2) behind the selector contract (descriptors < FD_SETSIZE). */
export class SelectSelector<T = unknown> extends BaseSelector<T> {
  private readers = new Set<number>();
  private writers = new Set<number>();

  protected osRegister(fd: number, events: number): void {
    if (fd >= C.FD_SETSIZE) throw new RangeError(`filedescriptor out of range in select(): ${fd} >= FD_SETSIZE (${C.FD_SETSIZE}); use PollSelector or EpollSelector`);
    if (events & EVENT_READ) this.readers.add(fd);
    if (events & EVENT_WRITE) this.writers.add(fd);
  }
  protected osUnregister(fd: number): void {
    this.readers.delete(fd);
    this.writers.delete(fd);
  }
  protected osModify(fd: number, _old: number, events: number): void {
    this.osUnregister(fd);
    this.osRegister(fd, events);
  }
  protected osSelect(timeout: number | null): Array<[number, number]> {
    const [r, w] = selectFds([...this.readers], [...this.writers], [], timeout);
    const ev = new Map<number, number>();
    for (const fd of r) ev.set(fd, EVENT_READ);
    for (const fd of w) ev.set(fd, (ev.get(fd) ?? 0) | EVENT_WRITE);
    return [...ev];
  }
}

/** Shared by the poll(2) and epoll(7) selectors: map EVENT_* to the kernel's bits and back. */
abstract class KernelSelector<T> extends BaseSelector<T> {
  /** @internal The kernel's bit for EVENT_READ. */
  protected abstract readonly inBits: number;
  /** @internal The kernel's bit for EVENT_WRITE. */
  protected abstract readonly outBits: number;
  /** @internal The kernel's error and hang-up bits. */
  protected abstract readonly errBits: number;
  /** @internal EVENT_* → the kernel's bits. */
  protected toKernel(events: number): number {
    return (events & EVENT_READ ? this.inBits : 0) | (events & EVENT_WRITE ? this.outBits : 0);
  }
  /** @internal Errors and hang-ups count as both readable and writable, as in Python. */
  protected fromKernel(bits: number): number {
    return (bits & (this.inBits | this.errBits) ? EVENT_READ : 0) | (bits & (this.outBits | this.errBits) ? EVENT_WRITE : 0);
  }
}

/** poll(2) behind the selector contract. */
export class PollSelector<T = unknown> extends KernelSelector<T> {
  private poller = new Poll();
  /** @internal */
  protected readonly inBits = C.POLLIN;
  /** @internal */
  protected readonly outBits = C.POLLOUT;
  /** @internal */
  protected readonly errBits = C.POLLERR | C.POLLHUP | C.POLLNVAL;
  protected osRegister(fd: number, events: number): void {
    this.poller.register(fd, this.toKernel(events));
  }
  protected osUnregister(fd: number): void {
    this.poller.unregister(fd);
  }
  protected osModify(fd: number, _old: number, events: number): void {
    this.poller.modify(fd, this.toKernel(events));
  }
  protected osSelect(timeout: number | null): Array<[number, number]> {
    const ms = timeout === null ? null : Math.ceil(timeout * 1000);
    return this.poller.poll(ms).map(([fd, bits]) => [fd, this.fromKernel(bits)]);
  }
}

/** epoll(7) behind the selector contract (Linux). `fileno()` is the epoll descriptor. */
export class EpollSelector<T = unknown> extends KernelSelector<T> {
  private poller = new Epoll();
  /** @internal */
  protected readonly inBits = C.EPOLLIN;
  /** @internal */
  protected readonly outBits = C.EPOLLOUT;
  /** @internal */
  protected readonly errBits = C.EPOLLERR | C.EPOLLHUP;
  /**
   * The epoll descriptor: pollable itself (readable when a registered object is ready).
   * @throws OSError EBADF when closed
   */
  fileno(): number {
    return this.poller.fileno();
  }
  protected osRegister(fd: number, events: number): void {
    this.poller.register(fd, this.toKernel(events));
  }
  protected osUnregister(fd: number): void {
    // The kernel already forgot a closed descriptor (EBADF) or one that
    // was closed and reopened (ENOENT): the key is gone either way.
    try {
      this.poller.unregister(fd);
    } catch (e) {
      if (!(e instanceof Error && 'errno' in e)) throw e;
    }
  }
  protected osModify(fd: number, _old: number, events: number): void {
    this.poller.modify(fd, this.toKernel(events));
  }
  protected osSelect(timeout: number | null): Array<[number, number]> {
    const max = Math.max(1, this.fdToKey.size);
    return this.poller.poll(timeout === null ? -1 : timeout, max).map(([fd, bits]) => [fd, this.fromKernel(bits)]);
  }
  override close(): void {
    this.poller.close();
    super.close();
  }
}

/** The best selector of the platform: EpollSelector on Linux, else PollSelector. */
export const DefaultSelector: {
  /** Creates the platform's best selector (`new DefaultSelector()`). */
  new <T = unknown>(): BaseSelector<T>;
} = C.HAVE_EPOLL ? EpollSelector : PollSelector;
