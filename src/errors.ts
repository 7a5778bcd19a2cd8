/**
 * The library's error taxonomy. Each error has a fixed `name` and `code`.
 *
 * - `OSError`: a failed system call; `errno` is positive (as `os.constants.errno`),
 *   `code` its name ('ECONNREFUSED'), `syscall` the call, message `[Errno 111] Connection refused`.
 * - `SocketTimeout` (Python's `socket.timeout` / `TimeoutError`): a blocking call with a timeout ran out.
 * - `GaiError` (Python's `socket.gaierror`): getaddrinfo / getnameinfo failed; `errno` is the negative EAI code.
 * - `HError` (Python's `socket.herror`): gethostbyaddr failed; `errno` is h_errno (1 HOST_NOT_FOUND …).
 * - `KeyError`: an fd or object that is not registered / not in a map.
 * - `ExitNow`: raised by a handler to leave `loop()`; never swallowed by `handleError`.
 * - `Interrupted` (Python's `KeyboardInterrupt`): a signal named in `loop({ signals })` arrived;
 *   a subclass of ExitNow.
 */
import { constants as osConstants } from 'node:os';
import { native } from './native.js';

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.errno)) {
  // Aliases (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK) keep the first, canonical name.
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}

/** Errno numbers by name (positive), e.g. `errno.ECONNREFUSED === 111`. */
export const errno: Readonly<Record<string, number>> = osConstants.errno as Record<string, number>;

/** The symbolic name of an errno number, e.g. `errorcode(111) === 'ECONNREFUSED'` (Python's `errno.errorcode`). */
export function errorcode(num: number): string {
  return errnoNames.get(Math.abs(num)) ?? `E${Math.abs(num)}`;
}

/** The C library's text for an errno number, e.g. `strerror(111) === 'Connection refused'`. */
export function strerror(num: number): string {
  return native.strerror(Math.abs(num));
}

/**
 * A failed system call (Python's `OSError` and its subclasses, told apart
 * here by `code`). The message reads as Python's: `[Errno 111] Connection refused`.
 */
export class OSError extends Error {
  /** Always 'OSError' (SocketTimeout: 'SocketTimeout'). */
  override name = 'OSError';
  /** Positive errno, as in Python and `os.constants.errno`. */
  readonly errno: number;
  /** The errno's name, e.g. 'ECONNREFUSED'. */
  readonly code: string;
  /** The call that failed, e.g. 'connect'. */
  readonly syscall: string;
  /** Python's `strerror`. */
  readonly strerror: string;
  /** The file name involved, where there is one (a Unix socket path). */
  readonly filename?: string;

  /**
   * Makes the error for errno `num`.
   * @param num the errno, positive or negative (a native `-errno` result may be passed as is)
   * @param syscall the call that failed
   * @param message the text after `[Errno N] `; default: the C library's strerror
   * @param filename the path involved, appended as `: 'path'`
   */
  constructor(num: number, syscall = '', message?: string, filename?: string) {
    const n = Math.abs(num);
    const text = message ?? strerror(n);
    super(`[Errno ${n}] ${text}${filename !== undefined ? `: '${filename}'` : ''}`);
    this.errno = n;
    this.code = errorcode(n);
    this.syscall = syscall;
    this.strerror = text;
    if (filename !== undefined) this.filename = filename;
  }
}

/** A blocking socket operation ran past the socket's timeout (Python's `TimeoutError('timed out')`). */
export class SocketTimeout extends OSError {
  /** Always 'SocketTimeout'. */
  override name = 'SocketTimeout';
  /**
   * Makes the error (`errno` ETIMEDOUT, message `timed out`).
   * @param syscall the call whose timeout ran out (`recv`, `accept`, `connect`, …)
   */
  constructor(syscall = '') {
    super(errno.ETIMEDOUT, syscall, 'timed out');
    this.message = 'timed out';
  }
}

/**
 * getaddrinfo or getnameinfo failed (Python's `socket.gaierror`); `errno`
 * keeps the EAI sign: e.g. -2 for EAI_NONAME. `syscall` names the call.
 */
export class GaiError extends Error {
  /** Always 'GaiError'. */
  override name = 'GaiError';
  /** The EAI code as getaddrinfo returned it (negative on glibc, e.g. -2 EAI_NONAME), not an errno. */
  readonly errno: number;
  /** The EAI code's name, e.g. 'EAI_NONAME' ('EAI_UNKNOWN' for a code this platform does not name). */
  readonly code: string;
  /** The call that failed: 'getaddrinfo' (or 'getnameinfo'). */
  readonly syscall: string;
  /**
   * Makes the error for EAI code `eai`.
   * @param eai the EAI code
   * @param message gai_strerror's text
   * @param host the name that failed, appended as `: 'host'`
   * @param syscall the call that failed
   */
  constructor(eai: number, message: string, host?: string, syscall = 'getaddrinfo') {
    super(`[Errno ${eai}] ${message}${host ? `: '${host}'` : ''}`);
    this.errno = eai;
    this.code = gaiNames.get(eai) ?? 'EAI_UNKNOWN';
    this.syscall = syscall;
  }
}

