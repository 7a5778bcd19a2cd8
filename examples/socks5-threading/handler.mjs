// A SOCKS5 proxy handler (RFC 1928 CONNECT, RFC 1929 username/password) on
// ThreadingTCPServer + StreamRequestHandler: the seed's SocketServer proxy,
// done right. Each connection runs in its own worker thread, so the handler
// is plain blocking code: read each field exactly, resolve and connect with
// blocking calls, then relay both ways over poll(2).
//
// What the seed got wrong and this does not:
// - every field is read exactly (`rfile.read(n)` loops until n bytes or EOF;
//   `rbufsize = 0` so nothing past the request is swallowed: bytes a client
//   sends right after its request stay in the socket and are relayed);
// - the domain length is its own byte, read before the name;
// - every failure the RFC has a reply for is answered (0x01 general, 0x03 / 0x04
//   unreachable, 0x05 refused, 0x07 command, 0x08 address type; 0xFF method;
//   RFC 1929 status 0x01), then the connection is closed after a linger, so the
//   client reads the reply rather than a reset;
// - the success reply carries the address the proxy actually bound upstream;
// - the relay never blocks on one direction while the other fills up
//   (nonblocking sockets, at most one read held per direction), and passes a
//   half-close on as shutdown(SHUT_WR).
//
// Configuration arrives as the server's `data` (see server.mjs):
// `{ auth?: { user, pass }, stopFd?, connectTimeout?, handshakeTimeout? }`.
// `stopFd` is the read end of a pipe shared by every thread of the process:
// once its write end is closed it polls readable for good, and every handler
// waiting on it ends — that is how the server stops its relays.
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import {
  AF_INET, AF_INET6, GaiError, IPPROTO_TCP, OSError, POLLERR, POLLHUP, POLLIN, POLLOUT, Poll, SHUT_WR,
  SocketReader, StreamRequestHandler, TCP_NODELAY, createConnection, errno as E,
} from 'asyncore-native';
import {
  ATYP_DOMAIN, ATYP_IPV4, ATYP_IPV6, CMD_CONNECT, METHOD_NONE, METHOD_REFUSED, METHOD_USERPASS, REP,
  ipv6FromBytes, replyBytes, replyForErrno,
} from 'asyncore-native/socks5';

export { REP };

/** Seconds a connect may take, and a client may take for its handshake (the CLI's defaults). */
const CONNECT_TIMEOUT = 10;
const HANDSHAKE_TIMEOUT = 30;
/** How long a closing connection waits for the client's EOF after an error reply (ms). */
const LINGER_MS = 2000;
/** One recv(2) at most this much (a loopback segment is 64 KiB). */
const READ_SIZE = 65536;
/** The relay's poll(2) wakes at least this often (ms), so no wait is unbounded. */
const PASS_MS = 1000;

/** Errnos that mean "the peer is gone": the handler ends quietly instead of reporting an error. */
const GONE = new Set([E.ECONNRESET, E.EPIPE, E.ENOTCONN, E.ECONNABORTED, E.ESHUTDOWN, E.ETIMEDOUT]);

/**
 * The reply code for what createConnection threw (the table of
 * `asyncore-native/socks5`, shared with the CLI): a name that does not
 * resolve is 0x04.
 * @param {unknown} err
 * @returns {number}
 */
export function replyFor(err) {
  if (err instanceof GaiError) return REP.HOST_UNREACHABLE;
  return err instanceof OSError ? replyForErrno(err.errno) : REP.GENERAL_FAILURE;
}

/**
 * A reply for `bound` (a getsockname() result, or null for 0.0.0.0:0).
 * @param {number} rep
 * @param {[string, number, ...number[]] | null} [bound]
 * @returns {Buffer}
 */
export function reply(rep, bound = null) {
  const v6 = bound !== null && isIP(bound[0].split('%')[0]) === 6;
  return replyBytes(rep, v6 ? AF_INET6 : AF_INET, bound);
}

/**
 * Sets TCP_NODELAY on an Internet socket (a relay should not add Nagle delays).
 * @param {import('asyncore-native').Socket} sock
 */
