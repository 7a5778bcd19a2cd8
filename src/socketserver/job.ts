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
  id: number;
  /** 'stream': fd is the connection; 'dgram': fd is (a copy of) the server's socket and `packet` the datagram. */
  kind: 'stream' | 'dgram';
  fd: number;
  wakeFd: number;
  family: number;
  type: number;
  proto: number;
  clientAddress: Address;
  /** The datagram (a Uint8Array for a worker, base64 for a child). */
  packet?: Uint8Array | string;
  module: string;
  export: string;
  data: unknown;
  server: { serverAddress: Address; addressFamily: number; socketType: number };
  /** Worker threads only: set to 1 once the worker owns the descriptors. */
  taken?: Int32Array;
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
  serverAddress: Address;
  readonly addressFamily: number;
  readonly socketType: number;
  readonly data: unknown;

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
      const mod = (await import(job.module)) as Record<string, unknown>;
      const H = mod[job.export];
      if (typeof H !== 'function') throw new TypeError(`${job.module} has no class export '${job.export}'`);
      const request =
        job.kind === 'stream'
          ? sock
          : [typeof job.packet === 'string' ? Buffer.from(job.packet, 'base64') : Buffer.from(job.packet ?? new Uint8Array(0)), sock];
      const handler = new (H as new (r: unknown, a: Address, s: ServerLike) => { run(): void })(request, job.clientAddress, new RemoteServer(job, wake));
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