/**
 * gethostbyaddr found no name (Python's `socket.herror`): `errno` is h_errno
 * (1 HOST_NOT_FOUND, 2 TRY_AGAIN, 3 NO_RECOVERY, 4 NO_DATA, -1
 * NETDB_INTERNAL), `code` its name, message as Python's `[Errno 1] Unknown host`.
 */
export class HError extends Error {
  /** Always 'HError'. */
  override name = 'HError';
  /** The h_errno value (not an errno). */
  readonly errno: number;
  /** Its name, e.g. 'HOST_NOT_FOUND' ('HOST_ERROR' for one this platform does not name). */
  readonly code: string;
  /** The call that failed, e.g. 'gethostbyaddr'. */
  readonly syscall: string;
  /**
   * Makes the error for h_errno `herrno`.
   * @param herrno the h_errno value
   * @param message the resolver's text (hstrerror)
   * @param syscall the call that failed
   */
  constructor(herrno: number, message: string, syscall = 'gethostbyaddr') {
    super(`[Errno ${herrno}] ${message}`);
    this.errno = herrno;
    this.code = herrNames.get(herrno) ?? 'HOST_ERROR';
    this.syscall = syscall;
  }
}

const gaiNames = new Map<number, string>();
const herrNames = new Map<number, string>();
for (const [name, num] of Object.entries(native.constants)) {
  if (name.startsWith('EAI_')) gaiNames.set(num, name);
  if (['HOST_NOT_FOUND', 'TRY_AGAIN', 'NO_RECOVERY', 'NO_DATA', 'NETDB_INTERNAL'].includes(name) && !herrNames.has(num)) herrNames.set(num, name);
}

/** Python's KeyError: a descriptor or object that is not registered, a missing map entry. */
export class KeyError extends Error {
  /** Always 'KeyError'. */
  override name = 'KeyError';
  /** Always 'ERR_KEY'. */
  readonly code = 'ERR_KEY';
  /** What was looked up: the descriptor number or the object. */
  readonly key: unknown;
  /**
   * Makes the error for `key`.
   * @param key the descriptor or object that was not found
   * @param message default: `<key> is not registered`
   */
  constructor(key: unknown, message?: string) {
    super(message ?? `${String(key)} is not registered`);
    this.key = key;
  }
}

/** Thrown by a handler to leave the loop at once; passes through `handleError`. */
export class ExitNow extends Error {
  /** Always 'ExitNow'. */
  override name = 'ExitNow';
  /** 'ERR_EXIT_NOW' ('ERR_INTERRUPTED' for Interrupted). */
  readonly code: string = 'ERR_EXIT_NOW';
}

/**
 * A signal the loop was told to watch (`loop({ signals })`) arrived: the loop
 * left after its current pass, as Python's KeyboardInterrupt leaves asyncore.loop.
 * `signal` is its name, e.g. 'SIGINT'. A kind of ExitNow, so it passes every
 * `handleError` by (a nested loop's Interrupted leaves the outer loop too), as
 * Python re-raises KeyboardInterrupt past handle_error.
 */
export class Interrupted extends ExitNow {
  override name = 'Interrupted';
  override readonly code: string = 'ERR_INTERRUPTED';
  /** The signal's name, e.g. 'SIGINT'. */
  readonly signal: string;
  /** `signal`: the signal's name ('SIGINT'); `message` defaults to "interrupted by SIGINT". */
  constructor(signal: string, message?: string) {
    super(message ?? `interrupted by ${signal}`);
    this.signal = signal;
  }
}

/**
 * Turns a native result into a value: a negative number becomes an OSError
 * for `syscall`; anything else is returned as is.
 * @throws OSError when `result` is a negative number (`-errno`)
 */
export function check<T>(result: T | number, syscall: string, filename?: string): T {
  if (typeof result === 'number' && result < 0) throw new OSError(-result, syscall, undefined, filename);
  return result as T;
}

/** An OSError EBADF for use of a closed object (Python raises ValueError). */
export function closedError(what: string, syscall = ''): OSError {
  return new OSError(errno.EBADF, syscall, `Bad file descriptor (${what} is closed)`);
}
