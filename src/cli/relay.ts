/**
 * The byte relay under the CLI's echo, forward and socks5 commands.
 *
 * A `RelayEnd` is one connected socket in an asyncore map; two ends are
 * joined with `pair(a, b)` (echo joins an end to itself). Each end holds the
 * bytes waiting to be written to its own socket. The rules:
 *
 * - Backpressure: an end reads only while its peer's unsent bytes are under
 *   the peer's `highWater` (256 KiB by default), so memory per connection is
 *   bounded by about two high-water marks plus one read, however slow a peer.
 * - Half-close: an EOF read on one end is passed on as shutdown(SHUT_WR) on
 *   the other once that end's buffered bytes are written; the connection is
 *   closed when both directions are finished.
 * - Abort: a reset, an error or a hang-up closes the end at once; its peer
 *   writes what it already holds, then closes.
 * - An end can finish with a "lingering" close (used after an error reply):
 *   write the reply, shut down writing, discard input until the client's
 *   EOF or `LINGER_MS`, then close. Closing with unread input would send a
 *   RST, and the client could lose the reply.
 * - Urgent data (MSG_OOB) is relayed inline, as an ordinary byte in its
 *   place (SO_OOBINLINE on every relayed socket; see relaySocketOptions).
 *
 * Reads use `Socket#recvInto` (the loop said readable, so EAGAIN is rare);
 * writes use the dispatcher's non-throwing send. Both directions copy a read
 * only when the peer cannot take it at once.
 */
import * as C from '../constants.js';
import { OSError, errno as E } from '../errors.js';
import { Socket } from '../socket.js';
import { DISCONNECTED, Dispatcher } from '../asyncore/dispatcher.js';
import type { SocketMap } from '../asyncore/map.js';
import { Fifo } from '../asyncore/fifo.js';
import type { SocketAddress } from './address.js';

/**
 * Unsent bytes an end may hold before its peer stops reading. 256 KiB is
 * four 64 KiB reads: enough to keep a fast path busy between passes, small
 * enough that 10 000 stalled connections stay under a few GiB.
 */
export const HIGH_WATER = 256 * 1024;
/** One recv(2) at most this much (the kernel's loopback segments are 64 KiB). */
export const READ_SIZE = 65536;
/** How long a lingering close waits for the client's EOF. */
export const LINGER_MS = 2000;

const EAGAIN = E.EAGAIN!;
const EWOULDBLOCK = E.EWOULDBLOCK ?? EAGAIN;

// One read buffer for every end: a read is sent on at once or copied out.
const readBuf = Buffer.allocUnsafeSlow(READ_SIZE);

/** Receives into the shared buffer: the count, 0 at EOF, -1 when nothing was there (EAGAIN). */
export function recvShared(sock: Socket, max = READ_SIZE): number {
  try {
    return sock.recvInto(readBuf, Math.min(max, READ_SIZE));
  } catch (err) {
    if (err instanceof OSError && (err.errno === EAGAIN || err.errno === EWOULDBLOCK)) return -1;
    throw err;
  }
}

/** The bytes of the last `recvShared` (valid until the next read). */
export function sharedView(n: number): Buffer {
  return readBuf.subarray(0, n);
}

/**
 * The options of every relayed socket: TCP_NODELAY on Internet sockets (a
 * relay should not add Nagle delays), and SO_OOBINLINE, so urgent data
 * (MSG_OOB) stays in the byte stream and is relayed in its place as an
 * ordinary byte. RFC 6093 (§3, §6): urgent data is part of the stream, not
 * a separate channel, and an application that still uses it must read it
 * inline; dropping it would delete a byte of the relayed protocol (Telnet's
 * Data Mark, RFC 854). What is not reproduced is the urgency (the URG flag
 * and pointer) on the other side, which middleboxes may clear anyway (RFC
 * 6093 §3), so no application can depend on it.
 */
export function relaySocketOptions(sock: Socket): void {
  try {
    sock.setsockopt(C.SOL_SOCKET, C.SO_OOBINLINE, 1);
  } catch {
    /* no urgent data on this kind of socket: RelayEnd#handleExpt copes either way */
  }
  if (sock.family === C.AF_INET || sock.family === C.AF_INET6) {
    try {
      sock.setsockopt(C.IPPROTO_TCP, C.TCP_NODELAY, 1);
    } catch {
      /* not a TCP socket: nothing to tune */
    }
  }
}

