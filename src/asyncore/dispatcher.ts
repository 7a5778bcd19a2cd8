/**
 * asyncore's dispatcher classes: `Dispatcher`, `DispatcherWithSend`,
 * `FileWrapper`, `FileDispatcher`.
 *
 * Methods for callers: createSocket, setSocket, addChannel, delChannel,
 * setReuseAddr, listen, bind, connect, accept, send, recv, close, fileno.
 * Methods the loop calls: readable, writable, handleReadEvent,
 * handleWriteEvent, handleConnectEvent, handleExptEvent, handleError.
 * Hooks for subclasses: handleRead, handleWrite, handleExpt, handleConnect,
 * handleAccept, handleAccepted(sock, addr), handleClose, handleError(err).
 *
 * Deliberate differences from Python (see README):
 * - the default `handleExpt` reads and drops the urgent byte (Python's only
 *   warns, and the level-triggered POLLPRI then fires on every pass);
 * - `recv` returns an empty Buffer on EAGAIN without closing;
 * - `handleClose` runs at most once per connection, however it is reached;
 * - strings are accepted wherever bytes are (UTF-8).
 */
import { native } from '../native.js';
import * as C from '../constants.js';
import { OSError, check, errno as E, errorcode, strerror } from '../errors.js';
import { Socket, toBytes, type Address, type BytesLike } from '../socket.js';
import { ChannelMap, notifyMap, socketMap, type Channel, type SocketMap } from './map.js';
import { Fifo } from './fifo.js';
import { announcesEveryChange } from './interest.js';

const CONNECTED = 1, ACCEPTING = 2, CONNECTING = 4;

/** Errnos that mean the peer is gone: send/recv close the channel instead of throwing. */
export const DISCONNECTED: ReadonlySet<number> = new Set(
  [E.ECONNRESET, E.ENOTCONN, E.ESHUTDOWN, E.ECONNABORTED, E.EPIPE, E.EBADF].filter((n) => n !== undefined),
);

const EAGAIN = E.EAGAIN!;
const EWOULDBLOCK = E.EWOULDBLOCK ?? EAGAIN;

/** Python's `asyncore._strerror`: never empty, even for unknown numbers. */
export function errnoText(err: number): string {
  const s = strerror(err);
  return s && !s.startsWith('Unknown error') ? s : errorcode(err) ?? `Unknown error ${err}`;
}

// Receive slab: the kernel writes into it. A read of at least SLAB_VIEW_MIN
// bytes is handed back as a view of the slab (no copy, no allocation of its
// own; Node's Buffer pool hands out views of its 8 KiB pool the same way) and
// the slab moves on; a smaller read is copied into a right-sized Buffer (from
// Node's pool) and its slab bytes are reused. Measured: copying every read
// into a fresh Buffer cost 15 % of the echo server's CPU with 16 KiB
// messages (memmove + a new ArrayBuffer; bench/README.md). A kept view keeps
// its 256 KiB slab alive: at most 32 times its own size, and only for reads
// of 8 KiB or more.
const SLAB_SIZE = 256 * 1024;
/** Reads larger than this get a Buffer of their own (at most a quarter of the slab is left unused). */
const SLAB_MAX_READ = 65536;
const SLAB_VIEW_MIN = 8192;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
/** The same bytes as a plain Uint8Array: its subarray() skips Buffer's species lookup. */
let slabBytes = new Uint8Array(slab.buffer, slab.byteOffset, slab.byteLength);
let slabOff = 0;

/** Where the default handleExpt reads the urgent byte it drops. */
const urgentByte = Buffer.alloc(1);

/** Raw, non-throwing I/O on a descriptor: sockets use send/recv, files read/write. */
interface RawIo {
  send(fd: number, b: Uint8Array, off: number, len: number): number;
  recv(fd: number, b: Uint8Array, off: number, len: number): number;
}
const socketIo: RawIo = {
  send: (fd, b, off, len) => native.send(fd, b, off, len, 0),
  recv: (fd, b, off, len) => native.recv(fd, b, off, len, 0),
};
const fileIo: RawIo = {
  send: (fd, b, off, len) => native.write(fd, b, off, len),
  recv: (fd, b, off, len) => native.read(fd, b, off, len),
};

