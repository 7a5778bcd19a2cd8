/**
 * ThreadingMixIn and ForkingMixIn, and the concrete Threading* / Forking*
 * servers.
 *
 * JS classes cannot cross into another thread or process, so these servers
 * take a handler *module reference* instead of a class (see `HandlerModule`):
 *
 * ```ts
 * const server = new ThreadingTCPServer(['127.0.0.1', 0], {
 *   module: new URL('./handlers.js', import.meta.url).href,
 *   export: 'EchoHandler',
 * });
 * ```
 *
 * Each request is served by `dist/socketserver/runner.js`, in a new worker
 * thread (threading) or a new `node` child process (forking), which imports
 * the module, constructs the handler with a `RemoteServer` as `server`, and
 * runs it. A stream request's connection is handed over (a worker gets the
 * descriptor, a child gets it as fd 3; the parent keeps no copy); a datagram
 * request's handler gets the packet and a duplicate of the server's socket.
 *
 * A handler's error is reported back over the wake-up channel and given to
 * the server's `handleError(request, clientAddress, err)` when the server
 * next collects (each `serveForever` pass, each request, `serverClose`);
 * `err` is an `Error` rebuilt with the original's name, message, stack,
 * code and errno. For a stream request, `request` is then the parent's
 * (detached) Socket.
 *
 * `serverClose()` waits for running jobs when `blockOnClose` is true (the
 * default), as Python's. `settled()` resolves once every worker thread or
 * child the server started has exited (Node reports exits only while its
 * event loop runs, so await it after `serverClose`).
 */
import { existsSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { SOCK_STREAM, Socket, closeFd, type Address } from '../socket.js';
import { BaseServer, TCPServer, UDPServer, UnixDatagramServer, UnixStreamServer, type HandlerModule, type ServerOptions } from './base.js';
import { deserializeError, type WakeMessage } from './channel.js';
import { CHECK_ARG, CHECK_PREFIX, JOB_ENV, JOB_KEY, type Job } from './job.js';

/**
 * The compiled runner that worker threads and child processes start: beside
 * this file when running from dist/, else (the TypeScript sources, under
 * vitest) in the package's dist/.
 */
export const runnerUrl: URL = pathToFileURL(
  __filename.endsWith('.ts') ? path.resolve(__dirname, '../../dist/socketserver/runner.js') : path.join(__dirname, 'runner.js'),
);

function checkRunner(): void {
  if (!existsSync(fileURLToPath(runnerUrl))) {
    throw new Error(`${fileURLToPath(runnerUrl)} is missing: the threading and forking servers run the compiled library; build it with \`npm run build:ts\``);
  }
}

function checkHandlerModule(h: unknown): { module: string; export: string; data: unknown } {
  if (typeof h === 'function') {
    throw new TypeError('Threading and forking servers take a handler module reference { module, export }, not a class: a class cannot cross into a worker thread or child process');
  }
  const spec = h as HandlerModule | null;
  if (!spec || typeof spec !== 'object' || (typeof spec.module !== 'string' && !(spec.module instanceof URL))) {
    throw new TypeError('handler must be { module: string | URL, export?: string, data?: unknown }');
  }
  let module = String(spec.module);
  if (!/^[a-z][a-z0-9+.-]*:/i.test(module)) {
    if (!path.isAbsolute(module)) throw new TypeError(`handler module must be a URL or an absolute path, not ${module}`);
    module = pathToFileURL(module).href;
  }
  return { module, export: spec.export ?? 'default', data: spec.data ?? null };
}

// How long a handler module may take to load when the server checks it (a module that never finishes fails the check).
const CHECK_TIMEOUT_MS = 30_000;

/**
 * Checks, before the server takes any request, that the handler module
 * resolves, imports and exports the named request handler class: the runner
 * imports it in a short-lived `node` child (`runner.js --check`), with the
 * module resolution its workers or children will have (`execArgv`). A
 * constructor is synchronous and `import()` is not, so the check runs in a
 * process of its own, which is gone when this returns; its cost (one Node
 * start and one import, about 0.1 s) is paid once per server.
 * @throws TypeError `<Server>: <what is wrong>`: cannot be imported, no such
 *   export, not a handler class, or the check did not finish in 30 s.
 */
function checkHandlerLoads(server: string, handler: { module: string; export: string }, execArgv: readonly string[]): void {
  const r = spawnSync(process.execPath, [...execArgv, fileURLToPath(runnerUrl), CHECK_ARG, handler.module, handler.export], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: CHECK_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  });
  const line = (r.stdout ?? '').split('\n').reverse().find((l) => l.startsWith(CHECK_PREFIX));
  if (line !== undefined) {
    const { error } = JSON.parse(line.slice(CHECK_PREFIX.length)) as { error: string | null };
    if (error !== null) throw new TypeError(`${server}: ${error}`);
    return;
  }
  const why = r.error?.message ?? (r.signal ? `killed by ${r.signal}` : `exit ${r.status}`);
  const tail = (r.stderr ?? '').trim().split('\n').slice(-5).join('\n');
  throw new TypeError(`${server}: checking handler module ${handler.module} failed (${why})${tail ? `:\n${tail}` : ''}`);
}

