/**
 * The synchronous servers: BaseServer, TCPServer, UDPServer,
 * UnixStreamServer, UnixDatagramServer (Python's `socketserver`, on
 * selectors + socket).
 *
 * Methods for the caller: `serveForever(pollInterval)`, `shutdown()`,
 * `handleRequest()`, `serverClose()`, `fileno()`, `shutdownFd()`,
 * `[Symbol.dispose]()`.
 *
 * Methods that may be overridden: `serverBind`, `serverActivate`,
 * `getRequest`, `verifyRequest`, `processRequest`, `finishRequest`,
 * `shutdownRequest`, `closeRequest`, `handleError`, `handleTimeout`,
 * `serviceActions`, `serverClose` (call `super.serverClose()`).
 *
 * `serveForever` and `handleRequest` block the JS thread, as Python's block
 * theirs: run a server in a worker thread or a child process when the thread
 * has other work, or stop it from a handler or hook with `shutdown()`.
 */
import {
  AF_INET, AF_UNIX, SHUT_WR, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR, SO_REUSEPORT,
  Socket, type Address,
} from '../socket.js';
import { DefaultSelector, EVENT_READ } from '../selectors.js';
import { ExitNow, OSError } from '../errors.js';
import { WakeChannel, type WakeMessage } from './channel.js';
import type { BaseRequestHandler, ServerLike } from './handlers.js';

const disposeSymbol: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');

/** A handler class for the synchronous servers: constructed per request, then `run()`. */
export type HandlerClass = new (request: any, clientAddress: Address, server: any) => BaseRequestHandler<any, any>;

/**
 * A handler named by module, for the threading and forking servers (a class
 * cannot cross into a worker thread or a child process).
 *
 * - `module`: the handler module's URL (`new URL('./handlers.js', import.meta.url)`)
 *   or an absolute file path. It must be loadable by plain Node (JavaScript,
 *   not TypeScript) and import this library by its package name or its built
 *   `dist/` files.
 * - `export`: the exported class's name (default `'default'`).
 * - `data`: any JSON-serialisable value, seen by the handler as `this.server.data`.
 */
export interface HandlerModule {
  /** The module's URL (`file:`, `data:`, …) or absolute path; checked by the server's constructor. */
  module: string | URL;
  /** The exported handler class's name (default `'default'`). */
  export?: string;
  /** A JSON-serialisable value; the handler sees it as `this.server.data`. */
  data?: unknown;
}

/** True for an error that must pass through `handleError` (Python's non-Exception BaseExceptions). */
export function isExitNow(err: unknown): boolean {
  return err instanceof ExitNow || (err instanceof Error && err.name === 'ExitNow');
}

/**
 * The frame of every server. Subclasses provide `fileno()` and `getRequest()`.
 * `timeout` (seconds, null: none) bounds `handleRequest()`'s wait.
 */
export abstract class BaseServer<Req = unknown> implements ServerLike {
  /** Seconds `handleRequest()` waits before calling `handleTimeout()`; null waits forever. */
  timeout: number | null = null;
  /** The address given, and after binding the address actually bound. */
  serverAddress: Address;
  /** The handler: a class (synchronous servers) or a module reference (threading / forking). */
  readonly RequestHandlerClass: HandlerClass | HandlerModule;
  private shutdownRequested = false;
  /** @internal The wake-up channel: other threads and processes reach the serving loop through it. */
  protected readonly wake: WakeChannel;

  /**
   * Records the address and handler and opens the wake-up channel (a Unix
   * datagram socketpair); binding is the subclasses' part.
   * @throws OSError when the socketpair cannot be made (EMFILE)
   */
  constructor(serverAddress: Address, RequestHandlerClass: HandlerClass | HandlerModule) {
    this.serverAddress = serverAddress;
    this.RequestHandlerClass = RequestHandlerClass;
    this.wake = new WakeChannel();
  }

  /** The descriptor the serving loop waits on for requests. */
  abstract fileno(): number;

  /** Hook: takes one request off the socket: `[request, clientAddress]`. An OSError skips the request. */
  abstract getRequest(): [Req, Address];

  /** Hook: the socket's own timeout (seconds, null: none), combined with `timeout` by `handleRequest()`. */
  protected listenerTimeout(): number | null {
    return null;
  }