/** What a dispatcher's `socket` may be: a Socket, a FileWrapper, or anything socket-shaped. */
export interface SocketLike {
  /** The descriptor the loop waits on (a non-negative integer while open). */
  fileno(): number;
  /**
   * Releases the descriptor; `Dispatcher#close` calls it and ignores an
   * OSError ENOTCONN / EBADF from it (any other error propagates).
   */
  close(): void;
  /**
   * Sends bytes; returns how many were taken. Used by `Dispatcher#send` when
   * the object is neither a Socket nor a FileWrapper: an OSError it throws
   * is handled as the errno would be (EAGAIN: 0 sent; a disconnection errno:
   * handleClose). Without it, sending through the dispatcher is a TypeError.
   */
  send?(data: Uint8Array, flags?: number): number;
  /**
   * Receives up to `n` bytes (an empty Buffer is EOF). Used by
   * `Dispatcher#recv` (and by the default `handleExpt` with `MSG_OOB`) when
   * the object is neither a Socket nor a FileWrapper; an OSError it throws
   * is handled as the errno would be (EAGAIN: empty, the channel stays open).
   */
  recv?(n: number, flags?: number): Buffer;
  /**
   * An integer socket option; the dispatcher reads only `SOL_SOCKET` /
   * `SO_ERROR` (on connect and exceptional events: 0 means no error, else
   * the errno). Without it those events throw TypeError, which the loop
   * hands to `handleError`.
   */
  getsockopt?(level: number, option: number): number;
}

/** asyncore's `dispatcher`: a nonblocking socket in a map, driven by `loop()`. */
export class Dispatcher implements Channel {
  /**
   * Declares that this class's `readable()` / `writable()` answers change
   * only through the library (connect, listen, close, queued output) or an
   * `interestChanged()` call, so the loop may keep the last answers between
   * passes (see README, "The loop's cost model"). A subclass that overrides
   * either method is asked on every pass, as asyncore does, until it
   * declares `static override reportsInterest = true` itself (and then
   * calls `interestChanged()` whenever an answer may change outside its own
   * handlers). Declaring `false` opts a class out.
   */
  static reportsInterest = true;

  /** When true, `DispatcherWithSend#send` logs each chunk it is given through `logInfo` (Python's `debug`); nothing else reads it. */
  debug = false;
  private state = 0;
  /**
   * Python's `closing` attribute: the library never sets or reads it; it is
   * there for subclasses (and ported code) that record a close in progress.
   */
  closing = false;
  /** The peer's address (connect / accepted) or the bound one. */
  addr: Address | null = null;
  /** Log types `logInfo` does not print. */
  ignoreLogTypes: ReadonlySet<string> = new Set(['warning']);
  /** The channel's socket (or socket-like object): set by `createSocket` / `setSocket`, null before. */
  socket: Socket | SocketLike | null = null;
  /** `[family, type]` given to `createSocket` (Python's `family_and_type`); undefined for an adopted socket. */
  familyAndType?: [number, number];
  /**
   * The map the channel joins by default (the constructor's `map`, else
   * `socketMap`): `addChannel()` / `delChannel()` / `close()` use it. A
   * listening subclass passes it on to the channels it accepts.
   */
  protected _map: SocketMap;
  /**
   * The descriptor under which the channel is in its map (Python's
   * `_fileno`), what `fileno()` returns; null before `setSocket` and once
   * the channel left every map it joined. Subclasses read it; it is set by
   * `setSocket` and cleared by `delChannel` / `close`.
   */
  protected _fileno: number | null = null;
  private io: RawIo | null = null;
  private closeHandled = false;
  private exptWarned = false;
  /** Maps other than its own that the channel joined (`addChannel(map)`); null, the usual case, for none. */
  private otherMaps: SocketMap[] | null = null;

  /**
   * `sock`: an existing socket (made nonblocking, added to the map, and
   * connected when it has a peer). `map`: the map to join (default socketMap).
   */
  constructor(sock?: Socket | null, map?: SocketMap) {
    this._map = map ?? socketMap;
    // handleClose is reached from many paths (EOF, a reset, a hang-up, an
    // error); the subclass's hook runs once per connection.
    const hook = this.handleClose;
    this.handleClose = function (this: Dispatcher) {
      if (this.closeHandled) return;
      this.closeHandled = true;
      hook.call(this);
    };
    if (sock) {
      sock.setblocking(false);
      this.setSocket(sock, map);
      this.connected = true;
      try {
        this.addr = sock.getpeername();
      } catch (err) {
        if (err instanceof OSError && (err.errno === E.ENOTCONN || err.errno === E.EINVAL)) {
          this.connected = false;
        } else {
          this.delChannel(map);
          throw err;
        }
      }
    }
  }