type Finish = null | 'close' | 'linger';

/** One side of a relayed connection. */
export class RelayEnd extends Dispatcher {
  /**
   * readable() reads this end's state and its peer's `accepts()`; writable()
   * this end's queue and state. Every change made outside this end's own
   * handlers is announced (to the peer too when its readable() may change).
   */
  static override reportsInterest = true;

  /** Where the bytes read here go (itself for echo; null until paired). */
  peer: RelayEnd | null = null;
  /** The peer stops reading while this end holds at least this many unsent bytes. */
  highWater = HIGH_WATER;
  /** This socket reported EOF. */
  readEof = false;
  /** shutdown(SHUT_WR) was done on this socket. */
  wrShut = false;
  /** The peer's EOF arrived: shut down writing here once the buffer is empty. */
  shutWhenFlushed = false;
  /** Bytes read from / written to this socket. */
  bytesIn = 0;
  bytesOut = 0;
  /** Called once when the end closes (for logging and session bookkeeping). */
  onClosed: ((end: RelayEnd) => void) | null = null;
  /** Called with an unexpected error before the end is closed. */
  onError: ((end: RelayEnd, err: unknown) => void) | null = null;

  protected finish: Finish = null;
  protected lingering = false;
  /** Unsent chunks; a Fifo, since a peer trickling 1-byte segments can queue 256 K of them. */
  private out = new Fifo<Buffer>();
  private head = 0;
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private closedFlag = false;

  /** Unsent bytes held for this socket. */
  get pending(): number {
    return this.pendingBytes;
  }

  /** True once `close()` ran. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Whether this end takes more bytes for its socket now. */
  accepts(): boolean {
    return !this.closedFlag && this.finish === null && this.pendingBytes < this.highWater;
  }

  override readable(): boolean {
    if (this.lingering) return true;
    if (!this.connected || this.readEof || this.finish !== null) return false;
    const p = this.peer;
    return p !== null && p.accepts();
  }

  override writable(): boolean {
    if (this.connecting) return true;
    if (!this.connected || this.lingering) return false;
    return this.pendingBytes > 0 || (this.shutWhenFlushed && !this.wrShut);
  }

  override handleRead(): void {
    if (this.closedFlag) return;
    const n = recvShared(this.socket as Socket);
    if (n < 0) return;
    if (n === 0) {
      if (this.lingering) this.close();
      else this.gotEof();
      return;
    }
    this.bytesIn += n;
    if (this.lingering) return; // discarded: the answer was already given
    this.deliver(sharedView(n));
  }

  /** Passes bytes read here on (to the peer by default). */
  protected deliver(data: Buffer): void {
    this.peer?.enqueue(data);
  }

  /** The socket reported EOF: pass it on to the peer as a half-close. */
  protected gotEof(): void {
    this.readEof = true;
    const p = this.peer;
    if (p === null) {
      this.close();
      return;
    }
    p.shutWhenFlushed = true;
    p.interestChanged();
    if (p.connected && p.pendingBytes === 0) p.drained();
    this.checkDone();
  }

  /**
   * Queues `data` (copied when it cannot all be sent now) for this socket.
   * Sends at once when nothing is queued. Dropped when the end is finishing.
   */
  enqueue(data: Uint8Array): void {
    if (this.closedFlag || data.byteLength === 0) return;
    let off = 0;
    if (this.pendingBytes === 0 && this.connected) {
      off = this.sendBytes(data, 0, data.byteLength);
      this.bytesOut += off;
      if (this.closedFlag) return;
    }
    if (off < data.byteLength) {
      const was = this.pendingBytes;
      this.out.push(Buffer.from(data.subarray(off)));
      this.pendingBytes += data.byteLength - off;
      if (was === 0) this.interestChanged();
      if (was < this.highWater && this.pendingBytes >= this.highWater) this.peer?.interestChanged();
    }
  }