function noDelay(sock) {
  if (sock.family === AF_INET || sock.family === AF_INET6) sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
}

/**
 * One direction of the relay: what is read from `from` is written to `to`.
 * At most one read is held (`pending`) while `to` cannot take it, and `from`
 * is not read meanwhile: that is the backpressure.
 */
class Direction {
  /**
   * @param {import('asyncore-native').Socket} from
   * @param {import('asyncore-native').Socket} to
   */
  constructor(from, to) {
    this.from = from;
    this.to = to;
    /** @type {Buffer | null} bytes read but not yet written */
    this.pending = null;
    /** `from` reached EOF (or failed): nothing more will be read. */
    this.eof = false;
    /** Finished: everything was written and `to` was shut down for writing (or `to` is gone). */
    this.done = false;
  }

  /** Whether this direction wants `from` to be readable. */
  get reading() {
    return !this.eof && this.pending === null;
  }

  /** Reads once from `from` (it polled readable); the bytes wait in `pending` for `flush()`. */
  read() {
    const data = this.from.recv(READ_SIZE);
    if (data.length === 0) {
      this.eof = true;
      this.finishIfFlushed();
      return;
    }
    this.pending = data;
  }

  /** Writes what is held, as far as `to` takes it now (never blocks: both sockets are nonblocking). */
  flush() {
    while (this.pending !== null) {
      let n;
      try {
        n = this.to.send(this.pending);
      } catch (e) {
        if (e instanceof OSError && (e.errno === E.EAGAIN || e.errno === E.EWOULDBLOCK)) return;
        throw e;
      }
      this.pending = n < this.pending.length ? this.pending.subarray(n) : null;
    }
    this.finishIfFlushed();
  }

  /** After EOF and an empty buffer, the half-close is passed on. */
  finishIfFlushed() {
    if (!this.eof || this.pending !== null || this.done) return;
    this.done = true;
    try {
      this.to.shutdown(SHUT_WR);
    } catch (e) {
      // ENOTCONN: the other side is already gone; its own read says so.
      if (!(e instanceof OSError)) throw e;
    }
  }

  /** `to` is gone: drop what is held; nothing more can be delivered. */
  abort() {
    this.pending = null;
    this.eof = true;
    this.done = true;
  }
}

/**
 * Relays bytes both ways between `a` and `b` until both directions have
 * finished (EOF passed on each way), one side fails, or `stopFd` (when >= 0)
 * becomes readable. Leaves both sockets nonblocking; closes neither.
 *
 * poll(2) rather than select(2): a busy proxy's descriptors pass FD_SETSIZE
 * (1024), which select refuses.
 *
 * @param {import('asyncore-native').Socket} a
 * @param {import('asyncore-native').Socket} b
 * @param {number} [stopFd]
 */
export function relay(a, b, stopFd = -1) {
  a.setblocking(false);
  b.setblocking(false);
  const ab = new Direction(a, b);
  const ba = new Direction(b, a);
  const dirs = [ab, ba];
  const poll = new Poll();
  if (stopFd >= 0) poll.register(stopFd, POLLIN);
  /** A socket failed (reset, error): directions into it end now, directions out of it end after flushing. */
  const gone = (sock) => {
    for (const d of dirs) {
      if (d.to === sock) d.abort();
      if (d.from === sock) {
        d.eof = true;
        d.finishIfFlushed();
      }
    }
  };
  const attempt = (sock, fn) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof OSError)) throw e;
      if (e.errno === E.EAGAIN || e.errno === E.EWOULDBLOCK) return;
      gone(sock);
    }
  };
  while (!(ab.done && ba.done)) {
    const masks = new Map([
      [a.fileno(), (ab.reading ? POLLIN : 0) | (ba.pending ? POLLOUT : 0)],
      [b.fileno(), (ba.reading ? POLLIN : 0) | (ab.pending ? POLLOUT : 0)],
    ]);
    for (const [fd, mask] of masks) poll.register(fd, mask);
    const events = new Map(poll.poll(PASS_MS));
    if (stopFd >= 0 && events.has(stopFd)) return;
    for (const d of dirs) {
      const inEv = events.get(d.from.fileno()) ?? 0;
      const outEv = events.get(d.to.fileno()) ?? 0;
      if (d.reading && inEv & (POLLIN | POLLHUP | POLLERR)) {
        attempt(d.from, () => d.read());
        if (d.pending) attempt(d.to, () => d.flush()); // most reads go straight on
      } else if (d.pending && outEv & (POLLOUT | POLLHUP | POLLERR)) {
        attempt(d.to, () => d.flush());
      }
    }
    // A hang-up or error on a socket nobody is reading is otherwise reported
    // on every pass (poll(2) always returns them): treat the socket as gone.
    for (const [fd, mask] of masks) {
      const ev = events.get(fd) ?? 0;
      if (ev & (POLLHUP | POLLERR) && !(mask & POLLIN)) gone(fd === a.fileno() ? a : b);
    }
  }
}

