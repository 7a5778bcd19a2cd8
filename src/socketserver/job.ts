/**
 * What a worker thread or child process is told about its one request, and
 * the code both run to serve it. Used by runner.ts (the entry file) and by
 * the mixins (which build jobs).
 *
 * Ownership: the job's descriptors belong to the receiver, which closes them
 * when done. A worker thread receives the numbers of descriptors duplicated
 * for it and raises `taken[0]` once it has wrapped them (until then the
 * parent closes them if the worker dies); a child process receives them as
 * its fds 3 (the request's socket) and 4 (the wake-up channel).
 */
import { AF_UNIX, SHUT_WR, SOCK_DGRAM, Socket, type Address } from '../socket.js';
import { sendWake, serializeError } from './channel.js';
import type { ServerLike } from './handlers.js';
import { isExitNow } from './base.js';

/** The job as it crosses into a worker (structured clone) or a child (JSON). */
export interface Job {
  /** The job's number, unique within the process; reports name it. */
  id: number;
  /** 'stream': fd is the connection; 'dgram': fd is (a copy of) the server's socket and `packet` the datagram. */
  kind: 'stream' | 'dgram';
  /** The request's descriptor (a child receives it as fd 3). */
  fd: number;
  /** The wake-up channel's writing end, for reports (a child receives it as fd 4). */
  wakeFd: number;
  /** The request socket's address family. */
  family: number;
  /** The request socket's type. */
  type: number;
  /** The request socket's protocol. */
  proto: number;
  /** The client's address. */
  clientAddress: Address;
  /** The datagram (a Uint8Array for a worker, base64 for a child). */
  packet?: Uint8Array | string;
  /** The handler module's URL. */
  module: string;
  /** The handler class's export name. */
  export: string;
  /** The handler reference's `data`. */
  data: unknown;
  /** What the handler's RemoteServer reports. */
  server: {
    /** The server's bound address. */
    serverAddress: Address;
    /** The server's address family. */
    addressFamily: number;
    /** The server's socket type. */
    socketType: number;
  };
  /** Worker threads only: set to 1 once the worker owns the descriptors. */
  taken?: Int32Array;
}

/** The argument that makes the runner check a handler module instead of serving: `runner.js --check URL EXPORT`. */
export const CHECK_ARG = '--check';
/** The runner's check verdict, on the last line of its stdout: this prefix, then `{ "error": string | null }`. */
export const CHECK_PREFIX = 'asyncore-native-handler-check: ';

/** A request handler class as the runner constructs it. */
export type RemoteHandlerClass = new (request: unknown, clientAddress: Address, server: ServerLike) => { run(): void };

/**
 * Imports a handler module and returns its named export, checked to be a
 * request handler class (a function whose prototype has `run()`).
 * @throws TypeError naming the module and what is wrong: it cannot be
 *   imported (the import's error is the `cause`), it has no such export, or
 *   the export is not a handler class.
 */
export async function loadHandler(module: string, name: string): Promise<RemoteHandlerClass> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(module)) as Record<string, unknown>;
  } catch (err) {
    throw new TypeError(`handler module ${module} cannot be imported: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  const H = mod[name];
  if (typeof H !== 'function') {
    const names = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
    throw new TypeError(`${module} has no class export '${name}' (its class exports: ${names.join(', ') || 'none'})`);
  }
  if (typeof (H.prototype as { run?: unknown } | undefined)?.run !== 'function') {
    throw new TypeError(`'${name}' of ${module} is not a request handler class (it has no run()): extend BaseRequestHandler, StreamRequestHandler or DatagramRequestHandler`);
  }
  return H as RemoteHandlerClass;
}

/** The env variable a child process finds its job in. */
export const JOB_ENV = 'ASYNCORE_NATIVE_SOCKETSERVER_JOB';
/** The workerData key a worker thread finds its job under. */
export const JOB_KEY = 'asyncoreNativeSocketserverJob';

/**
 * `this.server` for a handler running in a worker thread or a child process:
 * the server's address, family and socket type, the `data` of the handler
 * reference, and a `shutdown()` that reaches the serving loop through the
 * wake-up channel.
 */
export class RemoteServer implements ServerLike {
  /** The server's bound address. */
  serverAddress: Address;
  /** The server's address family (AF_INET, AF_INET6, AF_UNIX). */
  readonly addressFamily: number;
  /** The server's socket type (SOCK_STREAM, SOCK_DGRAM). */
  readonly socketType: number;
  /** The `data` of the server's handler reference (a JSON copy). */
  readonly data: unknown;

  /** Made by the runner for each job; `wake` is the job's end of the wake-up channel. */
  constructor(job: Job, private readonly wake: Socket) {
    this.serverAddress = job.server.serverAddress;
    this.addressFamily = job.server.addressFamily;
    this.socketType = job.server.socketType;
    this.data = job.data;
  }

  /** Asks the server's `serveForever` to return after its current pass; returns at once. */
  shutdown(): void {
    if (!this.wake.closed) sendWake(this.wake, { t: 'shutdown' });
  }
}

// How long a finished job waits for room on the channel before it drops its message.
const SEND_TIMEOUT = 10;

/** Serves one request: wraps the descriptors, imports the handler, runs it, reports, closes. */
export async function runJob(job: Job): Promise<void> {
  const wake = new Socket(AF_UNIX, SOCK_DGRAM, 0, job.wakeFd);
  const sock = new Socket(job.family, job.type, job.proto, job.fd);
  if (job.taken) Atomics.store(job.taken, 0, 1);
  try {
    wake.settimeout(SEND_TIMEOUT);
    try {
      const H = await loadHandler(job.module, job.export);
      const request =
        job.kind === 'stream'
          ? sock
          : [typeof job.packet === 'string' ? Buffer.from(job.packet, 'base64') : Buffer.from(job.packet ?? new Uint8Array(0)), sock];
      const handler = new H(request, job.clientAddress, new RemoteServer(job, wake));
      handler.run();
    } catch (err) {
      if (!isExitNow(err)) {
        if (!sendWake(wake, { t: 'error', id: job.id, error: serializeError(err) })) console.error(err);
      }
    } finally {
      if (job.kind === 'stream') {
        try {
          sock.shutdown(SHUT_WR);
        } catch {
          // The peer may already be gone, as the parent's shutdownRequest allows.
        }
      }
      sock.close();
    }
  } finally {
    sendWake(wake, { t: 'done', id: job.id });
    wake.close();
  }
}