  /** Connected to a peer (set by connect / accept, cleared by close). */
  get connected(): boolean {
    return (this.state & CONNECTED) !== 0;
  }
  /** Setting it announces an interest change (`interestChanged()`) when the value changes. */
  set connected(v: boolean) {
    this.setState(CONNECTED, v);
  }
  /** Listening: never asked for writability. */
  get accepting(): boolean {
    return (this.state & ACCEPTING) !== 0;
  }
  /** Setting it announces an interest change (`interestChanged()`) when the value changes. */
  set accepting(v: boolean) {
    this.setState(ACCEPTING, v);
  }
  /** A nonblocking connect is in progress. */
  get connecting(): boolean {
    return (this.state & CONNECTING) !== 0;
  }
  /** Setting it announces an interest change (`interestChanged()`) when the value changes. */
  set connecting(v: boolean) {
    this.setState(CONNECTING, v);
  }

  // The loop's cached readable()/writable() answers may depend on these
  // states (DispatcherWithSend#writable reads `connected`; the loop never
  // asks an accepting channel for writability): a change is announced.
  private setState(bit: number, v: boolean): void {
    const next = v ? this.state | bit : this.state & ~bit;
    if (next === this.state) return;
    this.state = next;
    this.interestChanged();
  }

  toString(): string {
    const status = [this.constructor.name];
    if (this.accepting && this.addr) status.push('listening');
    else if (this.connected) status.push('connected');
    if (this.addr !== null) status.push(Array.isArray(this.addr) ? `${this.addr[0]}:${this.addr[1]}` : JSON.stringify(this.addr));
    return `<${status.join(' ')}>`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  /** Joins `map` (default: the dispatcher's map) under its descriptor. */
  addChannel(map?: SocketMap): void {
    const m = map ?? this._map;
    if (this._fileno === null) return;
    m.set(this._fileno, this);
    if (!(m instanceof ChannelMap)) notifyMap(m, 'add', this._fileno, this);
    if (m !== this._map) {
      this.otherMaps ??= [];
      if (!this.otherMaps.includes(m)) this.otherMaps.push(m);
    }
  }

  /**
   * Leaves `map` (default: the dispatcher's own map). The descriptor is
   * forgotten (`fileno()` becomes null) once the channel is in none of the
   * maps it joined: after `delChannel(otherMap)` its own map still holds it,
   * and `close()` removes it from there. (Python forgets the descriptor on
   * any del_channel, so a later close() leaves the closed channel in its map.)
   */
  delChannel(map?: SocketMap): void {
    const m = map ?? this._map;
    const fd = this._fileno;
    if (fd === null) return;
    if (m.get(fd) === this) {
      m.delete(fd);
      if (!(m instanceof ChannelMap)) notifyMap(m, 'delete', fd, this);
    }
    const others = this.otherMaps;
    if (others !== null && m !== this._map) {
      const i = others.indexOf(m);
      if (i >= 0) others.splice(i, 1);
      if (others.length === 0) this.otherMaps = null;
    }
    if (this.otherMaps === null && this._map.get(fd) !== this) this._fileno = null;
  }

  /** Creates a nonblocking socket and joins the map. */
  createSocket(family: number = C.AF_INET, type: number = C.SOCK_STREAM): void {
    this.familyAndType = [family, type];
    const sock = new Socket(family, type);
    sock.setblocking(false);
    this.setSocket(sock);
  }

  /** Adopts `sock` and joins `map`. */
  setSocket(sock: Socket | SocketLike, map?: SocketMap): void {
    this.socket = sock;
    this._fileno = sock.fileno();
    this.io = sock instanceof Socket ? socketIo : sock instanceof FileWrapper ? fileIo : null;
    this.closeHandled = false;
    this.addChannel(map);
  }

  /** Sets SO_REUSEADDR (errors ignored, as asyncore). */
  setReuseAddr(): void {
    try {
      const s = this.socket as Socket;
      s.setsockopt(C.SOL_SOCKET, C.SO_REUSEADDR, (s.getsockopt(C.SOL_SOCKET, C.SO_REUSEADDR) as number) | 1);
    } catch (err) {
      if (!(err instanceof OSError)) throw err;
    }
  }

  /** The descriptor, or null once the channel left its map. */
  fileno(): number | null {
    return this._fileno;
  }

  /** Whether the loop should wait for readability (default true). */
  readable(): boolean {
    return true;
  }

  /** Whether the loop should wait for writability (default true). */
  writable(): boolean {
    return true;
  }

  /** Starts listening; the channel is then `accepting`. */
  listen(num: number): void {
    this.accepting = true;
    (this.socket as Socket).listen(num);
  }

  /**
   * Binds the socket to `addr` (see `Socket#bind`) and records it in
   * `addr`. OSError (EADDRINUSE, EACCES, …), GaiError for a host name that
   * does not resolve; TypeError when the socket is not a Socket.
   */
  bind(addr: Address): void {
    this.addr = addr;
    (this.socket as Socket).bind(addr);
  }

  /**
   * Starts a connection. EINPROGRESS / EALREADY / EWOULDBLOCK: the loop
   * waits for writability and calls handleConnectEvent; 0 / EISCONN: connected
   * at once; any other errno throws OSError.
   */
  connect(address: Address): void {
    this.connected = false;
    this.connecting = true;
    const err = (this.socket as Socket).connectEx(address);
    if (err === E.EINPROGRESS || err === E.EALREADY || err === EWOULDBLOCK || err === EAGAIN) {
      this.addr = address;
      return;
    }
    if (err === 0 || err === E.EISCONN) {
      this.addr = address;
      this.handleConnectEvent();
      return;
    }
    throw new OSError(err, 'connect');
  }

  /** `[socket, address]`, or null when nothing was pending (EAGAIN, ECONNABORTED). */
  accept(): [Socket, Address] | null {
    const sock = this.socket as Socket;
    const fd = sock.fileno();
    const r = native.accept4(fd, 0);
    if (typeof r === 'number') {
      const err = -r;
      if (err === EAGAIN || err === EWOULDBLOCK || err === E.ECONNABORTED) return null;
      throw new OSError(err, 'accept');
    }
    return [new Socket(sock.family, sock.type, sock.proto, r[0]), r[1] ?? ''];
  }

  /**
   * Sends what the kernel takes now; returns the count. 0 on EWOULDBLOCK;
   * a disconnection errno calls handleClose and returns 0; others throw.
   * (The type admits undefined because DispatcherWithSend's send queues and
   * returns undefined, Python's None; a subclass may narrow it to number.)
   */
  send(data: BytesLike): number | undefined {
    const b = toBytes(data);
    return this.sendBytes(b, 0, b.byteLength);
  }

  /** send() of a window of `b`, without copying. */
  protected sendBytes(b: Uint8Array, off: number, len: number): number {
    const io = this.io;
    let r: number;
    if (io !== null && this._fileno !== null) {
      r = io.send(this._fileno, b, off, len);
    } else {
      try {
        return (this.socket as SocketLike).send!(b.subarray(off, off + len));
      } catch (err) {
        if (!(err instanceof OSError)) throw err;
        r = -err.errno;
      }
    }
    if (r >= 0) return r;
    const err = -r;
    if (err === EAGAIN || err === EWOULDBLOCK) return 0;
    if (DISCONNECTED.has(err)) {
      this.handleClose();
      return 0;
    }
    throw new OSError(err, 'send');
  }

  /**
   * Reads up to `bufferSize` bytes. At EOF or on a disconnection errno it
   * calls handleClose and returns an empty Buffer; on EAGAIN it returns an
   * empty Buffer and stays open (Python raises); other errnos throw.
   */
  recv(bufferSize: number): Buffer {
    if (typeof bufferSize !== 'number' || !Number.isInteger(bufferSize)) throw new TypeError('bufferSize must be an integer');
    if (bufferSize < 0) throw new RangeError('bufferSize must be non-negative');
    const io = this.io;
    let r: number;
    let direct: Buffer | null = null;
    if (io !== null && this._fileno !== null) {
      if (bufferSize > SLAB_MAX_READ) {
        direct = Buffer.allocUnsafe(bufferSize);
        r = io.recv(this._fileno, direct, 0, bufferSize);
      } else {
        if (SLAB_SIZE - slabOff < bufferSize) {
          slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
          slabBytes = new Uint8Array(slab.buffer, slab.byteOffset, slab.byteLength);
          slabOff = 0;
        }
        const off = slabOff;
        r = io.recv(this._fileno, slab, off, bufferSize);
        if (r >= SLAB_VIEW_MIN) {
          // Keep the next view 8-byte aligned, as Node's pool does.
          slabOff = (off + r + 7) & ~7;
          return slab.subarray(off, off + r);
        }
        if (r > 0) {
          const out = Buffer.allocUnsafe(r);
          out.set(slabBytes.subarray(off, off + r)); // Buffer#copy validates its arguments and makes the same view itself
          return out;
        }
      }
    } else {
      try {
        direct = (this.socket as SocketLike).recv!(bufferSize);
        r = direct.length;
      } catch (err) {
        if (!(err instanceof OSError)) throw err;
        r = -err.errno;
      }
    }
    if (r > 0) return direct!.length === r ? direct! : direct!.subarray(0, r);
    if (r === 0) {
      // An orderly EOF: the peer closed.
      this.handleClose();
      return Buffer.alloc(0);
    }
    const err = -r;
    if (err === EAGAIN || err === EWOULDBLOCK) return Buffer.alloc(0);
    if (DISCONNECTED.has(err)) {
      this.handleClose();
      return Buffer.alloc(0);
    }
    throw new OSError(err, 'recv');
  }

  /** Leaves every map it joined and closes the socket (ENOTCONN / EBADF ignored). */
  close(): void {
    this.connected = false;
    this.accepting = false;
    this.connecting = false;
    this.delChannel();
    if (this.otherMaps !== null) for (const m of [...this.otherMaps]) this.delChannel(m);
    if (this.socket !== null) {
      try {
        this.socket.close();
      } catch (err) {
        if (!(err instanceof OSError) || (err.errno !== E.ENOTCONN && err.errno !== E.EBADF)) throw err;
      }
    }
  }

  /**
   * Tells the loops that this channel's `readable()` / `writable()` answers
   * may have changed: the next pass asks it again (and a running
   * `loopAsync` starts a pass). A class that declares `reportsInterest`
   * calls it whenever an answer may change outside its own handlers (a
   * timer queued data, another channel's buffer drained); the library's own
   * classes do. Cheap; calling it needlessly costs one extra question.
   */
  interestChanged(): void {
    if (this._fileno !== null) notifyMap(this._map, 'interest', this._fileno, this);
  }

  /** 'Hit' logging, to stderr. */
  log(message: unknown): void {
    process.stderr.write(`log: ${String(message)}\n`);
  }

  /** Informational / warning / error logging, to stdout, unless `type` is in ignoreLogTypes. */
  logInfo(message: string, type = 'info'): void {
    if (!this.ignoreLogTypes.has(type)) process.stdout.write(`${type}: ${message}\n`);
  }

  /** Called by the loop when the descriptor is readable. */
  handleReadEvent(): void {
    if (this.accepting) {
      // Accepting sockets are never connected; they spawn connected ones.
      this.handleAccept();
    } else if (!this.connected) {
      if (this.connecting) this.handleConnectEvent();
      this.handleRead();
    } else {
      this.handleRead();
    }
  }

  /** Completes a connect: throws OSError from SO_ERROR, else handleConnect and `connected`. */
  handleConnectEvent(): void {
    const err = (this.socket as Socket).getsockopt(C.SOL_SOCKET, C.SO_ERROR) as number;
    if (err !== 0) throw new OSError(err, 'connect', errnoText(err));
    this.handleConnect();
    this.connected = true;
    this.connecting = false;
  }

  /** Called by the loop when the descriptor is writable. */
  handleWriteEvent(): void {
    if (this.accepting) return; // a listener is never asked for writability
    if (!this.connected && this.connecting) this.handleConnectEvent();
    this.handleWrite();
  }

  /** An exceptional condition: a socket error closes; otherwise OOB data → handleExpt. */
  handleExptEvent(): void {
    const err = (this.socket as Socket).getsockopt(C.SOL_SOCKET, C.SO_ERROR) as number;
    if (err !== 0) this.handleClose();
    else this.handleExpt();
  }

  /** Logs a compact traceback of `err` and closes the channel. */
  handleError(err?: unknown): void {
    const [, type, value, info] = compactTraceback(err);
    // The message, not String(value): that would repeat the type ("RangeError: …").
    const text = value.message;
    let self: string;
    try {
      self = String(this);
    } catch {
      self = `<toString() failed for ${this.constructor.name}>`;
    }
    this.logInfo(`uncaptured exception, closing channel ${self} (${type}:${text} ${info})`, 'error');
    this.handleClose();
  }

  /**
   * Hook: urgent ("out-of-band") data arrived (POLLPRI / EPOLLPRI, or
   * select's exceptional set). The default reads the urgent byte and drops
   * it, and warns once per channel ('unhandled incoming priority event', as
   * asyncore). Reading it is what ends the condition: the kernel reports
   * POLLPRI until the byte is read (tcp(7)), so asyncore's default, which
   * only warns, makes every backend spin on a single byte. An override that
   * wants the byte reads it with `socket.recv(1, MSG_OOB)`. With
   * SO_OOBINLINE the byte is ordinary data and the condition lasts until
   * handleRead reads past it; the select pass (as asyncore's) puts a channel
   * that is only writable in the exceptional set too, so such a channel
   * should keep reading while urgent data is pending.
   */
  handleExpt(): void {
    if (!this.exptWarned) {
      this.exptWarned = true;
      this.logInfo('unhandled incoming priority event', 'warning');
    }
    this.discardUrgent();
  }

  /**
   * Reads and drops the pending urgent byte (recv with MSG_OOB). Not an
   * error when there is none to read: EINVAL (it was read already, or
   * SO_OOBINLINE put it in the normal stream, where handleRead gets it),
   * EAGAIN (only the urgent pointer has arrived; tcp(7)), EOPNOTSUPP (a
   * socket type without urgent data). A disconnection errno calls
   * handleClose; any other errno throws OSError. Files have no urgent data.
   */
  protected discardUrgent(): void {
    let r: number;
    if (this.io === socketIo && this._fileno !== null) {
      r = native.recv(this._fileno, urgentByte, 0, 1, C.MSG_OOB);
    } else if (this.io === null && this.socket !== null && typeof this.socket.recv === 'function') {
      try {
        r = this.socket.recv(1, C.MSG_OOB).length;
      } catch (err) {
        if (!(err instanceof OSError)) throw err;
        r = -err.errno;
      }
    } else {
      return;
    }
    if (r >= 0) return;
    const err = -r;
    if (err === E.EINVAL || err === EAGAIN || err === EWOULDBLOCK || err === E.EOPNOTSUPP) return;
    if (DISCONNECTED.has(err)) {
      this.handleClose();
      return;
    }
    throw new OSError(err, 'recv');
  }

  /**
   * Hook: the descriptor is readable (called from `handleReadEvent`; for a
   * connecting channel after the connect completed). Override it to
   * `recv()`. The default logs 'unhandled read event' as a warning (hidden
   * by the default `ignoreLogTypes`).
   */
  handleRead(): void {
    this.logInfo('unhandled read event', 'warning');
  }

  /**
   * Hook: the descriptor is writable (called from `handleWriteEvent`;
   * never for a listener). Override it to `send()`. The default logs
   * 'unhandled write event' as a warning.
   */
  handleWrite(): void {
    this.logInfo('unhandled write event', 'warning');
  }

  /**
   * Hook: a connect completed without error (called from
   * `handleConnectEvent`, before `connected` is set). The default logs
   * 'unhandled connect event' as a warning. A failed connect throws OSError
   * from `handleConnectEvent` instead, which the loop hands to `handleError`.
   */
  handleConnect(): void {
    this.logInfo('unhandled connect event', 'warning');
  }

  /**
   * Hook: a listening channel is readable (called from `handleReadEvent`
   * while `accepting`). The default calls `accept()` and, when a
   * connection was pending, `handleAccepted(sock, addr)`; OSError from
   * accept (other than EAGAIN / ECONNABORTED, which are no connection)
   * propagates to the loop, which calls `handleError`.
   */
  handleAccept(): void {
    const pair = this.accept();
    if (pair !== null) this.handleAccepted(pair[0], pair[1]);
  }

  /**
   * Hook: the default `handleAccept` accepted `sock` (blocking, or with
   * the default timeout: accept4(2) without SOCK_NONBLOCK) from `addr`. Override it to wrap the socket
   * in a handler (`new Handler(sock, this._map)`). The default closes the
   * socket and logs 'unhandled accepted event' as a warning.
   */
  handleAccepted(sock: Socket, _addr: Address): void {
    sock.close();
    this.logInfo('unhandled accepted event', 'warning');
  }

  /**
   * Hook: the connection is over: EOF or a disconnection errno from
   * `recv` / `send`, a socket error on an exceptional event, a hang-up the
   * loop saw, or `handleError`. Runs at most once per connection however
   * it is reached (a new `setSocket` re-arms it; Python may run it twice).
   * The default logs 'unhandled close event' as a warning and calls
   * `close()`; an override should call `close()` too.
   */
  handleClose(): void {
    this.logInfo('unhandled close event', 'warning');
    this.close();
  }
}

/** The most a DispatcherWithSend sends per writable event (asyncore's 64 KiB). */
const SEND_MAX = 65536;
// Where small queued chunks are gathered for one send(2): the send is
// synchronous, so every DispatcherWithSend can share it.
const gatherBuf = Buffer.allocUnsafeSlow(SEND_MAX);

/**
 * A dispatcher with an output buffer: `send()` queues and sends as the
 * socket allows. The queue is a `Fifo` of private copies, O(1) per chunk
 * however long a slow peer lets it grow; each writable event sends up to
 * 64 KiB, gathered from as many queued chunks as it takes (asyncore sends
 * `out_buffer[:65536]`).
 */
export class DispatcherWithSend extends Dispatcher {
  /** Its `writable()` reads the queue and `connected`, both announced on change. */
  static override reportsInterest = true;

