/**
 * Request handlers: the object a server makes for each request.
 *
 * Methods that may be overridden: `setup()`, `handle()`, `finish()`.
 * Method for the server: `run()` (setup → handle → finish; finish runs even
 * when handle throws).
 *
 * Deliberate difference from Python: constructing a handler does not run it.
 * The server constructs it, then calls `run()`, so that a subclass's field
 * initializers (`override timeout = 5`) are in place before `setup()` reads
 * them — in JS they run only after the base constructor returns.
 */
import { IPPROTO_TCP, TCP_NODELAY, Socket, toBytes, type Address, type BytesLike } from '../socket.js';

/** What a handler sees as `this.server`: the server itself, or in a worker / child its stand-in. */
export interface ServerLike {
  /** The server's bound address. */
  serverAddress: Address;
  /** Asks the serving loop to stop after its current pass; returns at once. */
  shutdown(): void;
}

/** The base of every handler. `request` is a Socket (stream) or `[data, socket]` (datagram). */
export class BaseRequestHandler<Req = unknown, S extends ServerLike = ServerLike> {
  /** The request: the connection's Socket (stream servers) or `[data, serverSocket]` (datagram servers). */
  readonly request: Req;
  /** The client's address: `[host, port]`, `[host, port, flowinfo, scopeId]` or a path (`''` for an unnamed Unix peer). */
  readonly clientAddress: Address;
  /** The server (in a worker thread or child process: its RemoteServer stand-in). */
  readonly server: S;

  /** Stores the three; does not run anything (the server calls `run()`). */
  constructor(request: Req, clientAddress: Address, server: S) {
    this.request = request;
    this.clientAddress = clientAddress;
    this.server = server;
  }

  /** Runs `setup()`, `handle()` and, whatever happens, `finish()`. Called by the server. */
  run(): void {
    this.setup();
    try {
      this.handle();
    } finally {
      this.finish();
    }
  }

  /** Hook: called before `handle()`. */
  setup(): void {}
  /** Hook: serves the request. */
  handle(): void {}
  /** Hook: called after `handle()`, even when it threw. */
  finish(): void {}
}

/** Something that yields bytes until it returns an empty Buffer (end of stream). */
export interface ByteSource {
  /** Up to `n` bytes (at least 1 unless at end of stream, when it returns an empty Buffer); may block. */
  recv(n: number): Buffer;
}

/** Python's default `io.DEFAULT_BUFFER_SIZE`, the read chunk of a buffered reader. */
const DEFAULT_BUFFER_SIZE = 8192;

/**
 * A blocking binary reader over a socket (Python's `makefile('rb')`):
 * `read(n)`, `readline(limit)`, `readlines()`, and iteration over lines.
 * `bufsize` > 0 (or -1 for the default 8192) reads ahead in chunks of that
 * size; 0 is unbuffered: `readline()` then reads one byte at a time and never
 * consumes past the newline. Closing the reader does not close the socket.
 */
export class SocketReader implements Iterable<Buffer> {
  private buf: Buffer = Buffer.alloc(0);
  private eof = false;
  private isClosed = false;
  private readonly chunk: number;

  /**
   * Makes a reader over `source`.
   * @param source a Socket or any ByteSource
   * @param bufsize read-ahead in bytes: -1 the default (8192), 0 unbuffered
   */
  constructor(
    private readonly source: ByteSource & { fileno?(): number },
    bufsize = -1,
  ) {
    this.chunk = bufsize < 0 ? DEFAULT_BUFFER_SIZE : bufsize;
  }

  private live(): void {
    if (this.isClosed) throw new RangeError('I/O operation on closed file');
  }

