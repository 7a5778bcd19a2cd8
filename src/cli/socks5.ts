/**
 * `asyncore-native socks5`: a SOCKS5 proxy (RFC 1928) with optional
 * username/password authentication (RFC 1929). CONNECT only.
 *
 * The handshake is a state machine over an input buffer: every field may
 * arrive split over any number of reads (a client sending one byte at a time
 * works), and several messages may arrive in one read. Bytes a client sends
 * after its CONNECT request, before the reply, are kept and forwarded once
 * the upstream connection is made. After the success reply the connection is
 * a relay (relay.ts): backpressure and half-close as in `forward`.
 *
 * Replies (RFC 1928 §6), and what produces them:
 *
 * | REP  | meaning                    | when                                                        |
 * |------|----------------------------|-------------------------------------------------------------|
 * | 0x00 | succeeded                  | connected; BND.ADDR/BND.PORT = getsockname() of the upstream socket |
 * | 0x01 | general failure            | request VER is not 5; a zero-length domain; any other errno |
 * | 0x02 | not allowed by ruleset     | connect(2) EACCES / EPERM (local policy, a firewall)        |
 * | 0x03 | network unreachable        | ENETUNREACH, ENETDOWN                                       |
 * | 0x04 | host unreachable           | EHOSTUNREACH, EHOSTDOWN, ETIMEDOUT (the connect timeout, over the lookup or an attempt), a name that does not resolve (ENOTFOUND, EAI_AGAIN, …) |
 * | 0x05 | connection refused         | ECONNREFUSED                                                |
 * | 0x07 | command not supported      | CMD is BIND (2), UDP ASSOCIATE (3) or unknown               |
 * | 0x08 | address type not supported | ATYP not 1, 3 or 4; EAFNOSUPPORT (no IPv6 on this host)     |
 *
 * Method selection: without `auth` only 0x00 (no authentication) is offered;
 * with `auth` only 0x02 (username/password). A greeting that lists neither
 * gets 0xFF and the connection is closed. A greeting whose VER is not 5 is
 * closed without a reply (RFC 1928 has none to give). A failed RFC 1929
 * authentication (or a sub-negotiation VER other than 1, or an empty user
 * name) gets status 0x01 and is closed. Every error reply is followed by a
 * lingering close: shutdown(SHUT_WR), input discarded until the client's EOF
 * (at most 2 s), so the client reads the reply rather than a reset.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Address, Socket } from '../socket.js';
import { resolveHost, toSocketAddress } from './address.js';
import { formatBytes } from './log.js';
import { UsageError, parseSeconds } from './args.js';
import type { Command } from './command.js';
import {
  REP, METHOD_NONE, METHOD_USERPASS, METHOD_REFUSED, replyForErrno, parseGreeting, parseAuth, parseRequest, replyBytes,
  type Socks5Request,
} from '../socks5.js';
import { RelayEnd, connectAny, pair, recvShared, relaySocketOptions, sharedView, type Connecting } from './relay.js';
import { Server, describeError, type ServerOptions } from './server.js';

// The wire format lives in the library (`asyncore-native/socks5`); re-exported for the CLI's users.
export * from '../socks5.js';

/** The handshake never needs more than this buffered (an RFC 1929 request is at most 513 bytes). */
const MAX_HANDSHAKE = 1024;

type Phase = 'greeting' | 'auth' | 'request' | 'connecting' | 'relay' | 'done';

export interface Socks5Options extends ServerOptions {
  /** Require RFC 1929 username/password authentication with these credentials. */
  auth?: { user: string; pass: string };
  /**
   * Seconds the name lookup, and then each connection attempt, may take once
   * the request is complete (default 10); then reply 0x04.
   */
  connectTimeout?: number;
  /** Seconds a client has to send its complete request (default 30); then it is closed. */
  handshakeTimeout?: number;
}

/** The client side of one SOCKS5 connection: the handshake, then a relay end. */
export class Socks5Conn extends RelayEnd {
  /** readable() also reads the phase: changes outside a handler call kick(). */
  static override reportsInterest = true;

  phase: Phase = 'greeting';
  /** The requested destination (`host:port`), once known. */
  target = '';
  /** The reply code sent, -1 before one was sent. */
  rep = -1;
  /** Why the handshake ended without a request, for the close log line. */
  note = '';
  upstream: RelayEnd | null = null;
  private inbuf: Buffer = Buffer.alloc(0);
  private pendingConnect: Connecting | null = null;

  constructor(
    sock: Socket,
    private readonly server: Socks5Server,
  ) {
    super(sock, server.map);
    this.setTimer(server.handshakeTimeoutMs, () => {
      this.note = 'handshake timeout';
      this.close();
    });
  }

  override readable(): boolean {
    if (this.lingering) return true;
    switch (this.phase) {
      case 'greeting':
      case 'auth':
      case 'request':
        return this.connected && this.finish === null;
      case 'relay':
        return super.readable();
      default:
        return false;
    }
  }