/**
 * The SOCKS5 handler. Python's names: `setup()`, `handle()`, `finish()`;
 * `this.rfile.read(n)` returns n bytes, fewer only at end of stream.
 *
 * @example
 * // Served by ThreadingTCPServer (one worker thread per connection):
 * new ThreadingTCPServer(['127.0.0.1', 1080], {
 *   module: new URL('./handler.mjs', import.meta.url).href,
 *   export: 'Socks5Handler',
 *   data: { auth: { user: 'alice', pass: 's3cret' } },
 * });
 */
export class Socks5Handler extends StreamRequestHandler {
  // Unbuffered: rfile never reads past the request, so early data stays in the socket for the relay.
  rbufsize = 0;

  /** Wraps rfile so that every wait also watches the stop descriptor and the handshake deadline. */
  setup() {
    super.setup();
    const config = /** @type {{ auth?: { user: string, pass: string }, stopFd?: number, connectTimeout?: number, handshakeTimeout?: number } | null} */ (
      this.server.data ?? {}
    );
    this.auth = config.auth ? { user: Buffer.from(config.auth.user), pass: Buffer.from(config.auth.pass) } : null;
    this.stopFd = config.stopFd ?? -1;
    this.connectTimeout = config.connectTimeout ?? CONNECT_TIMEOUT;
    this.deadline = performance.now() + (config.handshakeTimeout ?? HANDSHAKE_TIMEOUT) * 1000;
    noDelay(this.connection);
    const conn = this.connection;
    // End of stream (an empty read) when the client is silent past the deadline or the server stops.
    this.rfile = new SocketReader({ recv: (n) => (this.waitReadable(this.deadline) ? conn.recv(n) : Buffer.alloc(0)) }, 0);
  }