  /**
   * Serves requests until `shutdown()` is asked for, waiting up to
   * `pollInterval` seconds per pass; calls `serviceActions()` after every
   * pass. Blocks the JS thread. Returns after the pass in which shutdown was
   * asked (from a handler, a hook, or another thread / process through
   * `shutdownFd()`).
   */
  serveForever(pollInterval = 0.5): void {
    const selector = new DefaultSelector<'server' | 'wake'>();
    try {
      selector.register(this, EVENT_READ, 'server');
      selector.register(this.wake, EVENT_READ, 'wake');
      while (!this.shutdownRequested) {
        const ready = selector.select(pollInterval);
        let request = false;
        for (const [key] of ready) {
          if (key.data === 'wake') this.drainWake();
          else request = true;
        }
        if (this.shutdownRequested) break;
        if (request) this.handleRequestNoblock();
        this.serviceActions();
      }
    } finally {
      this.shutdownRequested = false;
      selector.close();
    }
  }

  /**
   * Asks `serveForever` to return after its current pass, and returns at
   * once (Python's waits for the loop to end, and deadlocks when called from
   * a handler on the serving thread). Asked before `serveForever` starts,
   * the next `serveForever` returns after one pass at most.
   */
  shutdown(): void {
    this.shutdownRequested = true;
  }

  /**
   * A close-on-exec duplicate of the wake-up channel's writing end; the caller
   * owns it (close it with `closeFd`). Pass it to another thread or process
   * and call `requestShutdown(fd)` there to stop `serveForever`.
   */
  shutdownFd(): number {
    return this.wake.dupWriter();
  }

  /** Hook: called once per `serveForever` pass (the forking and threading servers collect finished jobs here). */
  serviceActions(): void {}

  /** Reads every waiting wake-up message. */
  protected drainWake(): void {
    for (const msg of this.wake.drain()) {
      if (msg.t === 'shutdown') this.shutdownRequested = true;
      else this.onWakeMessage(msg);
    }
  }

  /** Hook for the threading / forking servers: a job finished or reported an error. */
  protected onWakeMessage(_msg: WakeMessage): void {}

  /**
   * Waits for and handles one request, for at most `timeout` seconds (the
   * smaller of `this.timeout` and the socket's timeout); calls
   * `handleTimeout()` when none came.
   */
  handleRequest(): void {
    let timeout = this.listenerTimeout();
    if (timeout === null) timeout = this.timeout;
    else if (this.timeout !== null) timeout = Math.min(timeout, this.timeout);
    const deadline = timeout === null ? null : performance.now() + timeout * 1000;
    const selector = new DefaultSelector<'server' | 'wake'>();
    try {
      selector.register(this, EVENT_READ, 'server');
      // The channel is drained while waiting so that workers finishing now are never held up sending.
      selector.register(this.wake, EVENT_READ, 'wake');
      for (;;) {
        const ready = selector.select(timeout);
        let request = false;
        for (const [key] of ready) {
          if (key.data === 'wake') this.drainWake();
          else request = true;
        }
        if (request) {
          this.handleRequestNoblock();
          return;
        }
        if (deadline !== null) {
          timeout = (deadline - performance.now()) / 1000;
          if (timeout <= 0) {
            this.handleTimeout();
            return;
          }
        }
      }
    } finally {
      selector.close();
    }
  }

  /** Handles one request that is known to be waiting. */
  protected handleRequestNoblock(): void {
    let request: Req;
    let clientAddress: Address;
    try {
      [request, clientAddress] = this.getRequest();
    } catch (e) {
      if (e instanceof OSError) return;
      throw e;
    }
    if (!this.verifyRequest(request, clientAddress)) {
      this.shutdownRequest(request);
      return;
    }
    try {
      this.processRequest(request, clientAddress);
    } catch (err) {
      if (isExitNow(err)) {
        this.shutdownRequest(request);
        throw err;
      }
      this.handleError(request, clientAddress, err);
      this.shutdownRequest(request);
    }
  }

  /** Hook: called when `handleRequest()` waited `timeout` seconds for nothing. */
  handleTimeout(): void {}

  /** Hook: false refuses the request (it is then shut down). */
  verifyRequest(_request: Req, _clientAddress: Address): boolean {
    return true;
  }

  /** Hook: serves the request (here: at once), then shuts it down. The mixins override this. */
  processRequest(request: Req, clientAddress: Address): void {
    this.finishRequest(request, clientAddress);
    this.shutdownRequest(request);
  }

  /** Hook: called by the constructor after binding (TCP: listen). */
  serverActivate(): void {}

  /** Closes the server. Subclasses that override it call `super.serverClose()`. */
  serverClose(): void {
    try {
      this.collectOnClose();
    } finally {
      this.wake.close();
    }
  }

  /** Hook for the mixins: waits for running jobs when the server closes. */
  protected collectOnClose(): void {}

  /** Hook: constructs the handler for the request and runs it. */
  finishRequest(request: Req, clientAddress: Address): void {
    const H = this.RequestHandlerClass;
    if (typeof H !== 'function') {
      throw new TypeError('a handler given as { module, export } needs a Threading* or Forking* server; pass a class here');
    }
    new H(request, clientAddress, this).run();
  }

