/**
 * loopAsync: asyncore's loop inside Node's event loop.
 *
 * The wait is done by libuv, not by us: the map's epoll set (the same one
 * `pollEpoll` keeps) is itself a pollable descriptor, and a uv_poll handle
 * on Node's loop watches it. When it becomes readable, one pass runs with a
 * zero timeout on the chosen backend (select, poll, epoll or a selector), so
 * dispatching is exactly `loop`'s. No helper thread, no busy polling: an idle
 * server costs no CPU, and timers, promises and Node servers run beside it.
 *
 * For the select and poll backends the epoll set only wakes the loop; the
 * pass itself asks select(2) / poll(2) as `loop` does.
 *
 * Delayed calls wake it through one Node timer (a libuv timer) armed for the
 * earliest deadline and re-armed when that deadline changes; a signal trap's
 * descriptor sits in the epoll set beside the channels.
 */
import { native, type FdWatcherInstance } from '../native.js';
import * as C from '../constants.js';
import { OSError, errno as E } from '../errors.js';
import { socketMap, watchMap, type SocketMap } from './map.js';
import { LoopSession, dispatchEpoll, loopOptions, passFor, releaseEpoll, syncEpoll, toWaitMs, type EpollSet, type LoopOptions } from './loop.js';
import { now, timerQueue } from './timers.js';

/** `loopAsync()`'s options: those of `loop()` (`LoopOptions`) plus an AbortSignal. */
export interface LoopAsyncOptions extends LoopOptions {
  /** Aborting rejects the promise with the signal's reason; the channels stay as they are. */
  signal?: AbortSignal;
}

const UV_READABLE = 1;
const running = new WeakSet<SocketMap>();

/**
 * Runs asyncore passes without blocking Node's event loop. Resolves when the
 * map is empty and no delayed call is pending, or `count` passes are done;
 * rejects with the AbortSignal's reason when aborted, with `Interrupted` when
 * a signal named in `signals` arrived, or with an error a pass threw (ExitNow
 * included). Options as `loop`: `timeout` seconds (default 30) bounds each
 * wait, `usePoll`, `backend`, `map`, `count`, `signals`, `onTimerError`,
 * plus `signal` (an AbortSignal). Delayed calls run after the pass's I/O, as
 * in `loop`; a pass also runs when the earliest one falls due.
 *
 * Channels added or removed from other callbacks take effect on the next
 * pass at once. A channel whose `writable()` answer changes because of
 * something outside a handler (a timer queuing data) says so with
 * `interestChanged()` (DispatcherWithSend and AsyncChat do it themselves);
 * that also starts a pass. See the README's "The loop's cost model".
 * One loopAsync per map at a time (Error otherwise). Linux (epoll) only.
 */