/** The name of an object's class, or of its nearest named base (a server may be an anonymous subclass). */
function className(obj: object): string {
  for (let c = obj.constructor as { name?: string } | null; c; c = Object.getPrototypeOf(c) as { name?: string } | null) {
    if (c.name) return c.name;
  }
  return 'server';
}

/** A running job as the server tracks it. */
interface JobRecord {
  request: unknown;
  clientAddress: Address;
  pid?: number;
}

/** Any TCPServer class (the mixins' base). */
export type TCPServerCtor = abstract new (...args: any[]) => TCPServer<any>;

/** What both mixins add to a server (public part). */
export interface OffloadingServer {
  /** serverClose() waits for running jobs (Python's block_on_close). Default true. */
  blockOnClose: boolean;
  /** How many jobs are running (reported neither done nor exited). */
  readonly activeCount: number;
  /** Resolves once every worker thread / child process this server started has exited. */
  settled(): Promise<void>;
}

/** What ThreadingMixIn adds. */
export interface ThreadingServer extends OffloadingServer {
  /** Workers do not keep the process alive (Python's daemon_threads). Default false. */
  daemonThreads: boolean;
}

/** What ForkingMixIn adds. */
export interface ForkingServer extends OffloadingServer {
  /** At this many running children a new request waits for one to finish. Default 40. */
  maxChildren: number;
  /** The pids of the running children. */
  readonly activeChildren: number[];
}

/** A server class with a mixin's members added. */
export type Mixed<B extends TCPServerCtor, I> = B & (abstract new (...args: any[]) => I);

let jobSeq = 0;

/**
 * The part both mixins share: the table of running jobs, collecting their
 * reports from the wake-up channel, waiting for them on close, `settled()`.
 */