  /** Hook: ends a request (TCP: shutdown(SHUT_WR), then close). */
  shutdownRequest(request: Req): void {
    this.closeRequest(request);
  }

  /** Hook: releases a request's resources (TCP: closes the connection; UDP: nothing). */
  closeRequest(_request: Req): void {}

  /**
   * Hook: an error thrown while processing a request (`ExitNow` never comes
   * here). The default prints it to stderr; the server keeps serving.
   */
  handleError(_request: Req, clientAddress: Address, err: unknown): void {
    const line = '-'.repeat(40);
    const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
    console.error(`${line}\nException occurred during processing of request from ${JSON.stringify(clientAddress)}\n${text}\n${line}`);
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `<${this.constructor.name} ${JSON.stringify(this.serverAddress)}>`;
  }
}

(BaseServer.prototype as unknown as Record<symbol, unknown>)[disposeSymbol] = function (this: BaseServer) {
  this.serverClose();
};

export interface BaseServer<Req = unknown> {
  /** Closes the server (`serverClose()`), for `using` and try/finally. */
  [Symbol.dispose](): void;
}

/** Settings a server reads while it is constructed; the third constructor argument may set them per instance. */
export interface ServerOptions {
  /** Bind and listen in the constructor (default true). */
  bindAndActivate?: boolean;
  /** AF_INET (default), AF_INET6 or AF_UNIX. */
  addressFamily?: number;
  /** SOCK_STREAM (TCP / Unix stream servers) or SOCK_DGRAM (UDP / Unix datagram servers). */
  socketType?: number;
  /** Set SO_REUSEADDR before binding (default false). */
  allowReuseAddress?: boolean;
  /** Set SO_REUSEPORT before binding (default false). */
  allowReusePort?: boolean;
  /** The listen backlog (default 5, as Python's). */
  requestQueueSize?: number;
}

type Settings = Omit<ServerOptions, 'bindAndActivate'>;

/**
 * A TCP server (and the base of the other socket servers).
 *
 * The attributes read while constructing — `addressFamily`, `socketType`,
 * `allowReuseAddress`, `allowReusePort`, `requestQueueSize` — are static in a
 * subclass (`static override addressFamily = AF_INET6`: a JS instance field
 * would be set only after the base constructor has made the socket) or per
 * instance through the options argument. Reading them on an instance gives
 * the value in force.
 *
 * @example
 * class Echo extends StreamRequestHandler {
 *   override handle() { this.wfile.write(this.rfile.readline()); }
 * }
 * const server = new TCPServer(['127.0.0.1', 0], Echo);
 * try { server.serveForever(); } finally { server.serverClose(); }
 */
export class TCPServer<Req = Socket> extends BaseServer<Req> {
  /** The address family of the class's servers (AF_INET; AF_UNIX for the Unix servers). */
  static addressFamily: number = AF_INET;
  /** The socket type of the class's servers (SOCK_STREAM; SOCK_DGRAM for the datagram servers). */
  static socketType: number = SOCK_STREAM;
  /** The listen backlog of the class's servers (5). */
  static requestQueueSize = 5;
  /** Whether the class's servers set SO_REUSEADDR before binding (false). */
  static allowReuseAddress = false;
  /** Whether the class's servers set SO_REUSEPORT before binding (false). */
  static allowReusePort = false;

  private settings: Settings = {};
  /** The listening (or, for datagram servers, receiving) socket. */
  socket!: Socket;

  /**
   * Creates the socket, binds it to `serverAddress` and listens, unless
   * `bindAndActivate` is false. On any failure the socket is closed and the
   * error thrown (OSError EADDRINUSE, RangeError for a bad port, …).
   */
  constructor(serverAddress: Address, RequestHandlerClass: HandlerClass | HandlerModule, bindAndActivate: boolean | ServerOptions = true) {
    super(serverAddress, RequestHandlerClass);
    const opts: ServerOptions = typeof bindAndActivate === 'object' ? bindAndActivate : { bindAndActivate };
    const { bindAndActivate: activate = true, ...settings } = opts;
    for (const [k, v] of Object.entries(settings)) if (v !== undefined) (this.settings as Record<string, unknown>)[k] = v;
    try {
      this.socket = new Socket(this.addressFamily, this.socketType);
      if (activate) {
        this.serverBind();
        this.serverActivate();
      }
    } catch (e) {
      this.serverClose();
      throw e;
    }
  }

  private setting<K extends keyof Settings>(k: K): NonNullable<Settings[K]> {
    return (this.settings[k] ?? (this.constructor as unknown as Record<K, Settings[K]>)[k]) as NonNullable<Settings[K]>;
  }