export function loopAsync(options: LoopAsyncOptions = {}): Promise<void> {
  let o: ReturnType<typeof loopOptions>;
  try {
    o = loopOptions([options]);
  } catch (err) {
    return Promise.reject(err);
  }
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) return Promise.reject(new TypeError('signal must be an AbortSignal'));
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (!C.HAVE_EPOLL) return Promise.reject(new OSError(E.ENOSYS!, 'loopAsync', 'loopAsync needs epoll (Linux)'));
  const map = o.map ?? socketMap;
  if (running.has(map)) return Promise.reject(new Error('loopAsync is already running on this map'));
  let pass: ReturnType<typeof passFor>;
  try {
    pass = passFor(o.backend, o.usePoll);
  } catch (err) {
    return Promise.reject(err);
  }
  const isEpoll = (o.backend ?? (o.usePoll ? 'poll' : 'select')) === 'epoll';
  const waitMs = toWaitMs(o.timeout ?? null);
  let remaining = o.count ?? Infinity;
  let session: LoopSession;
  try {
    session = new LoopSession(map, o);
  } catch (err) {
    return Promise.reject(err);
  }
  const timers = timerQueue(map);

  return new Promise<void>((resolve, reject) => {
    running.add(map);
    let set: EpollSet | null = null;
    let watcher: FdWatcherInstance | null = null;
    let timer: NodeJS.Timeout | null = null;
    let immediate: NodeJS.Immediate | null = null;
    /** The Node timer for the earliest delayed call, and the deadline it is armed for. */
    let due: NodeJS.Timeout | null = null;
    let dueAt = Infinity;
    let inPass = false;
    let resync = false;
    let done = false;

    const idle = () => map.size === 0 && timers.pending === 0;

    const closeWatcher = () => {
      if (watcher !== null) {
        watcher.close();
        watcher = null;
      }
      set?.beforeClose.delete(closeWatcher);
      set = null;
    };

    const finish = (err?: unknown) => {
      if (done) return;
      // A signal that arrived during the last pass is not dropped by closing the trap.
      if (err === undefined) err = session.interrupted(true) ?? undefined;
      done = true;
      running.delete(map);
      unwatch();
      signal?.removeEventListener('abort', onAbort);
      offTimers();
      if (timer !== null) clearTimeout(timer);
      if (due !== null) clearTimeout(due);
      if (immediate !== null) clearImmediate(immediate);
      // Before the epoll set may close: the trap's fd leaves it first.
      session.close();
      closeWatcher();
      if (map.size === 0) releaseEpoll(map);
      if (err === undefined) resolve();
      else reject(err);
    };

    const onAbort = () => finish(signal!.reason);

    // Brings the epoll set up to date and makes sure libuv watches it.
    const arm = () => {
      if (done) return;
      resync = false;
      const s = syncEpoll(map);
      if (s !== set) {
        closeWatcher();
        set = s;
        s.beforeClose.add(closeWatcher);
        watcher = new native.FdWatcher(s.epfd, onReady);
        const rc = watcher.start(UV_READABLE);
        if (rc !== 0) return finish(new OSError(-rc, 'uv_poll_start'));
      }
      // Channels epoll cannot watch (regular files) or whose fd is gone are
      // ready now: run the next pass at once, as poll(2) would return at once.
      if (s.alwaysReady.size > 0 || s.broken > 0) schedule();
      else if (timer === null && waitMs >= 0) timer = setTimeout(onTimeout, waitMs);
      armDue();
    };

    // The Node timer follows the earliest deadline, rounded up to whole ms.
    // Node's clock is coarser than now(): it may fire a little before the
    // deadline, and then the pass runs nothing and this re-arms for the rest.
    const armDue = () => {
      if (done) return;
      const next = timers.nextDeadline();
      if (next === dueAt && (due !== null || next === Infinity)) return;
      if (due !== null) clearTimeout(due);
      due = null;
      dueAt = next;
      if (next === Infinity) return;
      const ms = Math.ceil((next - now()) * 1000);
      if (ms <= 0) schedule();
      else due = setTimeout(onDue, ms);
    };
    const onDue = () => {
      due = null;
      dueAt = Infinity;
      runPass();
    };
    // A call made, moved or cancelled from outside a pass (another callback).
    const offTimers = timers.onChange(() => {
      if (!inPass) armDue();
    });

    const schedule = () => {
      if (immediate === null && !done) immediate = setImmediate(onImmediate);
    };
    const onImmediate = () => {
      immediate = null;
      runPass();
    };
    const onTimeout = () => {
      timer = null;
      runPass();
    };
    const onReady = (status: number) => {
      if (status < 0) return finish(new OSError(-status, 'uv_poll'));
      runPass();
    };

    const runPass = () => {
      if (done) return;
      if (timer !== null) {
        clearTimeout(timer);
        timer = null;
      }
      inPass = true;
      try {
        if (map.size > 0) {
          // arm() swept readable()/writable() right before this wait, as loop()
          // does before each of its waits: dispatch on that interest.
          if (isEpoll) dispatchEpoll(set ?? syncEpoll(map), map, 0);
          else pass(0, map);
        } else if (set !== null) {
          // No channel: only wake-up descriptors (the signal trap) can be ready.
          dispatchEpoll(set, map, 0);
        }
        timers.runDue(session.report);
        remaining--;
      } catch (err) {
        return finish(err);
      } finally {
        inPass = false;
      }
      const stop = session.interrupted();
      if (stop !== null) return finish(stop);
      if (idle() || remaining <= 0) return finish();
      arm();
    };

    // A change made from another callback: re-sync before the next wait.
    const unwatch = watchMap(map, () => {
      if (done || resync) return;
      resync = true;
      queueMicrotask(() => {
        if (!done && resync) {
          if (idle()) return finish();
          arm();
        }
      });
    });

    signal?.addEventListener('abort', onAbort, { once: true });
    if (idle()) return finish();
    try {
      arm();
    } catch (err) {
      finish(err);
    }
  });
}