function Offloading<B extends TCPServerCtor>(Base: B) {
  abstract class Offloading extends Base {
    /** serverClose() waits for running jobs (Python's block_on_close). */
    blockOnClose = true;
    protected readonly jobs = new Map<number, JobRecord>();
    private readonly exits = new Set<Promise<void>>();
    protected readonly handler: { module: string; export: string; data: unknown };

    constructor(...args: any[]) {
      super(...args);
      try {
        this.handler = checkHandlerModule(this.RequestHandlerClass);
        checkRunner();
        checkHandlerLoads(className(this), this.handler, this.handlerExecArgv());
      } catch (e) {
        this.serverClose();
        throw e;
      }
    }

    /** How many jobs are running (reported neither done nor exited). */
    get activeCount(): number {
      return this.jobs.size;
    }

    /** Resolves once every worker thread / child process this server started has exited. */
    settled(): Promise<void> {
      return Promise.all([...this.exits]).then(() => undefined);
    }

    protected trackExit(p: Promise<void>): void {
      this.exits.add(p);
      void p.finally(() => this.exits.delete(p));
    }

    protected nextJob(request: unknown, clientAddress: Address): [number, JobRecord] {
      const rec: JobRecord = { request, clientAddress };
      return [++jobSeq, rec];
    }

    protected baseJob(id: number, kind: 'stream' | 'dgram', clientAddress: Address): Omit<Job, 'fd' | 'wakeFd'> {
      return {
        id,
        kind,
        family: this.socket.family,
        type: this.socket.type,
        proto: this.socket.proto,
        clientAddress,
        module: this.handler.module,
        export: this.handler.export,
        data: this.handler.data,
        server: { serverAddress: this.serverAddress, addressFamily: this.addressFamily, socketType: this.socketType },
      };
    }

    protected get isStream(): boolean {
      return this.socketType === SOCK_STREAM;
    }

    protected override onWakeMessage(msg: WakeMessage): void {
      if (msg.t === 'done') {
        this.jobs.delete(msg.id);
      } else if (msg.t === 'error') {
        const rec = this.jobs.get(msg.id);
        if (rec) this.handleError(rec.request, rec.clientAddress, deserializeError(msg.error));
      }
    }

    /** The Node options the handler runs under: a child process gets none (as ForkingMixIn spawns it). */
    protected handlerExecArgv(): readonly string[] {
      return [];
    }

    /** Hook: true when the job's thread / process is known to be gone without a report. */
    protected isGone(_rec: JobRecord): boolean {
      return false;
    }

    /**
     * Reads the jobs' reports; with `block`, first waits up to `wait` seconds
     * for one. Jobs whose process is gone without reporting are dropped.
     */
    protected collect(block = false, wait = 0.1): void {
      // A constructor that failed (address in use) closes the server before
      // this class's fields exist: there is nothing to collect then.
      if (this.wake.closed || this.jobs === undefined) return;
      if (block) this.wake.wait(wait);
      this.drainWake();
      for (const [id, rec] of this.jobs) if (this.isGone(rec)) this.jobs.delete(id);
    }

    override serviceActions(): void {
      super.serviceActions();
      this.collect();
    }

    override handleTimeout(): void {
      super.handleTimeout();
      this.collect();
    }

    protected override collectOnClose(): void {
      super.collectOnClose();
      this.collect();
      while (this.blockOnClose && this.jobs !== undefined && this.jobs.size > 0 && !this.wake.closed) this.collect(true);
    }
  }
  return Offloading;
}

/**
 * Python's ThreadingMixIn: each request is served in a new worker thread.
 * `daemonThreads` (default false): when true, the workers do not keep the
 * process alive (`worker.unref()`). `blockOnClose` (default true):
 * `serverClose()` waits for running workers.
 */
export function ThreadingMixIn<B extends TCPServerCtor>(Base: B): Mixed<B, ThreadingServer> {
  abstract class ThreadingMixIn extends Offloading(Base) {
    /** Workers do not keep the process alive (Python's daemon_threads). */
    daemonThreads = false;

    /**
     * A worker thread inherits the process's Node options (loaders, `--conditions`); the
     * inspector's are the process's own, and would make the check's child contend for its port.
     */
    protected override handlerExecArgv(): readonly string[] {
      const out: string[] = [];
      for (let i = 0; i < process.execArgv.length; i++) {
        const a = process.execArgv[i]!;
        if (!/^--(inspect|debug)/.test(a)) out.push(a);
        else if (/^--(inspect|debug)-port$/.test(a)) i++; // its value is the next argument
      }
      return out;
    }

    override processRequest(request: unknown, clientAddress: Address): void {
      this.collect();
      const [id, rec] = this.nextJob(request, clientAddress);
      const kind = this.isStream ? 'stream' : 'dgram';
      // The worker gets descriptors of its own: the connection itself (the
      // parent's Socket is detached) or a duplicate of the server's socket.
      let fd = -1;
      let wakeFd = -1;
      let packet: Uint8Array | undefined;
      try {
        if (kind === 'stream') {
          fd = (request as Socket).detach();
        } else {
          const [data, sock] = request as [Buffer, Socket];
          packet = new Uint8Array(data);
          fd = Socket.fromFd(sock.fileno(), sock.family, sock.type, sock.proto).detach();
        }
        wakeFd = this.wake.dupWriter();
      } catch (e) {
        if (fd >= 0) closeFd(fd);
        throw e;
      }
      const taken = new Int32Array(new SharedArrayBuffer(4));
      const job: Job = { ...this.baseJob(id, kind, clientAddress), fd, wakeFd, taken, ...(packet ? { packet } : {}) };
      let worker: Worker;
      try {
        worker = new Worker(runnerUrl, { workerData: { [JOB_KEY]: job } });
      } catch (e) {
        closeFd(fd);
        closeFd(wakeFd);
        throw e;
      }
      if (this.daemonThreads) worker.unref();
      this.jobs.set(id, rec);
      this.trackExit(
        new Promise<void>((resolve) => {
          worker.once('error', (err) => {
            if (this.jobs.delete(id)) this.handleError(rec.request, rec.clientAddress, err);
          });
          worker.once('exit', () => {
            // A worker that died before taking its descriptors leaves them to us.
            if (Atomics.load(taken, 0) === 0) {
              for (const d of [fd, wakeFd]) {
                try {
                  closeFd(d);
                } catch {
                  // Already gone.
                }
              }
            }
            this.jobs.delete(id);
            resolve();
          });
        }),
      );
    }
  }
  return ThreadingMixIn;
}

