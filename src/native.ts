/**
 * The one place that loads the compiled addon, and the typed shape of what it
 * exports. Nothing else imports the raw module.
 *
 * Conventions of the native surface: functions are named after their
 * syscall; a result is the syscall's value or `-errno`; misuse from JS throws
 * TypeError / RangeError. Wait timeouts are milliseconds (negative = forever).
 *
 * `ASYNCORE_NATIVE_BUILD` picks the build folder (`build`, `build-cmake`,
 * `build-asan`, `build-portable`); by default node-gyp-build's search from the package root.
 */
import path from 'node:path';

/** An address as the addon speaks it: `[host, port]`, `[host, port, flowinfo, scopeId]` or a Unix path. */
export type NativeAddress = [string, number] | [string, number, number, number] | string;

export interface FdWatcherInstance {
  /**
   * uv_poll_start with UV_READABLE=1 | UV_WRITABLE=2; returns a libuv status (0 or a negative errno).
   * When the fd could not be watched at all (uv_poll_init failed: EBADF, EPERM), every start() returns that status.
   */
  start(events: number): number;
  stop(): number;
  /** uv_close; the fd itself stays open and is the caller's to close afterwards. */
  close(): void;
}

export interface NativeBinding {
  constants: Record<string, number>;
  socket(family: number, type: number, proto: number): number;
  socketpair(family: number, type: number, proto: number): [number, number] | number;
  pipe(): [number, number] | number;
  bind(fd: number, family: number, addr: NativeAddress | Uint8Array): number;
  connect(fd: number, family: number, addr: NativeAddress | Uint8Array): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, flags: number): [number, NativeAddress] | number;
  send(fd: number, buf: Uint8Array, offset: number, length: number, flags: number): number;
  recv(fd: number, buf: Uint8Array, offset: number, length: number, flags: number): number;
  sendto(fd: number, buf: Uint8Array, offset: number, length: number, flags: number, family: number, addr: NativeAddress | Uint8Array): number;
  recvfrom(fd: number, buf: Uint8Array, offset: number, length: number, flags: number): [number, NativeAddress | null] | number;
  read(fd: number, buf: Uint8Array, offset: number, length: number): number;
  write(fd: number, buf: Uint8Array, offset: number, length: number): number;
  shutdown(fd: number, how: number): number;
  close(fd: number): number;
  dup(fd: number): number;
  setsockopt(fd: number, level: number, option: number, value: number | boolean | Uint8Array): number;
  getsockopt(fd: number, level: number, option: number, buflen?: number): number | Buffer;
  getsockname(fd: number): NativeAddress | number | null;
  getpeername(fd: number): NativeAddress | number | null;
  /** which: 0 = O_NONBLOCK, 1 = FD_CLOEXEC. */
  setFlag(fd: number, which: 0 | 1, on: boolean): number;
  getFlag(fd: number, which: 0 | 1): number;
  getaddrinfo(host: string | null, port: string | null, family: number, type: number, proto: number, flags: number):
    | Array<[number, number, number, string, NativeAddress]>
    | { eai: number; errno: number; message: string };
  gethostname(): string | number;
  getnameinfo(family: number, addr: NativeAddress, flags: number): [string, string] | { eai: number; errno: number; message: string };
  /** `[name, aliases, addrtype, addresses]`, or h_errno and hstrerror's text. */
  gethostbyaddr(family: number, addr: Uint8Array): [string, string[], number, string[]] | { herrno: number; message: string };
  /** The packed address, 0 when `text` is not an address of `family`, or -errno. */
  inetPton(family: number, text: string): Buffer | number;
  inetNtop(family: number, packed: Uint8Array): string | number;
  strerror(errno: number): string;
  select(r: Int32Array, nr: number, w: Int32Array, nw: number, x: Int32Array, nx: number, timeoutMs: number, counts: Int32Array): number;
  poll(pollfds: Int32Array, nfds: number, timeoutMs: number, outFds?: Int32Array, outEvents?: Uint32Array): number;
  epollCreate?(flags?: number): number;
  epollCtl?(epfd: number, op: number, fd: number, events: number): number;
  epollWait?(epfd: number, outFds: Int32Array, outEvents: Uint32Array, maxevents: number, timeoutMs: number): number;
  FdWatcher: new (fd: number, callback: (status: number, events: number) => void) => FdWatcherInstance;
  /**
   * Installs a self-pipe handler for the signal numbers (process-wide); returns [slot, readFd] or -errno
   * (EMFILE: 64 traps open; EINVAL: a number the C library keeps). RangeError for SIGKILL, SIGSTOP,
   * the fault signals, a number outside 1-64 or an empty list; TypeError for a non-array or non-integer.
   */
  signalTrapOpen(signums: number[]): [number, number] | number;
  /** Drains the trap's pipe; returns the first signal number since the last take, 0 for none, or -errno (EBADF, EPERM). */
  signalTrapTake(slot: number): number;
  /** Restores the previous dispositions (when no other trap holds them) and closes the pipe; 0 or -errno (EBADF, EPERM). */
  signalTrapClose(slot: number): number;
}

// src/ is CommonJS (src/package.json), so the package's one build serves
// `require` and, through the ESM wrapper, `import` alike; `require` and
// `__dirname` are CommonJS's own (vitest provides them too when it runs src/).
// The package root is one folder up from src/ and from dist/.
const root = path.resolve(__dirname, '..');

/**
 * build/Release (a source build) first, then the package's prebuilt binary
 * for this platform (prebuilds/, node-gyp-build's rules). A machine with
 * neither gets one message saying what to do rather than node-gyp-build's
 * list of tags.
 */
function load(): NativeBinding {
  const dir = process.env.ASYNCORE_NATIVE_BUILD;
  if (dir) return require(path.resolve(root, dir, 'Release', 'asyncore_native.node')) as NativeBinding;
  const gypBuild = require('node-gyp-build') as (dir: string) => unknown;
  try {
    return gypBuild(root) as NativeBinding;
  } catch (err) {
    if (!/No native build was found/.test(String((err as Error).message))) throw err;
    throw new Error(
      `asyncore-native: no native addon for ${process.platform}-${process.arch}: the package's prebuilt binaries do not fit ` +
        'this machine and no source build is in build/Release (the install script did not run, or failed). Build it with ' +
        '`npm rebuild asyncore-native` (needs make, a C++ compiler and python3; npm 12 runs install scripts only for ' +
        'packages approved with `npm approve-scripts`).',
      { cause: err },
    );
  }
}

/**
 * The raw addon. Its exports object comes back in V8's dictionary mode (a
 * hash lookup per `native.x`); a plain copy has fast properties, which the
 * hot paths read several times per message.
 */
export const native: NativeBinding = { ...load() };
