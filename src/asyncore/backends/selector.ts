/**
 * A pass over any selectors-style object (register / modify / unregister /
 * select): the registrations persist in the selector between passes and
 * change only when a channel's interest does. The loop never closes a
 * selector it was given.
 */
import { EVENT_READ, EVENT_WRITE, type BaseSelector } from '../../selectors.js';
import * as C from '../../constants.js';
import { readwrite, sleepMs, toWaitMs } from '../dispatch.js';
import { InterestCache, READ, WRITE, type Registration } from '../interest.js';
import type { SocketMap } from '../map.js';

function events(mask: number): number {
  return (mask & READ ? EVENT_READ : 0) | (mask & WRITE ? EVENT_WRITE : 0);
}

/** One map's registrations in one selector. */
class SelectorRegs extends InterestCache {
  constructor(
    map: SocketMap,
    readonly selector: BaseSelector<unknown>,
  ) {
    super(map);
  }

  protected apply(r: Registration, mask: number): void {
    if (mask === 0) {
      this.unapply(r);
      return;
    }
    // The key's data is the channel (a wake-up descriptor has none).
    const data = r.onReady === null ? r.obj : null;
    if (r.mask > 0) this.selector.modify(r.fd, events(mask), data);
    else this.selector.register(r.fd, events(mask), data);
  }

  protected unapply(r: Registration): void {
    try {
      this.selector.unregister(r.fd);
    } catch {
      // Already gone: the descriptor was closed, or the selector was.
    }
  }
}

const regsOf = new WeakMap<BaseSelector<unknown>, WeakMap<SocketMap, SelectorRegs>>();

/**
 * One pass over a selectors-style object. EVENT_READ dispatches a read
 * event, EVENT_WRITE a write event. `timeout` in seconds (null: forever).
 */
export function pollSelector(timeout: number | null, map: SocketMap, selector: BaseSelector<unknown>): void {
  let byMap = regsOf.get(selector);
  if (byMap === undefined) regsOf.set(selector, (byMap = new WeakMap()));
  let s = byMap.get(map);
  if (s === undefined) byMap.set(map, (s = new SelectorRegs(map, selector)));
  s.sync();
  if (s.interested === 0) {
    sleepMs(toWaitMs(timeout));
    return;
  }
  const t = timeout === null || timeout === undefined || timeout < 0 ? null : timeout;
  const ready: Array<[Registration, number]> = [];
  for (const [key, ev] of selector.select(t)) {
    const r = s.lookup(key.fd);
    if (r !== undefined) ready.push([r, ev]);
  }
  for (const [r] of ready) if (r.onReady !== null && s.live(r)) r.onReady();
  for (const [r, ev] of ready) {
    if (r.onReady !== null || !s.live(r)) continue;
    readwrite(r.obj, (ev & EVENT_READ ? C.POLLIN : 0) | (ev & EVENT_WRITE ? C.POLLOUT : 0));
    s.touch(r);
  }
}

/** Forgets the registrations `map` made in `selector` (unregistering them). */
export function releaseSelector(map: SocketMap, selector: BaseSelector<unknown>): void {
  const s = regsOf.get(selector)?.get(map);
  if (s === undefined) return;
  regsOf.get(selector)!.delete(map);
  s.close();
}