  private chunks = new Fifo<Uint8Array>();
  /** How much of the first chunk was sent already. */
  private head = 0;
  private pending = 0;

  /** The bytes not yet sent (a copy); assigning replaces them. */
  get outBuffer(): Buffer {
    const parts: Uint8Array[] = [];
    let i = 0;
    for (const c of this.chunks) parts.push(i++ === 0 ? c.subarray(this.head) : c);
    return Buffer.concat(parts);
  }
  /**
   * Replaces the queued bytes with a copy of `data` (a string is UTF-8);
   * nothing is sent until the next writable event. TypeError for a value
   * that is not bytes or a string.
   */
  set outBuffer(data: BytesLike) {
    const b = toBytes(data);
    const wasIdle = this.pending === 0;
    this.chunks.clear();
    if (b.byteLength > 0) this.chunks.push(Buffer.from(b));
    this.head = 0;
    this.pending = b.byteLength;
    if (wasIdle !== (this.pending === 0)) this.interestChanged();
  }

  /**
   * Sends up to 64 KiB of the buffer now, in one send(2): small queued
   * chunks are gathered into one (measured against a native sendmsg(2) over
   * the chunks: see bench/README.md). While a connect is in progress the
   * data waits for it (Python sends on the connecting socket and can raise
   * ECONNREFUSED from send; here the refusal reaches handleConnectEvent).
   */
  initiateSend(): void {
    if ((this.connecting && !this.connected) || this.pending === 0) return;
    const first = this.chunks.peek()!;
    const avail = first.byteLength - this.head;
    let n: number;
    if (avail >= SEND_MAX || this.chunks.length === 1) {
      n = this.sendBytes(first, this.head, Math.min(avail, SEND_MAX));
    } else {
      n = this.sendBytes(gatherBuf, 0, this.gather());
    }
    this.consume(n);
    if (this.pending === 0) this.interestChanged();
  }

