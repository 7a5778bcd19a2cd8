/**
 * SignalTrap: catch signals as readiness on a descriptor (the self-pipe
 * trick), so a loop blocked in select / poll / epoll wakes for them and
 * decides what to do after its pass. `loop({ signals })` uses one.
 *
 * While a trap is open, the signals it names no longer reach Node (no
 * `process.on(...)` listener runs for them, and a SIGINT no longer kills the
 * process); `close()` puts back exactly what was there before. Signal
 * dispositions are process-wide, and so is a trap: opened in a worker thread,
 * it catches the signal for the whole process (the worker's `take()` sees
 * it), and it is closed when the worker ends. Traps nest: several open on
 * the same signal all see it, and the previous disposition returns when the
 * last one closes, in whatever order they close.
 *
 * Adding a `process.on()` listener for a trapped signal while the trap is
 * open takes the signal back to Node (libuv installs its handler over ours);
 * closing the trap then leaves that handler alone.
 */
import { constants as osConstants } from 'node:os';
import { native } from '../native.js';
import { check, closedError } from '../errors.js';

const signalNumbers = osConstants.signals as Readonly<Record<string, number>>;

const finalizer = new FinalizationRegistry<number>((slot) => native.signalTrapClose(slot));

/** A set of signals caught into a pipe whose read end is `fd`. */
export class SignalTrap {
  /** The names the trap was opened with, without repeats. */
  readonly signals: readonly string[];
  private slot: number;
  private _fd: number;
  private readonly names = new Map<number, string>();

  /**
   * Catches `signals` (names from `os.constants.signals`, e.g. 'SIGINT')
   * until `close()`. TypeError when `signals` is not an array of strings;
   * RangeError for an unknown name, an empty list, SIGKILL / SIGSTOP (which
   * cannot be caught) and the fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
   * SIGTRAP, SIGSYS); OSError EMFILE when 64 traps are open in the process.
   */
  constructor(signals: readonly string[]) {
    if (!Array.isArray(signals)) throw new TypeError('signals must be an array of signal names');
    const nums: number[] = [];
    for (const name of signals as unknown[]) {
      if (typeof name !== 'string') throw new TypeError(`a signal name must be a string, not ${typeof name}`);
      const num = Object.hasOwn(signalNumbers, name) ? signalNumbers[name] : undefined;
      if (num === undefined) throw new RangeError(`unknown signal '${name}'`);
      if (!this.names.has(num)) {
        this.names.set(num, name);
        nums.push(num);
      }
    }
    this.signals = [...this.names.values()];
    const [slot, fd] = check(native.signalTrapOpen(nums), 'sigaction');
    this.slot = slot;
    this._fd = fd;
    finalizer.register(this, slot, this);
  }

  /** The read end of the trap's pipe: readable when a signal arrived. -1 once closed. */
  get fd(): number {
    return this._fd;
  }

  /** The same as `fd`, so the trap can go to `select()` / `Poll` like a socket. */
  fileno(): number {
    return this._fd;
  }

  /** True once `close()` ran. */
  get closed(): boolean {
    return this._fd < 0;
  }

  /**
   * Drains the pipe and returns the name of the first signal that arrived
   * since the last `take()`, or null when none did. Other signals that
   * arrived meanwhile come out on the next calls (lowest number first); the
   * same signal arriving twice before a take counts once, as the kernel
   * merges pending signals. OSError EBADF when closed.
   */
  take(): string | null {
    if (this._fd < 0) throw closedError('SignalTrap', 'take');
    const num = check(native.signalTrapTake(this.slot), 'take');
    return num === 0 ? null : this.names.get(num)!;
  }

  /** Puts back the signals' previous handling and closes the pipe. Closing twice is harmless. */
  close(): void {
    if (this._fd < 0) return;
    finalizer.unregister(this);
    this._fd = -1;
    check(native.signalTrapClose(this.slot), 'close');
  }
}