  /** The socket's address family: the option given, else the class's static. Setting it after construction changes nothing made. */
  get addressFamily(): number {
    return this.setting('addressFamily');
  }
  /** Sets it for this instance; the socket is made by the constructor: too late to matter. */
  set addressFamily(v: number) {
    this.settings.addressFamily = v;
  }
  /** The socket type: the option given, else the class's static. */
  get socketType(): number {
    return this.setting('socketType');
  }
  /** Sets it for this instance; the socket is made by the constructor: too late to matter. */
  set socketType(v: number) {
    this.settings.socketType = v;
  }
  /** Whether `serverBind()` sets SO_REUSEADDR: the option given, else the class's static. */
  get allowReuseAddress(): boolean {
    return this.setting('allowReuseAddress');
  }
  /** Sets it for this instance; read by `serverBind()` (construct with `bindAndActivate: false` to set it first). */
  set allowReuseAddress(v: boolean) {
    this.settings.allowReuseAddress = v;
  }
  /** Whether `serverBind()` sets SO_REUSEPORT: the option given, else the class's static. */
  get allowReusePort(): boolean {
    return this.setting('allowReusePort');
  }
  /** Sets it for this instance; read by `serverBind()` (construct with `bindAndActivate: false` to set it first). */
  set allowReusePort(v: boolean) {
    this.settings.allowReusePort = v;
  }
  /** The backlog `serverActivate()` listens with: the option given, else the class's static. */
  get requestQueueSize(): number {
    return this.setting('requestQueueSize');
  }
  /** Sets it for this instance; read by `serverActivate()` (construct with `bindAndActivate: false` to set it first). */
  set requestQueueSize(v: number) {
    this.settings.requestQueueSize = v;
  }

  /** Hook: sets the reuse options, binds, and records the bound address in `serverAddress`. */
  serverBind(): void {
    if (this.allowReuseAddress) this.socket.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    if (this.allowReusePort && SO_REUSEPORT !== 0) this.socket.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
    this.socket.bind(this.serverAddress);
    this.serverAddress = this.socket.getsockname();
  }

  /** Hook: listens with `requestQueueSize`. */
  override serverActivate(): void {
    this.socket.listen(this.requestQueueSize);
  }

  /** Closes the socket (its `fileno()` becomes -1) and the wake-up channel. */
  override serverClose(): void {
    try {
      this.socket?.close();
    } finally {
      super.serverClose();
    }
  }

  /** The server socket's descriptor (-1 after `serverClose()`). */
  fileno(): number {
    return this.socket.fileno();
  }

  protected override listenerTimeout(): number | null {
    return this.socket.gettimeout();
  }

  /** Accepts a connection: `[connection, clientAddress]`. */
  getRequest(): [Req, Address] {
    return this.socket.accept() as unknown as [Req, Address];
  }

  /** Shuts the connection's writing side (errors ignored), then closes it. */
  override shutdownRequest(request: Req): void {
    try {
      (request as unknown as Socket).shutdown(SHUT_WR);
    } catch (e) {
      if (!(e instanceof OSError)) throw e;
    }
    this.closeRequest(request);
  }

  /** Closes the connection. */
  override closeRequest(request: Req): void {
    (request as unknown as Socket).close();
  }
}

/**
 * A UDP server: each datagram is a request `[data, serverSocket]`; nothing
 * is closed per request. `maxPacketSize` bounds a datagram (8192).
 */
export class UDPServer extends TCPServer<[Buffer, Socket]> {
  static override socketType: number = SOCK_DGRAM;
  static override allowReuseAddress = false;
  /** The largest datagram read (bytes); a longer one is cut, as recvfrom does. */
  maxPacketSize = 8192;

  /** Receives one datagram: `[[data, socket], clientAddress]`. */
  override getRequest(): [[Buffer, Socket], Address] {
    const [data, addr] = this.socket.recvfrom(this.maxPacketSize);
    return [[data, this.socket], addr ?? ''];
  }

  /** Nothing to activate for a datagram socket. */
  override serverActivate(): void {}

  /** Nothing to shut down: the server's socket serves every datagram. */
  override shutdownRequest(request: [Buffer, Socket]): void {
    this.closeRequest(request);
  }

  /** Nothing to close per datagram. */
  override closeRequest(_request: [Buffer, Socket]): void {}
}

/** A TCPServer on a Unix stream socket; the address is a path. */
export class UnixStreamServer extends TCPServer {
  static override addressFamily: number = AF_UNIX;
}

/** A UDPServer on a Unix datagram socket; the address is a path. */
export class UnixDatagramServer extends UDPServer {
  static override addressFamily: number = AF_UNIX;
}