  /** Writes queued bytes until the socket is full or the queue is empty. */
  flush(): void {
    const was = this.pendingBytes;
    while (this.out.length > 0 && !this.closedFlag) {
      const c = this.out.peek()!;
      const n = this.sendBytes(c, this.head, c.byteLength - this.head);
      if (n === 0) break;
      this.bytesOut += n;
      this.pendingBytes -= n;
      this.head += n;
      if (this.head < c.byteLength) break; // the socket took part of it: it is full
      this.out.shift();
      this.head = 0;
    }
    if (this.closedFlag) return;
    if (was >= this.highWater && this.pendingBytes < this.highWater) this.peer?.interestChanged();
    if (was > 0 && this.pendingBytes === 0) this.interestChanged();
    if (this.pendingBytes === 0 && this.connected) this.drained();
  }

  override handleWrite(): void {
    this.flush();
  }

  /** The queue just emptied: do what was waiting for it (half-close, close, linger). */
  protected drained(): void {
    if (this.finish === 'close') {
      this.close();
      return;
    }
    if (this.finish === 'linger') {
      this.startLinger();
      return;
    }
    if (this.shutWhenFlushed && !this.wrShut) {
      this.wrShut = true;
      this.interestChanged();
      this.shutdownWrite();
      this.checkDone();
    }
  }

  private shutdownWrite(): void {
    try {
      (this.socket as Socket).shutdown(C.SHUT_WR);
    } catch (err) {
      // ENOTCONN: the peer already went away; the next read or write says so.
      if (!(err instanceof OSError)) throw err;
    }
  }

  /** Both directions are finished: close both ends. */
  protected checkDone(): void {
    const p = this.peer;
    if (p === null) return;
    if (this.readEof && this.wrShut && p.readEof && p.wrShut) {
      this.close();
      p.close();
    }
  }

  /**
   * Ends this side after its queued bytes are written: `'close'` closes then;
   * `'linger'` shuts down writing and discards input until EOF (at most
   * LINGER_MS) first. Call `kick()` after this when outside a handler.
   */
  finishAfterFlush(how: 'close' | 'linger'): void {
    if (this.closedFlag) return;
    this.finish = how;
    this.kick();
    if (this.pendingBytes === 0 && this.connected) this.drained();
    else if (!this.connected) this.close();
  }

  private startLinger(): void {
    this.lingering = true;
    this.interestChanged();
    this.shutdownWrite();
    this.wrShut = true;
    this.setTimer(LINGER_MS, () => this.close());
  }

  /** Runs `fn` after `ms` unless the end closes first (one timer per end). */
  protected setTimer(ms: number, fn: () => void): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, ms);
  }

  protected clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /**
   * Announces that this end's interest, and its peer's, may have changed
   * (`interestChanged()` on both): for state changes made by subclasses
   * outside a handler (a timer, a DNS answer, a phase change).
   */
  kick(): void {
    this.interestChanged();
    const p = this.peer;
    if (p !== null && p !== this) p.interestChanged();
  }

  /**
   * POLLPRI: urgent data arrived. It is inline (relaySocketOptions), so
   * handleRead relays it and POLLPRI ends once a read passes the urgent
   * mark; the kernel stops a read just before the mark, so that takes one
   * more pass. Without SO_OOBINLINE the byte would wait out of band and the
   * event would repeat forever: then it is read and dropped (an EINVAL
   * otherwise, and nothing happens).
   */
  override handleExpt(): void {
    this.discardUrgent();
  }

  /** An error, a reset or a hang-up: this end is gone. */
  override handleClose(): void {
    this.close();
  }

  override handleError(err?: unknown): void {
    if (!(err instanceof OSError && DISCONNECTED.has(err.errno))) this.onError?.(this, err);
    this.handleClose();
  }

  /** Closes the socket; the peer writes what it holds, then closes too. */
  override close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.lingering = false;
    this.clearTimer();
    super.close();
    this.out.clear();
    this.pendingBytes = 0;
    const p = this.peer;
    if (p !== null && p !== this && !p.closedFlag) p.peerGone();
    const cb = this.onClosed;
    this.onClosed = null;
    cb?.(this);
  }

  /** The peer closed: nothing more will be read for it; write what is held, then close. */
  protected peerGone(): void {
    if (this.finish === null) this.finish = 'close';
    this.interestChanged();
    if (!this.connected || this.pendingBytes === 0) this.close();
  }
}

/** Joins two ends (or one end to itself, for echo). */
export function pair(a: RelayEnd, b: RelayEnd): void {
  a.peer = b;
  b.peer = a;
  a.kick();
}