  override handleRead(): void {
    if (this.phase === 'relay' || this.lingering) return super.handleRead();
    if (this.phase !== 'greeting' && this.phase !== 'auth' && this.phase !== 'request') return;
    const n = recvShared(this.socket as Socket, MAX_HANDSHAKE - this.inbuf.length);
    if (n < 0) return;
    if (n === 0) {
      this.note = 'EOF during the handshake';
      this.close(); // nobody to answer
      return;
    }
    this.bytesIn += n;
    this.inbuf = Buffer.concat([this.inbuf, sharedView(n)]);
    this.advance();
  }

  /** Runs the handshake as far as the buffered bytes allow. */
  private advance(): void {
    for (;;) {
      if (this.phase === 'greeting') {
        const r = parseGreeting(this.inbuf);
        if ('need' in r) return this.checkRoom(r.need);
        if ('fail' in r) {
          this.note = 'not a SOCKS5 greeting';
          return this.close();
        }
        this.consume(r.used);
        const want = this.server.auth ? METHOD_USERPASS : METHOD_NONE;
        if (!r.value.includes(want)) {
          this.note = 'no acceptable authentication method';
          return this.answerAndClose(Buffer.from([5, METHOD_REFUSED]));
        }
        this.enqueue(Buffer.from([5, want]));
        this.phase = want === METHOD_USERPASS ? 'auth' : 'request';
      } else if (this.phase === 'auth') {
        const r = parseAuth(this.inbuf);
        if ('need' in r) return this.checkRoom(r.need);
        if ('fail' in r) {
          this.note = 'malformed authentication request';
          return this.answerAndClose(Buffer.from([1, 1]));
        }
        this.consume(r.used);
        if (!this.server.checkCredentials(r.value.user, r.value.pass)) {
          this.note = `authentication failed for user ${JSON.stringify(r.value.user.toString('utf8'))}`;
          return this.answerAndClose(Buffer.from([1, 1]));
        }
        this.enqueue(Buffer.from([1, 0]));
        this.phase = 'request';
      } else if (this.phase === 'request') {
        const r = parseRequest(this.inbuf);
        if ('need' in r) return this.checkRoom(r.need);
        if ('fail' in r) {
          this.note = 'bad or unsupported request';
          return this.fail(r.fail);
        }
        this.consume(r.used);
        this.phase = 'connecting';
        return this.startConnect(r.value);
      } else {
        return;
      }
    }
  }

  private consume(n: number): void {
    this.inbuf = this.inbuf.subarray(n);
  }

  // Every message fits in MAX_HANDSHAKE; this only guards the invariant.
  private checkRoom(need: number): void {
    if (need > MAX_HANDSHAKE) this.fail(REP.GENERAL_FAILURE);
  }

  private answerAndClose(reply: Buffer): void {
    this.phase = 'done';
    this.inbuf = Buffer.alloc(0);
    this.enqueue(reply);
    this.finishAfterFlush('linger');
    this.kick();
  }

  /** Sends the error reply `rep` and closes. */
  fail(rep: number): void {
    if (this.closed || this.phase === 'done') return;
    this.rep = rep;
    this.answerAndClose(replyBytes(rep));
  }

  private startConnect(req: Socks5Request): void {
    const port = req.port;
    this.target = req.host.includes(':') ? `[${req.host}]:${port}` : `${req.host}:${port}`;
    const server = this.server;
    // The request is complete: the handshake timeout stops here. From now on
    // the connect timeout governs, first over the name lookup (this timer),
    // then over each connection attempt (UpstreamEnd's own); either way the
    // answer is 0x04 host unreachable, as for ETIMEDOUT.
    this.setTimer(server.connectTimeoutMs, () => this.fail(REP.HOST_UNREACHABLE));
    resolveHost(req.host, server.resolver).then(
      (addrs) => {
        if (this.closed || this.phase !== 'connecting') return;
        this.clearTimer();
        this.pendingConnect = connectAny(
          server.map,
          addrs.map((a) => toSocketAddress(a, port)),
          server.connectTimeoutMs,
          (errno, end) => {
            this.pendingConnect = null;
            if (end === null) return this.fail(replyForErrno(errno));
            this.onUpstream(end);
          },
          server.admitErrno,
        );
      },
      () => {
        this.clearTimer();
        this.fail(REP.HOST_UNREACHABLE);
      },
    );
  }

  private onUpstream(end: RelayEnd): void {
    const sock = end.socket as Socket;
    this.clearTimer();
    this.rep = REP.SUCCEEDED;
    this.enqueue(replyBytes(REP.SUCCEEDED, sock.family, sock.getsockname()));
    this.phase = 'relay';
    this.upstream = end;
    end.onError = this.onError;
    end.onClosed = this.server.sessionEnded;
    pair(this, end);
    if (this.inbuf.length > 0) end.enqueue(this.inbuf);
    this.inbuf = Buffer.alloc(0);
    this.kick();
  }