  /** Copies up to SEND_MAX queued bytes, front first, into gatherBuf; returns the count. */
  private gather(): number {
    let len = 0;
    for (let i = 0; i < this.chunks.length && len < SEND_MAX; i++) {
      const c = this.chunks.at(i)!;
      const from = i === 0 ? this.head : 0;
      const take = Math.min(c.byteLength - from, SEND_MAX - len);
      gatherBuf.set(from === 0 && take === c.byteLength ? c : c.subarray(from, from + take), len);
      len += take;
    }
    return len;
  }

  /** Drops `n` sent bytes from the front of the queue. */
  private consume(n: number): void {
    this.pending -= n;
    let rest = n;
    while (rest > 0) {
      const left = this.chunks.peek()!.byteLength - this.head;
      if (rest < left) {
        this.head += rest;
        return;
      }
      rest -= left;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Called on a writable event: sends from the queue (`initiateSend`). */
  override handleWrite(): void {
    this.initiateSend();
  }

  /** True while queued bytes wait, and before the channel is connected (so a connect's completion is seen). */
  override writable(): boolean {
    return !this.connected || this.pending > 0;
  }

  /**
   * Queues `data` (a string is UTF-8; a private copy is kept) and returns
   * undefined (Python: None). With nothing queued it is sent at once (only
   * what the kernel does not take is copied); behind queued bytes it waits
   * for the next writable event, since the socket was full at the last try.
   */
  override send(data: BytesLike): undefined {
    const b = toBytes(data);
    if (this.debug) this.logInfo(`sending ${JSON.stringify(Buffer.from(b).toString('latin1'))}`);
    if (b.byteLength === 0) return undefined;
    const wasIdle = this.pending === 0;
    let off = 0;
    if (wasIdle && this.connected) {
      off = this.sendBytes(b, 0, Math.min(b.byteLength, SEND_MAX));
      if (off === b.byteLength || this._fileno === null) return undefined;
    }
    this.chunks.push(Buffer.from(b.subarray(off)));
    this.pending += b.byteLength - off;
    if (wasIdle) this.interestChanged();
    return undefined;
  }
}

// Their inputs (the state bits, the queue) announce every change.
announcesEveryChange(Dispatcher.prototype.readable, Dispatcher.prototype.writable, DispatcherWithSend.prototype.writable);

/** Makes a file descriptor look like a socket for asyncore. The fd is dup'ed; closing twice is harmless. */
export class FileWrapper implements SocketLike {
  /** The wrapper's own (dup'ed) descriptor; -1 once closed or detached. */
  fd: number;

  /**
   * Wraps a duplicate of `fd` (dup(2)): the caller keeps, and still closes,
   * its own. OSError EBADF for a descriptor that is not open (EMFILE when
   * none is free); TypeError / RangeError for a non-integer or negative `fd`.
   */
  constructor(fd: number) {
    this.fd = check(native.dup(fd), 'dup');
  }

  /** Reads up to `n` bytes (OSError EAGAIN when none are ready). */
  recv(n: number): Buffer {
    const buf = Buffer.allocUnsafe(n);
    const r = check(native.read(this.live(), buf, 0, n), 'read');
    return buf.subarray(0, r);
  }
  /** The same as `recv(n)` (Python's file-like name). */
  read(n: number): Buffer {
    return this.recv(n);
  }

  /** Writes `data`; returns the count. */
  send(data: BytesLike): number {
    const b = toBytes(data);
    return check(native.write(this.live(), b, 0, b.byteLength), 'write');
  }
  /** The same as `send(data)` (Python's file-like name). */
  write(data: BytesLike): number {
    return this.send(data);
  }

  /** Only SO_ERROR is meaningful for a file: always 0. */
  getsockopt(level: number, option: number, buflen?: number): number {
    if (level === C.SOL_SOCKET && option === C.SO_ERROR && !buflen) return 0;
    throw new TypeError('FileWrapper.getsockopt: only SOL_SOCKET/SO_ERROR is implemented');
  }

  /**
   * Closes the wrapper's descriptor; a second call (or one after `detach`)
   * does nothing. An OSError from close(2) (EIO, …) propagates; the
   * descriptor is given up either way (close is never retried).
   */
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    check(native.close(fd), 'close');
  }

  /** The wrapper's descriptor, or -1 once closed or detached. */
  fileno(): number {
    return this.fd;
  }

  /**
   * Gives up the descriptor without closing it; returns it. The loop does
   * this on POLLNVAL, so a number reused by someone else is not closed.
   */
  detach(): number {
    const fd = this.fd;
    this.fd = -1;
    return fd;
  }

  private live(): number {
    if (this.fd < 0) throw new OSError(E.EBADF, 'read');
    return this.fd;
  }
}

/** A dispatcher over a file descriptor (a pipe, a tty): the fd is dup'ed and made nonblocking. */
export class FileDispatcher extends Dispatcher {
  /**
   * Wraps `fd` (a descriptor or an object with `fileno()`) in a FileWrapper
   * on a duplicate, joins `map` (default socketMap) and is `connected` at
   * once. The descriptor is made nonblocking: the flag (O_NONBLOCK) is on the
   * open file, so the caller's `fd` is nonblocking afterwards too, as in
   * Python. OSError EBADF for a descriptor that is not open.
   */
  constructor(fd: number | { fileno(): number }, map?: SocketMap) {
    super(null, map);
    this.connected = true;
    const n = typeof fd === 'number' ? fd : fd.fileno();
    this.setFile(n);
    const rc = native.setFlag(n, 0, true);
    if (rc < 0) {
      // Leave nothing behind: the duplicate and the map entry go with the error.
      this.close();
      throw new OSError(-rc, 'fcntl');
    }
  }