/** True when process `pid` has ended (a zombie waiting for Node to reap it counts as ended). */
function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && existsSync('/proc/self/stat')) return true;
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Python's ForkingMixIn: each request is served in a new child process
 * (`node dist/socketserver/runner.js`; Node cannot fork). `maxChildren`
 * (default 40): at that many running children, a new request waits for one
 * to finish. `blockOnClose` (default true): `serverClose()` waits for running
 * children. `timeout` is 300 s, as Python's.
 */
export function ForkingMixIn<B extends TCPServerCtor>(Base: B): Mixed<B, ForkingServer> {
  abstract class ForkingMixIn extends Offloading(Base) {
    override timeout: number | null = 300;
    /** At this many running children a new request waits for one to finish. */
    maxChildren = 40;

    /** The pids of the running children. */
    get activeChildren(): number[] {
      return [...this.jobs.values()].map((r) => r.pid).filter((p): p is number => p !== undefined);
    }

    protected override isGone(rec: JobRecord): boolean {
      return rec.pid !== undefined && processGone(rec.pid);
    }

    override processRequest(request: unknown, clientAddress: Address): void {
      this.collect();
      while (this.jobs.size >= this.maxChildren && !this.wake.closed) this.collect(true);
      const [id, rec] = this.nextJob(request, clientAddress);
      const kind = this.isStream ? 'stream' : 'dgram';
      const base = this.baseJob(id, kind, clientAddress);
      const job = kind === 'stream' ? base : { ...base, packet: (request as [Buffer, Socket])[0].toString('base64') };
      const fd = kind === 'stream' ? (request as Socket).fileno() : this.socket.fileno();
      // The child receives the descriptors as fds 3 and 4; the parent's own copies stay ours.
      const child: ChildProcess = spawn(process.execPath, [fileURLToPath(runnerUrl)], {
        stdio: ['ignore', 'inherit', 'inherit', fd, this.wake.writerFd()],
        env: { ...process.env, [JOB_ENV]: JSON.stringify(job) },
      });
      rec.pid = child.pid;
      this.jobs.set(id, rec);
      this.trackExit(
        new Promise<void>((resolve) => {
          child.once('error', (err) => {
            if (this.jobs.delete(id)) this.handleError(rec.request, rec.clientAddress, err);
            if (child.pid === undefined) resolve();
          });
          child.once('exit', () => {
            this.jobs.delete(id);
            resolve();
          });
        }),
      );
      if (child.pid === undefined) this.jobs.delete(id);
      this.closeRequest(request);
    }
  }
  return ForkingMixIn;
}

/** The handler argument of the threading and forking servers. */
export type { HandlerModule, ServerOptions };