/** An accepted connection made into a relay end (nonblocking, relaySocketOptions). */
export function acceptedEnd(sock: Socket, map: SocketMap): RelayEnd {
  relaySocketOptions(sock);
  return new RelayEnd(sock, map);
}

/** A nonblocking connect to one address, as a relay end. */
export class UpstreamEnd extends RelayEnd {
  private done: ((errno: number, end: UpstreamEnd) => void) | null;

  /**
   * Starts connecting to `target`; `done(0, end)` on success or
   * `done(errno, end)` on failure (the end is then closed), at most once, and
   * never when the end is closed by someone else. ETIMEDOUT after `timeoutMs`.
   * Throws OSError when the attempt fails at once (ENETUNREACH, EMFILE, …).
   */
  constructor(map: SocketMap, target: SocketAddress, timeoutMs: number, done: (errno: number, end: UpstreamEnd) => void) {
    super(null, map);
    this.done = done;
    this.createSocket(target.family, C.SOCK_STREAM);
    try {
      relaySocketOptions(this.socket as Socket);
      this.setTimer(timeoutMs, () => this.fail(E.ETIMEDOUT!));
      this.connect(target.address);
    } catch (err) {
      this.done = null;
      this.close();
      throw err;
    }
  }

  override handleConnectEvent(): void {
    if (!this.connecting) return;
    const err = (this.socket as Socket).getsockopt(C.SOL_SOCKET, C.SO_ERROR) as number;
    if (err !== 0) {
      this.fail(err);
      return;
    }
    this.connecting = false;
    this.connected = true;
    this.clearTimer();
    const cb = this.done;
    this.done = null;
    cb?.(0, this);
  }

  /** Connection failed with `errno`: close and report. */
  private fail(errno: number): void {
    const cb = this.done;
    this.done = null;
    this.connecting = false;
    this.close();
    cb?.(errno, this);
  }

  /** A failure before the connection completes (POLLERR, a hang-up) is a connect failure. */
  override handleClose(): void {
    if (this.connecting) {
      let err = 0;
      try {
        err = (this.socket as Socket).getsockopt(C.SOL_SOCKET, C.SO_ERROR) as number;
      } catch {
        /* fall through to ECONNREFUSED */
      }
      this.fail(err || E.ECONNREFUSED!);
      return;
    }
    this.close();
  }

  override close(): void {
    this.done = null;
    super.close();
  }
}

/** A connect in progress over a list of addresses; `cancel()` stops it. */
export interface Connecting {
  cancel(): void;
}

/**
 * Connects to each of `targets` in turn until one succeeds:
 * `done(0, end)`, or `done(errno, null)` with the last failure's errno.
 * `admit(end)` may refuse a socket (e.g. an fd too high for select): it
 * returns an errno to fail that attempt with, or 0.
 */
export function connectAny(
  map: SocketMap,
  targets: readonly SocketAddress[],
  timeoutMs: number,
  done: (errno: number, end: UpstreamEnd | null) => void,
  admit: (end: UpstreamEnd) => number = () => 0,
): Connecting {
  let i = 0;
  let last = E.EHOSTUNREACH!;
  let current: UpstreamEnd | null = null;
  let cancelled = false;
  const next = (): void => {
    while (!cancelled && i < targets.length) {
      const t = targets[i++]!;
      try {
        let sync: [number, UpstreamEnd] | null = null;
        const end: UpstreamEnd = new UpstreamEnd(map, t, timeoutMs, (err, e) => {
          if (current === null) {
            sync = [err, e]; // finished inside the constructor (a Unix connect)
            return;
          }
          current = null;
          if (err === 0) return done(0, e);
          last = err;
          next();
        });
        const [syncErr] = (sync ?? [-1]) as [number];
        if (syncErr > 0) {
          last = syncErr;
          continue;
        }
        const refused = admit(end);
        if (refused !== 0) {
          end.close();
          last = refused;
          continue;
        }
        if (syncErr === 0) return done(0, end);
        current = end;
        return;
      } catch (err) {
        if (!(err instanceof OSError)) throw err;
        last = err.errno;
      }
    }
    if (!cancelled) done(last, null);
  };
  next();
  return {
    cancel() {
      cancelled = true;
      const c = current;
      current = null;
      c?.close();
    },
  };
}