  /**
   * Adopts a duplicate of `fd` (a new FileWrapper) as the channel's socket
   * and joins the dispatcher's map (Python's `set_file`). It does not make
   * the descriptor nonblocking (the constructor does). OSError EBADF for a
   * descriptor that is not open.
   */
  setFile(fd: number): void {
    this.socket = new FileWrapper(fd);
    this.setSocket(this.socket);
  }
}

/**
 * Python's `compact_traceback` for a JS error: `[[file, function, line],
 * typeName, error, info]`, where `error` is `err` itself (Python returns the
 * exception instance) and info lists every frame, outermost first, as
 * `[file|function|line]`. TypeError when `err` is not an Error with a stack
 * (Python: "traceback does not exist").
 */
export function compactTraceback(err: unknown): [[string, string, string], string, Error, string] {
  if (!(err instanceof Error)) throw new TypeError('compactTraceback: the value has no stack trace');
  const type = err.name || err.constructor.name;
  const frames: Array<[string, string, string]> = [];
  for (const line of (err.stack ?? '').split('\n').slice(1)) {
    const m = /^\s*at (?:(.*?) \()?(.*?):(\d+):\d+\)?$/.exec(line);
    if (m) frames.push([m[2]!, m[1] ?? '<anonymous>', m[3]!]);
  }
  if (frames.length === 0) frames.push(['<unknown>', '<unknown>', '0']);
  frames.reverse();
  const info = frames.map(([f, fn, l]) => `[${f}|${fn}|${l}]`).join(' ');
  return [frames[frames.length - 1]!, type, err, info];
}