  /** Reads more into the buffer; false at end of stream. */
  private fill(want: number): boolean {
    if (this.eof) return false;
    const data = this.source.recv(Math.max(1, this.chunk === 0 ? want : Math.max(this.chunk, want)));
    if (data.length === 0) {
      this.eof = true;
      return false;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    return true;
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Buffer.from(out);
  }

  /**
   * Reads `n` bytes, fewer only at end of stream; with `n` < 0 or left out,
   * everything up to end of stream. Blocks as the socket's mode says.
   */
  read(n = -1): Buffer {
    this.live();
    if (n < 0) {
      while (this.fill(this.chunk || DEFAULT_BUFFER_SIZE));
      return this.take(this.buf.length);
    }
    while (this.buf.length < n && this.fill(n - this.buf.length));
    return this.take(Math.min(n, this.buf.length));
  }

  /** Reads one line, its `\n` included; at most `limit` bytes when `limit` >= 0. Empty at end of stream. */
  readline(limit = -1): Buffer {
    this.live();
    let scanned = 0;
    for (;;) {
      const nl = this.buf.indexOf(0x0a, scanned);
      if (nl >= 0 && (limit < 0 || nl < limit)) return this.take(nl + 1);
      if (limit >= 0 && this.buf.length >= limit) return this.take(limit);
      scanned = this.buf.length;
      if (!this.fill(1)) return this.take(this.buf.length);
    }
  }

  /** Every remaining line. */
  readlines(): Buffer[] {
    return [...this];
  }

  /** The remaining lines, each with its `\n` (the last may lack it), until end of stream. */
  *[Symbol.iterator](): Iterator<Buffer> {
    for (;;) {
      const line = this.readline();
      if (line.length === 0) return;
      yield line;
    }
  }

  /** The socket's descriptor (or -1 for an in-memory reader). */
  fileno(): number {
    return this.source.fileno?.() ?? -1;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Drops the read-ahead; later reads throw RangeError. The socket stays open. */
  close(): void {
    this.isClosed = true;
    this.buf = Buffer.alloc(0);
  }
}

/**
 * A blocking binary writer over a socket. With `bufsize` 0 (the default of
 * StreamRequestHandler, as Python's `_SocketWriter`) every `write()` is a
 * `sendall()` and the data leaves at once; with `bufsize` > 0 data is kept
 * until that many bytes are waiting or `flush()` / `close()`. Closing the
 * writer flushes it and does not close the socket.
 */
export class SocketWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private isClosed = false;

  /**
   * Makes a writer over `sock`.
   * @param sock the connection
   * @param bufsize 0: every write is sent at once; > 0: bytes to collect before sending
   */
  constructor(
    private readonly sock: Socket,
    private readonly bufsize = 0,
  ) {}

  private live(): void {
    if (this.isClosed) throw new RangeError('I/O operation on closed file');
  }

  /**
   * Writes all of `data` (a string is UTF-8); returns its length in bytes.
   * @throws RangeError when closed; OSError from `sendall` (EPIPE, ECONNRESET), SocketTimeout
   */
  write(data: BytesLike): number {
    this.live();
    const b = toBytes(data);
    if (this.bufsize <= 0) {
      this.sock.sendall(b);
      return b.byteLength;
    }
    this.pending.push(Buffer.from(b));
    this.pendingBytes += b.byteLength;
    if (this.pendingBytes >= this.bufsize) this.flush();
    return b.byteLength;
  }

  /** Writes each chunk in turn. */
  writelines(chunks: Iterable<BytesLike>): void {
    for (const c of chunks) this.write(c);
  }

  /** Sends whatever is buffered. */
  flush(): void {
    this.live();
    if (this.pendingBytes === 0) return;
    const all = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.sock.sendall(all);
  }

  /** The socket's descriptor. */
  fileno(): number {
    return this.sock.fileno();
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Flushes, then refuses further writes. */
  close(): void {
    if (this.isClosed) return;
    try {
      this.flush();
    } finally {
      this.isClosed = true;
    }
  }
}

/** An in-memory writer (Python's `BytesIO` as DatagramRequestHandler uses it). */
export class BytesWriter {
  private chunks: Buffer[] = [];
  private isClosed = false;

  /**
   * Appends `data` (a string is UTF-8); returns its length in bytes.
   * @throws RangeError when closed
   */
  write(data: BytesLike): number {
    if (this.isClosed) throw new RangeError('I/O operation on closed file');
    const b = Buffer.from(toBytes(data));
    this.chunks.push(b);
    return b.byteLength;
  }

  /** Everything written so far. */
  getvalue(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Refuses further writes; `getvalue()` still works. */
  close(): void {
    this.isClosed = true;
  }
}

/**
 * A handler for stream servers: `rfile` and `wfile` over the connection.
 *
 * Attributes that may be overridden (as fields): `rbufsize` (-1: buffered,
 * 0: unbuffered), `wbufsize` (0: every write goes out at once), `timeout`
 * (seconds for the connection, null: blocking), `disableNagleAlgorithm`
 * (sets TCP_NODELAY on TCP connections).
 *
 * @example
 * class Echo extends StreamRequestHandler {
 *   override handle() {
 *     for (const line of this.rfile) this.wfile.write(line);
 *   }
 * }
 */
export class StreamRequestHandler<S extends ServerLike = ServerLike> extends BaseRequestHandler<Socket, S> {
  /** Read-ahead of `rfile` in bytes: -1 buffered (8192), 0 unbuffered (never reads past a line). */
  rbufsize = -1;
  /** Write buffer of `wfile` in bytes: 0 sends every write at once. */
  wbufsize = 0;
  /** Seconds applied to the connection with `settimeout` in setup; null leaves it blocking. */
  timeout: number | null = null;
  /** Set TCP_NODELAY on the connection in setup (TCP only). */
  disableNagleAlgorithm = false;
  /** The connection (the request). */
  connection!: Socket;
  /** A blocking reader over the connection (made in setup). */
  rfile!: SocketReader;
  /** A blocking writer over the connection (made in setup). */
  wfile!: SocketWriter;

  /** Applies `timeout` and `disableNagleAlgorithm`, makes `rfile` and `wfile`. */
  override setup(): void {
    this.connection = this.request;
    if (this.timeout !== null) this.connection.settimeout(this.timeout);
    if (this.disableNagleAlgorithm) this.connection.setsockopt(IPPROTO_TCP, TCP_NODELAY, true);
    this.rfile = new SocketReader(this.connection, this.rbufsize);
    this.wfile = new SocketWriter(this.connection, this.wbufsize);
  }

  /** Flushes and closes `wfile` (a failed final flush is ignored, as in Python), closes `rfile`. */
  override finish(): void {
    if (this.wfile && !this.wfile.closed) {
      try {
        this.wfile.flush();
      } catch {
        // The peer may be gone; Python ignores a failed final flush too.
      }
    }
    try {
      this.wfile?.close();
    } catch {
      // Already reported by the flush above.
    }
    this.rfile?.close();
  }
}

/**
 * A handler for datagram servers: `rfile` reads the packet, whatever is
 * written to `wfile` is sent back to the client in one datagram by `finish()`
 * (an empty one too, as Python). `socket` is the server's socket.
 */
export class DatagramRequestHandler<S extends ServerLike = ServerLike> extends BaseRequestHandler<[Buffer, Socket], S> {
  /** The received datagram. */
  packet!: Buffer;
  /** The server's socket, for replying. */
  socket!: Socket;
  /** Reads the datagram (then end of stream). */
  rfile!: SocketReader;
  /** Collects the reply; `finish()` sends it in one datagram. */
  wfile!: BytesWriter;

  /** Makes `rfile` over the datagram and an empty `wfile`. */
  override setup(): void {
    [this.packet, this.socket] = this.request;
    let given = false;
    const packet = this.packet;
    this.rfile = new SocketReader({
      recv: () => {
        if (given) return Buffer.alloc(0);
        given = true;
        return packet;
      },
    }, 0);
    this.wfile = new BytesWriter();
  }

  /**
   * Sends what was written to `wfile` to the client, in one datagram.
   * @throws OSError from sendto (EMSGSIZE for a reply too long for one datagram)
   */
  override finish(): void {
    this.socket.sendto(this.wfile.getvalue(), this.clientAddress);
  }
}
