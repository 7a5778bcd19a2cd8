/**
 * What every CLI server shares: a listening dispatcher on an endpoint, a
 * private channel map, the asyncore loop run with `loopAsync` (inside Node's
 * event loop, so signals, timers and DNS answers are served), and a clean stop.
 *
 * Servers can be driven in-process (tests do): construct, `await listen()`,
 * then `run()`; `close()` closes the listener and every connection, which
 * makes `run()` resolve.
 */
import { unlinkSync } from 'node:fs';
import * as C from '../constants.js';
import { OSError, errno as E } from '../errors.js';
import { Socket, type Address } from '../socket.js';
import { Dispatcher } from '../asyncore/dispatcher.js';
import { ChannelMap, notifyMap } from '../asyncore/map.js';
import { closeAll } from '../asyncore/loop.js';
import { loopAsync } from '../asyncore/async.js';
import { defaultResolver, formatAddress, resolveEndpoint, type Endpoint, type Resolver } from './address.js';
import { Logger } from './log.js';

/** How long the listener stops accepting after an accept error (EMFILE …): short enough to recover quickly, long enough not to spin. */
const ACCEPT_PAUSE_MS = 100;

export type BackendName = 'select' | 'poll' | 'epoll';

export interface ServerOptions {
  /** Connection logging (default: a quiet logger to stderr). */
  logger?: Logger;
  /** Resolves host names without blocking (default node:dns lookup). */
  resolver?: Resolver;
  /** The map to serve (default: a fresh one per server). */
  map?: ChannelMap;
}

/** The listening socket: hands each accepted connection to its server. */
class Listener extends Dispatcher {
  constructor(
    private readonly server: Server,
    family: number,
    map: ChannelMap,
  ) {
    super(null, map);
    this.createSocket(family, C.SOCK_STREAM);
  }

  override handleAccept(): void {
    // Several per event: a burst of connects costs one pass, not one each.
    for (let i = 0; i < 16; i++) {
      const pair = this.accept();
      if (pair === null) return;
      this.server.accepted(pair[0], pair[1]);
    }
  }

  /** readable() reads the accept pause, which announces its end. */
  static override reportsInterest = true;

  private resumeTimer: NodeJS.Timeout | null = null;

  override readable(): boolean {
    return this.resumeTimer === null;
  }

  override handleError(err: unknown): void {
    // EMFILE / ENFILE / ENOBUFS: the pending connection stays queued and the
    // listener stays readable, so accepting again at once would spin. Keep
    // listening, but pause accepting for a moment (and log once per pause).
    this.server.logger.error(`accept: ${err instanceof Error ? err.message : String(err)}; pausing accepts for ${ACCEPT_PAUSE_MS} ms`);
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = null;
      this.interestChanged();
    }, ACCEPT_PAUSE_MS);
  }

  override close(): void {
    if (this.resumeTimer !== null) clearTimeout(this.resumeTimer);
    this.resumeTimer = null;
    super.close();
  }

  override handleClose(): void {
    this.close();
  }
}

export abstract class Server {
  readonly map: ChannelMap;
  readonly logger: Logger;
  readonly resolver: Resolver;
  /** The address actually bound, as `HOST:PORT`, `[V6]:PORT` or `unix:PATH` ('' before listen). */
  address = '';
  /** The backend `run()` uses; select refuses descriptors >= FD_SETSIZE. */
  backend: BackendName = C.HAVE_EPOLL ? 'epoll' : 'poll';
  private listener: Listener | null = null;
  private unixPath: string | null = null;
  private stopped = false;

  constructor(options: ServerOptions = {}) {
    this.map = options.map ?? new ChannelMap();
    this.logger = options.logger ?? new Logger(false);
    this.resolver = options.resolver ?? defaultResolver;
  }

  /**
   * Binds and listens on `endpoint` (a host name is resolved first; the first
   * address is used). Returns the bound address as text. Throws OSError
   * (EADDRINUSE, EACCES, …) or the resolver's error.
   */
  async listen(endpoint: Endpoint, backlog = 511): Promise<string> {
    const [target] = await resolveEndpoint(endpoint, this.resolver);
    const l = new Listener(this, target!.family, this.map);
    try {
      if (target!.family !== C.AF_UNIX) l.setReuseAddr();
      l.bind(target!.address);
      if (target!.family === C.AF_UNIX) this.unixPath = target!.address as string;
      l.listen(backlog);
    } catch (err) {
      l.close();
      throw err;
    }
    this.listener = l;
    const sock = l.socket as Socket;
    this.address = formatAddress(sock.family, sock.getsockname());
    return this.address;
  }

  /** Called for each accepted connection. */
  abstract handleConnection(sock: Socket, peer: string): void;

  /** @internal The listener's entry point: refuses what the backend cannot watch. */
  accepted(sock: Socket, addr: Address): void {
    if (this.stopped) {
      sock.close();
      return;
    }
    const peer = formatAddress(sock.family, addr);
    if (!this.admitFd(sock.fileno())) {
      this.logger.error(`refusing ${peer}: descriptor ${sock.fileno()} is too high for select (FD_SETSIZE ${C.FD_SETSIZE}); use --backend poll or epoll`);
      sock.close();
      return;
    }
    this.handleConnection(sock, peer);
  }

  /** Whether the backend can watch descriptor `fd`. */
  admitFd(fd: number): boolean {
    return this.backend !== 'select' || fd < C.FD_SETSIZE;
  }

  /** The errno to fail an upstream connect with when its descriptor cannot be watched (0: fine). */
  admitErrno = (end: { fileno(): number | null }): number => (this.admitFd(end.fileno() ?? 0) ? 0 : E.EMFILE!);

  /**
   * Runs the asyncore loop inside Node's event loop until `close()` (or the
   * signal aborts, which also closes). `backend`: select, poll or epoll.
   */
  async run(options: { backend?: BackendName; signal?: AbortSignal } = {}): Promise<void> {
    if (options.backend !== undefined) this.backend = options.backend;
    const signal = options.signal;
    const onAbort = () => this.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) return this.close();
      await loopAsync({ map: this.map, backend: this.backend, timeout: null });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Stops: closes the listener and every connection (run() then resolves); removes a Unix socket file. */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.onStop();
    closeAll(this.map, true);
    this.listener = null;
    if (this.unixPath !== null && !this.unixPath.startsWith('\0')) {
      try {
        unlinkSync(this.unixPath);
      } catch {
        /* already gone */
      }
      this.unixPath = null;
    }
  }

  /** True once close() ran. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** A hook for subclasses: cancel what is pending (lookups, connects) before the channels close. */
  protected onStop(): void {}
}

/** A short text for an errno or an error, for log lines. */
export function describeError(err: unknown): string {
  if (typeof err === 'number') return new OSError(err).code;
  if (err instanceof OSError) return err.code;
  if (err instanceof Error) return (err as { code?: string }).code ?? err.message;
  return String(err);
}