  /**
   * Waits until the client's socket is readable (true), or the deadline
   * passes or the server stops (false).
   * @param {number} deadline performance.now() milliseconds
   */
  waitReadable(deadline) {
    const poll = new Poll();
    poll.register(this.connection, POLLIN);
    if (this.stopFd >= 0) poll.register(this.stopFd, POLLIN);
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const events = new Map(poll.poll(Math.min(left, PASS_MS)));
      if (events.has(this.stopFd)) return false;
      if (events.has(this.connection.fileno())) return true;
    }
  }

  /** Serves one client: handshake, connect, relay. A client that goes away ends it quietly. */
  handle() {
    try {
      const upstream = this.handshake();
      if (upstream === null) return;
      try {
        relay(this.connection, upstream, this.stopFd);
      } finally {
        upstream.close();
      }
    } catch (e) {
      if (e instanceof OSError && GONE.has(e.errno)) return;
      throw e;
    }
  }

  /**
   * Reads exactly `n` bytes; null when the stream ends first (nobody to answer then).
   * @param {number} n
   * @returns {Buffer | null}
   */
  readExactly(n) {
    const b = this.rfile.read(n);
    return b.length === n ? b : null;
  }

  /**
   * Method selection, authentication and the request. Returns the connected
   * upstream socket after the success reply, or null once the connection has
   * been answered (or has ended) and should close.
   * @returns {import('asyncore-native').Socket | null}
   */
  handshake() {
    // Greeting: VER NMETHODS METHODS...
    const greeting = this.readExactly(2);
    if (greeting === null) return null;
    if (greeting[0] !== 5) return this.refuse(null); // not SOCKS5: RFC 1928 has no reply for it
    const methods = this.readExactly(greeting[1]);
    if (methods === null) return null;
    const method = this.auth ? METHOD_USERPASS : METHOD_NONE;
    if (!methods.includes(method)) return this.refuse(Buffer.from([5, METHOD_REFUSED]));
    this.wfile.write(Buffer.from([5, method]));

    // RFC 1929: VER ULEN UNAME PLEN PASSWD; status 0x01 for anything but the right pair.
    if (this.auth) {
      const head = this.readExactly(2);
      if (head === null) return null;
      if (head[0] !== 1 || head[1] === 0) return this.refuse(Buffer.from([1, 1]));
      const user = this.readExactly(head[1]);
      const plen = user && this.readExactly(1);
      const pass = plen && this.readExactly(plen[0]);
      if (pass === null) return null;
      if (!this.checkCredentials(user, pass)) return this.refuse(Buffer.from([1, 1]));
      this.wfile.write(Buffer.from([1, 0]));
    }

    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT, each field checked as soon as it is read.
    const ver = this.readExactly(1);
    if (ver === null) return null;
    if (ver[0] !== 5) return this.refuse(reply(REP.GENERAL_FAILURE));
    const cmd = this.readExactly(1);
    if (cmd === null) return null;
    if (cmd[0] !== CMD_CONNECT) return this.refuse(reply(REP.COMMAND_NOT_SUPPORTED));
    const rsvAtyp = this.readExactly(2);
    if (rsvAtyp === null) return null;
    let host;
    switch (rsvAtyp[1]) {
      case ATYP_IPV4: {
        const a = this.readExactly(4);
        if (a === null) return null;
        host = a.join('.');
        break;
      }
      case ATYP_IPV6: {
        const a = this.readExactly(16);
        if (a === null) return null;
        host = ipv6FromBytes(a);
        break;
      }
      case ATYP_DOMAIN: {
        const len = this.readExactly(1); // the length is one byte of its own, then the name
        if (len === null) return null;
        if (len[0] === 0) return this.refuse(reply(REP.GENERAL_FAILURE));
        const name = this.readExactly(len[0]);
        if (name === null) return null;
        host = name.toString('utf8');
        break;
      }
      default:
        return this.refuse(reply(REP.ADDRESS_TYPE_NOT_SUPPORTED));
    }
    const port = this.readExactly(2);
    if (port === null) return null;

    // Blocking resolve and connect: this thread serves only this client.
    let upstream;
    try {
      upstream = createConnection([host, port.readUInt16BE(0)], this.connectTimeout);
    } catch (e) {
      return this.refuse(reply(replyFor(e)));
    }
    try {
      noDelay(upstream);
      this.wfile.write(reply(REP.SUCCEEDED, upstream.getsockname()));
    } catch (e) {
      upstream.close();
      throw e;
    }
    return upstream;
  }

  /**
   * RFC 1929 check, in time independent of where the bytes differ.
   * @param {Buffer} user
   * @param {Buffer} pass
   */
  checkCredentials(user, pass) {
    const eq = (x, y) => x.length === y.length && timingSafeEqual(x, y);
    return eq(user, this.auth.user) && eq(pass, this.auth.pass);
  }

  /**
   * Sends `answer` (if any), then closes with a linger: shut down writing and
   * discard the client's input until its EOF (at most LINGER_MS), because
   * closing with unread input sends a reset, which can destroy the reply
   * before the client reads it.
   * @param {Buffer | null} answer
   * @returns {null}
   */
  refuse(answer) {
    if (answer) this.wfile.write(answer);
    try {
      this.connection.shutdown(SHUT_WR);
    } catch (e) {
      if (!(e instanceof OSError)) throw e;
      return null;
    }
    const until = performance.now() + LINGER_MS;
    while (this.waitReadable(until) && this.connection.recv(READ_SIZE).length > 0);
    return null;
  }
}