  override close(): void {
    if (this.closed) return;
    this.pendingConnect?.cancel();
    this.pendingConnect = null;
    super.close();
  }
}

/** The SOCKS5 proxy server. */
export class Socks5Server extends Server {
  readonly auth: { user: Buffer; pass: Buffer } | null;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  private readonly started = new WeakMap<Socks5Conn, [number, string, number]>();

  constructor(options: Socks5Options = {}) {
    super(options);
    this.auth = options.auth ? { user: Buffer.from(options.auth.user), pass: Buffer.from(options.auth.pass) } : null;
    this.connectTimeoutMs = Math.ceil((options.connectTimeout ?? 10) * 1000);
    this.handshakeTimeoutMs = Math.ceil((options.handshakeTimeout ?? 30) * 1000);
  }

  /** RFC 1929 check, in time independent of where the bytes differ. */
  checkCredentials(user: Buffer, pass: Buffer): boolean {
    const a = this.auth;
    if (a === null) return false;
    const eq = (x: Buffer, y: Buffer) => x.length === y.length && timingSafeEqual(x, y);
    return eq(user, a.user) && eq(pass, a.pass);
  }

  handleConnection(sock: Socket, peer: string): void {
    const id = this.logger.nextId();
    relaySocketOptions(sock);
    const conn = new Socks5Conn(sock, this);
    this.started.set(conn, [id, peer, performance.now()]);
    this.logger.conn(`#${id} open ${peer}`);
    conn.onError = (_e, err) => this.logger.error(`#${id} error: ${describeError(err)}`);
    conn.onClosed = () => this.sessionEnded(conn);
  }

  /** Logs the end of a session once both of its ends are closed. */
  readonly sessionEnded = (end: RelayEnd): void => {
    const conn = end instanceof Socks5Conn ? end : (end.peer as Socks5Conn | null);
    if (conn === null || !conn.closed || (conn.upstream !== null && !conn.upstream.closed)) return;
    const info = this.started.get(conn);
    if (info === undefined) return;
    this.started.delete(conn);
    const [id, peer, t0] = info;
    const rep = conn.rep < 0 ? 'no reply' : `reply 0x${conn.rep.toString(16).padStart(2, '0')}`;
    const what = conn.target ? `-> ${conn.target} ${rep}` : `${conn.note || 'closed before a request'}${conn.rep < 0 ? '' : ` ${rep}`}`;
    const traffic = conn.rep === REP.SUCCEEDED ? ` sent ${formatBytes(conn.upstream?.bytesOut ?? 0)} received ${formatBytes(conn.upstream?.bytesIn ?? 0)}` : '';
    this.logger.conn(`#${id} close ${peer} ${what}${traffic} in ${((performance.now() - t0) / 1000).toFixed(3)} s`);
  };
}

/** `--auth USER:PASS` → credentials (UsageError when malformed). */
export function parseAuthOption(value: string | boolean | undefined): { user: string; pass: string } | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const colon = text.indexOf(':');
  const user = colon < 0 ? '' : text.slice(0, colon);
  const pass = colon < 0 ? '' : text.slice(colon + 1);
  if (user === '' || Buffer.byteLength(user) > 255 || Buffer.byteLength(pass) > 255)
    throw new UsageError('--auth must be USER:PASS (user 1-255 bytes, password 0-255 bytes)');
  return { user, pass };
}

export const socks5Command: Command = {
  name: 'socks5',
  summary: 'SOCKS5 proxy (RFC 1928 CONNECT, RFC 1929 username/password)',
  synopsis: '--listen ADDR [--auth USER:PASS] [options]',
  description:
    'A SOCKS5 proxy for CONNECT to IPv4, IPv6 and domain-name destinations (names are\n' +
    'resolved by the proxy, without blocking other clients). With --auth, clients must\n' +
    'authenticate (RFC 1929); without it, only "no authentication" is offered.\n' +
    'Reply codes: 0x01 general failure, 0x02 EACCES/EPERM, 0x03 ENETUNREACH, 0x04 EHOSTUNREACH /\n' +
    'ETIMEDOUT / unknown host, 0x05 ECONNREFUSED, 0x07 command not supported, 0x08 address type\n' +
    'not supported. ADDR is HOST:PORT, [V6]:PORT or unix:PATH.',
  options: {
    listen: { value: 'ADDR', required: true, help: 'where to listen' },
    auth: { value: 'USER:PASS', help: 'require this username and password (RFC 1929)' },
    'connect-timeout': { value: 'SECONDS', help: 'reply 0x04 when the lookup or a connect takes longer (default 10)' },
    'handshake-timeout': { value: 'SECONDS', help: 'close clients that have not sent a complete request by then (default 30)' },
  },
  create: (opts, logger) =>
    new Socks5Server({
      logger,
      auth: parseAuthOption(opts.auth),
      connectTimeout: parseSeconds('connect-timeout', opts['connect-timeout'], 10),
      handshakeTimeout: parseSeconds('handshake-timeout', opts['handshake-timeout'], 30),
    }),
};
