/**
 * What every pass shares: dispatching one channel's events (`read`, `write`,
 * `exception`, `readwrite`), the timeout conversion and the empty-set sleep.
 *
 * Within one pass a channel that left its map (closed, or replaced by a new
 * channel on the same fd) is never dispatched again.
 */
import { native } from '../native.js';
import * as C from '../constants.js';
import { ExitNow, OSError } from '../errors.js';
import { DISCONNECTED, Dispatcher } from './dispatcher.js';
import type { Channel } from './map.js';

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
export function sleepMs(ms: number): void {
  if (ms === 0) return;
  native.poll(noFds, 0, ms < 0 ? -1 : ms);
}

