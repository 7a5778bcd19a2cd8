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
  fileno(): number | null;
  readable(): boolean;
  writable(): boolean;
  /** Accepting channels are never asked for writability. */
  accepting?: boolean;
  handleReadEvent(): void;
  handleWriteEvent(): void;
  handleExptEvent(): void;
  handleClose(): void;
  handleError(err: unknown): void;
}

/** A map of descriptor → channel. */
export type SocketMap = Map<number, Channel>;

/** What changed in a map: a channel joined, left, or may want other events. */
export type MapChange = 'add' | 'delete' | 'interest';

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
  override set(fd: number, channel: Channel): this {
    super.set(fd, channel);
    notifyMap(this, 'add', fd, channel);
    return this;
  }
  override delete(fd: number): boolean {
    const channel = super.get(fd);
    const had = super.delete(fd);
    if (had) notifyMap(this, 'delete', fd, channel);
    return had;
  }
  override clear(): void {
    const entries = [...this];
    super.clear();
    for (const [fd, ch] of entries) notifyMap(this, 'delete', fd, ch);
  }
}

/** The default map, as asyncore's `socket_map`. */
export const socketMap: ChannelMap = new ChannelMap();