/** A TCPServer serving each connection in a worker thread. */
export class ThreadingTCPServer extends ThreadingMixIn(TCPServer) {
  /**
   * Binds and activates like the base server, then checks the handler module
   * (it must import and export a request handler class).
   * @param handler the handler module reference
   * @param bindAndActivate false, or ServerOptions
   * @throws TypeError for a class instead of a module reference, a relative path, or a module that
   *   does not load or lacks the handler; OSError from binding (EADDRINUSE, …)
   */
  constructor(serverAddress: Address, handler: HandlerModule, bindAndActivate: boolean | ServerOptions = true) {
    super(serverAddress, handler, bindAndActivate);
  }
}
/** A UDPServer serving each datagram in a worker thread. */
export class ThreadingUDPServer extends ThreadingMixIn(UDPServer) {
  /**
   * Binds and activates like the base server, then checks the handler module
   * (it must import and export a request handler class).
   * @param handler the handler module reference
   * @param bindAndActivate false, or ServerOptions
   * @throws TypeError for a class instead of a module reference, a relative path, or a module that
   *   does not load or lacks the handler; OSError from binding (EADDRINUSE, …)
   */
  constructor(serverAddress: Address, handler: HandlerModule, bindAndActivate: boolean | ServerOptions = true) {
    super(serverAddress, handler, bindAndActivate);
  }
}
/** A UnixStreamServer serving each connection in a worker thread. */
export class ThreadingUnixStreamServer extends ThreadingMixIn(UnixStreamServer) {
  /**
   * Binds and activates like the base server, then checks the handler module
   * (it must import and export a request handler class).
   * @param handler the handler module reference
   * @param bindAndActivate false, or ServerOptions
   * @throws TypeError for a class instead of a module reference, a relative path, or a module that
   *   does not load or lacks the handler; OSError from binding (EADDRINUSE, …)
   */
  constructor(serverAddress: Address, handler: HandlerModule, bindAndActivate: boolean | ServerOptions = true) {
    super(serverAddress, handler, bindAndActivate);
  }
}
/** A UnixDatagramServer serving each datagram in a worker thread. */
export class ThreadingUnixDatagramServer extends ThreadingMixIn(UnixDatagramServer) {
  /**
   * Binds and activates like the base server, then checks the handler module
   * (it must import and export a request handler class).
   * @param handler the handler module reference
   * @param bindAndActivate false, or ServerOptions
   * @throws TypeError for a class instead of a module reference, a relative path, or a module that
   *   does not load or lacks the handler; OSError from binding (EADDRINUSE, …)
   */
  constructor(serverAddress: Address, handler: HandlerModule, bindAndActivate: boolean | ServerOptions = true) {
    super(serverAddress, handler, bindAndActivate);
  }
}
/** A TCPServer serving each connection in a child process. */
export class ForkingTCPServer extends ForkingMixIn(TCPServer) {
  /**
   * Binds and activates like the base server, then checks the handler module
   * (it must import and export a request handler class).
   * @param handler the handler module reference
   * @param bindAndActivate false, or ServerOptions
   * @throws TypeError for a class instead of a module reference, a relative path, or a module that
   *   does not load or lacks the handler; OSError from binding (EADDRINUSE, …)
   */
  constructor(serverAddress: Address, handler: HandlerModule, bindAndActivate: boolean | ServerOptions = true) {
    super(serverAddress, handler, bindAndActivate);
  }
}
/** A UDPServer serving each datagram in a child process. */
export class ForkingUDPServer extends ForkingMixIn(UDPServer) {
  /**
   * Binds and activates like the base server, then checks the handler module
   * (it must import and export a request handler class).
   * @param handler the handler module reference
   * @param bindAndActivate false, or ServerOptions
   * @throws TypeError for a class instead of a module reference, a relative path, or a module that
   *   does not load or lacks the handler; OSError from binding (EADDRINUSE, …)
   */
  constructor(serverAddress: Address, handler: HandlerModule, bindAndActivate: boolean | ServerOptions = true) {
    super(serverAddress, handler, bindAndActivate);
  }
}
/** A UnixStreamServer serving each connection in a child process. */
export class ForkingUnixStreamServer extends ForkingMixIn(UnixStreamServer) {
  /**
   * Binds and activates like the base server, then checks the handler module
   * (it must import and export a request handler class).
   * @param handler the handler module reference
   * @param bindAndActivate false, or ServerOptions
   * @throws TypeError for a class instead of a module reference, a relative path, or a module that
   *   does not load or lacks the handler; OSError from binding (EADDRINUSE, …)
   */
  constructor(serverAddress: Address, handler: HandlerModule, bindAndActivate: boolean | ServerOptions = true) {
    super(serverAddress, handler, bindAndActivate);
  }
}
/** A UnixDatagramServer serving each datagram in a child process. */
export class ForkingUnixDatagramServer extends ForkingMixIn(UnixDatagramServer) {
  /**
   * Binds and activates like the base server, then checks the handler module
   * (it must import and export a request handler class).
   * @param handler the handler module reference
   * @param bindAndActivate false, or ServerOptions
   * @throws TypeError for a class instead of a module reference, a relative path, or a module that
   *   does not load or lacks the handler; OSError from binding (EADDRINUSE, …)
   */
  constructor(serverAddress: Address, handler: HandlerModule, bindAndActivate: boolean | ServerOptions = true) {
    super(serverAddress, handler, bindAndActivate);
  }
}

export { BaseServer };
