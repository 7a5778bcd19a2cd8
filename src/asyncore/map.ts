/**
 * Channel maps and the change notices the loops listen to.
 *
 * A map is any `Map<number, Channel>`; `socketMap` (the default) is a
 * `ChannelMap`, which also reports `set` / `delete` made on it directly.
 * Dispatchers report their own add / delete / interest changes through
 * `notifyMap`, so an epoll set can drop a descriptor before it is closed and
 * `loopAsync` can start a new pass without waiting for its timeout.
 */

/** What a map holds: anything with the dispatcher shape (Python's duck typing). */
export interface Channel {
  /** The descriptor the loop waits on; null once the channel left its map (the loop then skips it). */
  fileno(): number | null;
  /** Asked by the loop: wait for readability? (Dispatcher's default: true.) */
  readable(): boolean;
  /** Asked by the loop: wait for writability? Never asked of an `accepting` channel. */
  writable(): boolean;
  /** Accepting channels are never asked for writability. */
  accepting?: boolean;
  /** Called by the loop when the descriptor is readable (POLLIN, or in select's read set). */
  handleReadEvent(): void;
  /** Called by the loop when the descriptor is writable (POLLOUT, or in select's write set). */
  handleWriteEvent(): void;
  /** Called by the loop on an exceptional condition (POLLPRI, or in select's exceptional set). */
  handleExptEvent(): void;
  /**
   * Called by the loop on a hang-up or error (POLLHUP without readable
   * data, POLLERR, POLLNVAL) and when a handler threw an OSError with a
   * disconnection errno (see `DISCONNECTED`).
   */
  handleClose(): void;
  /** Called by the loop with what a handler threw (anything but ExitNow, which ends the loop). */
  handleError(err: unknown): void;
}

/** A map of descriptor → channel. */
export type SocketMap = Map<number, Channel>;

/** What changed in a map: a channel joined, left, or may want other events. */
export type MapChange = 'add' | 'delete' | 'interest';

/**
 * A `watchMap` listener: called synchronously with the change, the
 * descriptor and the channel (undefined when a plain Map's notice had none).
 * @inline
 */
export type MapListener = (change: MapChange, fd: number, channel: Channel | undefined) => void;

const listeners = new WeakMap<object, Set<MapListener>>();

/** Subscribes to the changes of `map`; returns the unsubscribe function. */
export function watchMap(map: SocketMap, listener: MapListener): () => void {
  let set = listeners.get(map);
  if (!set) listeners.set(map, (set = new Set()));
  set.add(listener);
  return () => {
    set!.delete(listener);
  };
}

/** Tells the loops watching `map` about a change. Cheap when nobody listens. */
export function notifyMap(map: SocketMap, change: MapChange, fd: number, channel?: Channel): void {
  const set = listeners.get(map);
  if (set === undefined) return;
  for (const l of set) l(change, fd, channel);
}

/** A Map that reports `set` / `delete` / `clear` to the loops watching it. */
export class ChannelMap extends Map<number, Channel> {
  /** Puts `channel` under `fd` and reports an 'add' (also when it replaces another channel). */
  override set(fd: number, channel: Channel): this {
    super.set(fd, channel);
    notifyMap(this, 'add', fd, channel);
    return this;
  }
  /** Removes the channel under `fd`; reports a 'delete' and returns true when there was one. */
  override delete(fd: number): boolean {
    const channel = super.get(fd);
    const had = super.delete(fd);
    if (had) notifyMap(this, 'delete', fd, channel);
    return had;
  }
  /** Empties the map, then reports a 'delete' for each channel it held. The channels are not closed (see `closeAll`). */
  override clear(): void {
    const entries = [...this];
    super.clear();
    for (const [fd, ch] of entries) notifyMap(this, 'delete', fd, ch);
  }
}

/** The default map, as asyncore's `socket_map`. */
export const socketMap: ChannelMap = new ChannelMap();
