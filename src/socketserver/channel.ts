/**
 * The wake-up channel of a server: a Unix datagram socketpair whose reading
 * end sits in the serving loop's selector. Whoever cannot touch the server
 * object (a worker thread, a child process, another thread holding a dup of
 * the writing end) reaches the loop by sending one small JSON datagram:
 * a request to stop, a finished job, or a handler's error.
 *
 * Datagrams keep message boundaries with many writers, so no framing is
 * needed; each writer owns its own duplicate of the writing end.
 */
import { AF_UNIX, SOCK_DGRAM, Socket, socketpair } from '../socket.js';
import { OSError, errno as E } from '../errors.js';
import { select } from '../select.js';

/** An error as it travels from a worker or child to the server. */
export interface SerializedError {
  /** The error's `name` ('TypeError', 'OSError', …). */
  name: string;
  /** The error's `message`. */
  message: string;
  /** The error's `stack`, cut to 16 000 characters. */
  stack?: string;
  /** The error's `code`, when a string or number. */
  code?: unknown;
  /** The error's `errno`, when a number. */
  errno?: unknown;
}

/** What travels on the channel, one JSON datagram each. */
export type WakeMessage =
  | {
      /** 'shutdown': stop `serveForever` after its current pass. */
      t: 'shutdown';
    }
  | {
      /** 'done': the job finished (its descriptors are closed). */
      t: 'done';
      /** The job's id. */
      id: number;
    }
  | {
      /** 'error': the job's handler threw. */
      t: 'error';
      /** The job's id. */
      id: number;
      /** What it threw. */
      error: SerializedError;
    };

// A stack longer than this is cut, so that one datagram always fits the
// socket's send buffer (212 992 bytes by default on Linux).
const MAX_STACK = 16_000;

/** Turns anything thrown into the plain shape that crosses threads and processes. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const out: SerializedError = { name: err.name, message: err.message };
    if (err.stack) out.stack = err.stack.slice(0, MAX_STACK);
    const extra = err as { code?: unknown; errno?: unknown };
    if (typeof extra.code === 'string' || typeof extra.code === 'number') out.code = extra.code;
    if (typeof extra.errno === 'number') out.errno = extra.errno;
    return out;
  }
  return { name: 'Error', message: String(err) };
}

/** The receiving side's copy of a serialized error: an `Error` with the same name, message, stack, code, errno. */
export function deserializeError(s: SerializedError): Error {
  const err = new Error(s.message) as Error & { code?: unknown; errno?: unknown };
  err.name = s.name;
  if (s.stack) err.stack = s.stack;
  if (s.code !== undefined) err.code = s.code;
  if (s.errno !== undefined) err.errno = s.errno;
  return err;
}

/** Sends one message; a channel whose reader is gone (ECONNREFUSED, EPIPE) or full past the timeout drops it. */
export function sendWake(sock: Socket, msg: WakeMessage): boolean {
  try {
    sock.send(JSON.stringify(msg));
    return true;
  } catch (e) {
    if (e instanceof OSError) return false;
    throw e;
  }
}

/**
 * Asks the server whose wake-up channel `fd` writes to (see
 * `BaseServer#shutdownFd()`) to leave `serveForever` after its current pass.
 * Usable from any thread or process that holds such a descriptor; returns at
 * once, and false when the server is already closed. Does not close `fd`.
 */
export function requestShutdown(fd: number): boolean {
  const s = new Socket(AF_UNIX, SOCK_DGRAM, 0, fd);
  try {
    s.settimeout(5);
    return sendWake(s, { t: 'shutdown' });
  } finally {
    s.detach();
  }
}

/** The server's end of the channel. */
export class WakeChannel {
  private readonly reader: Socket;
  private readonly writer: Socket;

  constructor() {
    const [r, w] = socketpair(AF_UNIX, SOCK_DGRAM);
    r.setblocking(false);
    this.reader = r;
    this.writer = w;
  }

  /** The reading end, for a selector. */
  fileno(): number {
    return this.reader.fileno();
  }

  /** The writing end's descriptor (owned by the channel): for handing to a child process's stdio. */
  writerFd(): number {
    return this.writer.fileno();
  }

  /** A close-on-exec duplicate of the writing end; the caller owns it. */
  dupWriter(): number {
    return Socket.fromFd(this.writer.fileno(), AF_UNIX, SOCK_DGRAM).detach();
  }

  /** Every message waiting now (never blocks). Malformed datagrams are skipped. */
  drain(): WakeMessage[] {
    const out: WakeMessage[] = [];
    if (this.reader.closed) return out;
    for (;;) {
      let data: Buffer;
      try {
        data = this.reader.recv(65536);
      } catch (e) {
        if (e instanceof OSError && (e.errno === E.EAGAIN || e.errno === E.EWOULDBLOCK)) return out;
        throw e;
      }
      if (data.length === 0) continue;
      try {
        const msg = JSON.parse(data.toString('utf8')) as WakeMessage;
        if (msg && typeof msg === 'object' && typeof msg.t === 'string') out.push(msg);
      } catch {
        // A stray datagram from someone else holding the writer: not ours to interpret.
      }
    }
  }

  /** Waits up to `timeout` seconds for a message to arrive; true when one is waiting. */
  wait(timeout: number): boolean {
    if (this.reader.closed) return false;
    return select([this.reader], [], [], timeout)[0].length > 0;
  }

  get closed(): boolean {
    return this.reader.closed;
  }

  close(): void {
    this.reader.close();
    this.writer.close();
  }
}
