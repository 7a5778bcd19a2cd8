/**
 * Conformance with CPython 3.11's asyncore helpers and small classes: the
 * read / write / exception / readwrite dispatch functions, closeAll,
 * compactTraceback, Dispatcher's defaults and logging, DispatcherWithSend,
 * FileWrapper and FileDispatcher (on a pipe and on a regular file, under each
 * backend), and the closing paths.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, constants as fsc } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { capturedLines } from './helpers/capture.js';
import {
  ChannelMap,
  Dispatcher,
  DispatcherWithSend,
  ExitNow,
  FileDispatcher,
  FileWrapper,
  closeAll,
  compactTraceback,
  errnoText,
  exception,
  loop,
  poll,
  read,
  readwrite,
  socketMap,
  write,
  type Channel,
} from '../src/asyncore/index.js';
import { OSError, errno as E, strerror } from '../src/errors.js';
import { native } from '../src/native.js';
import { POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI } from '../src/constants.js';
import { AF_INET, SOCK_STREAM, Socket, closeFd, pipe, socketpair } from '../src/socket.js';

trackFds();

const backends = ['select', 'poll', 'epoll'] as const;

const dir = mkdtempSync(path.join(tmpdir(), 'an-helpers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Every test leaves the default map empty, whatever it put there.
afterEach(() => closeAll(socketMap, true));

/** A channel shape whose every event handler throws ExitNow. */
function exitingChannel(): Channel {
  const exit = () => {
    throw new ExitNow();
  };
  return {
    fileno: () => 42,
    readable: () => true,
    writable: () => true,
    handleReadEvent: exit,
    handleWriteEvent: exit,
    handleExptEvent: exit,
    handleClose: exit,
    handleError: () => {
      throw new Error('handleError must not see ExitNow');
    },
  };
}

/** A channel shape whose every event handler throws a plain Error; records handleError. */
function crashingChannel(): Channel & { errors: unknown[] } {
  const crash = () => {
    throw new Error('crash');
  };
  const errors: unknown[] = [];
  return {
    errors,
    fileno: () => 43,
    readable: () => true,
    writable: () => true,
    handleReadEvent: crash,
    handleWriteEvent: crash,
    handleExptEvent: crash,
    handleClose: crash,
    handleError: (err: unknown) => {
      errors.push(err);
    },
  };
}

/** A channel shape that records which of its entry points ran. */
function recordingChannel() {
  const seen = { read: false, write: false, expt: false, closed: false, errorHandled: false };
  const ch: Channel = {
    fileno: () => 44,
    readable: () => true,
    writable: () => true,
    handleReadEvent: () => void (seen.read = true),
    handleWriteEvent: () => void (seen.write = true),
    handleExptEvent: () => void (seen.expt = true),
    handleClose: () => void (seen.closed = true),
    handleError: () => void (seen.errorHandled = true),
  };
  return { ch, seen };
}

describe('helper functions', () => {
  it.each([
    ['read', read],
    ['write', write],
    ['exception', exception],
  ] as const)('%s: ExitNow from the handler passes through', (_name, fn) => {
    expect(() => fn(exitingChannel())).toThrow(ExitNow);
  });

  it.each([
    ['read', read],
    ['write', write],
    ['exception', exception],
  ] as const)('%s: any other error from the handler reaches handleError', (_name, fn) => {
    const ch = crashingChannel();
    fn(ch);
    expect(ch.errors).toHaveLength(1);
    expect((ch.errors[0] as Error).message).toBe('crash');
  });

  const flagCases = [
    ['POLLIN', POLLIN, 'read'],
    ['POLLPRI', POLLPRI, 'expt'],
    ['POLLOUT', POLLOUT, 'write'],
    ['POLLERR', POLLERR, 'closed'],
    ['POLLHUP', POLLHUP, 'closed'],
    ['POLLNVAL', POLLNVAL, 'closed'],
  ] as const;

  it.each(flagCases)('readwrite %s calls exactly the %s entry point', (_name, flag, expected) => {
    const { ch, seen } = recordingChannel();
    readwrite(ch, flag);
    for (const [k, v] of Object.entries(seen)) expect(v, k).toBe(k === expected);
  });

  it.each(flagCases)('readwrite %s: ExitNow passes through', (_name, flag) => {
    expect(() => readwrite(exitingChannel(), flag)).toThrow(ExitNow);
  });

  it.each(flagCases)('readwrite %s: another error reaches handleError', (_name, flag) => {
    const ch = crashingChannel();
    expect(ch.errors).toHaveLength(0);
    readwrite(ch, flag);
    expect(ch.errors).toHaveLength(1);
  });

  /** A stand-in channel over a fake socket that only records close(). */
  function dummyChannels(n: number) {
    return Array.from({ length: n }, (_, i) => {
      const sock = { closed: false, close: () => void (sock.closed = true), fileno: () => 1000 + i };
      return { sock, close: () => sock.close() };
    });
  }

  it('closeAll(map) closes every channel of the given map and empties it', () => {
    const chans = dummyChannels(10);
    const map = new Map<number, Channel>();
    chans.forEach((c, i) => map.set(i, c as unknown as Channel));
    for (const c of chans) expect(c.sock.closed).toBe(false);
    closeAll(map);
    expect(map.size).toBe(0);
    for (const c of chans) expect(c.sock.closed).toBe(true);
  });

  it('closeAll() with no map closes and empties the default socketMap', () => {
    expect(socketMap.size).toBe(0);
    const chans = dummyChannels(10);
    chans.forEach((c, i) => socketMap.set(1000 + i, c as unknown as Channel));
    closeAll();
    expect(socketMap.size).toBe(0);
    for (const c of chans) expect(c.sock.closed).toBe(true);
  });

  it('closeAll ignores EBADF, rethrows other errors unless ignoreAll, and always rethrows ExitNow', () => {
    const failing = (err: unknown) => ({ close: () => { throw err; } }) as unknown as Channel;
    const m1 = new Map<number, Channel>([[1, failing(new OSError(E.EBADF!, 'close'))]]);
    closeAll(m1);
    expect(m1.size).toBe(0);
    const m2 = new Map<number, Channel>([[1, failing(new OSError(E.EIO!, 'close'))]]);
    expect(() => closeAll(m2)).toThrow(OSError);
    const m3 = new Map<number, Channel>([[1, failing(new Error('boom'))]]);
    closeAll(m3, true);
    expect(m3.size).toBe(0);
    const m4 = new Map<number, Channel>([[1, failing(new ExitNow())]]);
    expect(() => closeAll(m4, true)).toThrow(ExitNow);
  });

  // The throwing function sits on one line so its line number is easy to find.
  function spamHater(): never { throw new TypeError("I don't like spam!"); } // MARK:throw-line
  function callsSpamHater(): never { return spamHater(); } // MARK:outer-line

  it('compactTraceback: [[file, function, line], type, error, info] with the innermost frame first', () => {
    let err: unknown;
    try {
      callsSpamHater();
    } catch (e) {
      err = e;
    }
    const [[file, fn, line], type, value, info] = compactTraceback(err);
    const here = fileURLPath();
    const src = readFileSync(here, 'utf8').split('\n');
    const throwLine = String(src.findIndex((l) => l.includes('MARK:throw-line')) + 1);
    const outerLine = String(src.findIndex((l) => l.includes('MARK:outer-line')) + 1);
    expect(path.basename(file)).toBe('asyncore-helpers.test.ts');
    expect(fn).toBe('spamHater');
    expect(line).toBe(throwLine);
    expect(type).toBe('TypeError');
    expect(value).toBe(err);
    expect(value.message).toBe("I don't like spam!");
    // info: every frame, outermost first, so the throwing frame closes the list.
    const inner = `[${file}|spamHater|${throwLine}]`;
    const outer = `[${file}|callsSpamHater|${outerLine}]`;
    expect(info.endsWith(inner)).toBe(true);
    expect(info.indexOf(outer)).toBeGreaterThanOrEqual(0);
    expect(info.indexOf(outer)).toBeLessThan(info.indexOf(inner));
    expect(info).toMatch(/^(\[[^|\]]+\|[^|\]]+\|\d+\])( \[[^|\]]+\|[^|\]]+\|\d+\])*$/);
  });

  it('compactTraceback(err) returns the exception object itself as its value, as Python returns the exception instance', () => {
    class Spam extends Error {
      readonly extra = 42;
    }
    const err = new Spam('eggs');
    const [, type, value] = compactTraceback(err);
    // Python: (file, function, line), t, v, info with v the instance (v.args, attributes intact).
    expect(type).toBe('Error');
    expect(value).toBe(err);
    expect(value).toBeInstanceOf(Spam);
    expect((value as Spam).extra).toBe(42);
    // An error without frames (its stack cut away) is still returned as itself.
    const bare = new RangeError('no frames');
    bare.stack = 'RangeError: no frames';
    expect(compactTraceback(bare)[2]).toBe(bare);
  });

  it('compactTraceback refuses a value without a stack (Python: "traceback does not exist")', () => {
    expect(() => compactTraceback('not an error')).toThrow(TypeError);
  });
});

function fileURLPath(): string {
  return new URL(import.meta.url).pathname;
}

describe('Dispatcher basics', () => {
  it('a fresh dispatcher is readable and writable', () => {
    const d = new Dispatcher();
    expect(d.readable()).toBe(true);
    expect(d.writable()).toBe(true);
  });

  it('toString: the class name, then the state and address when there are some', () => {
    const map = new ChannelMap();
    try {
      const d = new Dispatcher(null, map);
      expect(String(d)).toBe('<Dispatcher>');
      class Named extends Dispatcher {}
      const l = new Named(null, map);
      l.createSocket(AF_INET, SOCK_STREAM);
      l.bind(['127.0.0.1', 0]);
      l.listen(5);
      expect(String(l)).toBe('<Named listening 127.0.0.1:0>');
      const port = ((l.socket as Socket).getsockname() as [string, number])[1];
      const c = new Dispatcher(null, map);
      c.createSocket(AF_INET, SOCK_STREAM);
      c.connect(['127.0.0.1', port]);
      c.connected = true;
      expect(String(c)).toBe(`<Dispatcher connected 127.0.0.1:${port}>`);
    } finally {
      closeAll(map);
    }
  });

  it("log writes 'log: <message>' lines to stderr", () => {
    const d = new Dispatcher();
    const l1 = 'Lovely spam! Wonderful spam!';
    const l2 = "I don't like spam!";
    const lines = capturedLines('stderr', () => {
      d.log(l1);
      d.log(l2);
    });
    expect(lines).toEqual([`log: ${l1}`, `log: ${l2}`]);
  });

  it("logInfo writes '<TYPE>: <message>' lines to stdout, 'info' by default", () => {
    const d = new Dispatcher();
    const l1 = 'Have you got anything without spam?';
    const l2 = "Why can't she have egg bacon spam and sausage?";
    const l3 = "THAT'S got spam in it!";
    const lines = capturedLines('stdout', () => {
      d.logInfo(l1, 'EGGS');
      d.logInfo(l2);
      d.logInfo(l3, 'SPAM');
    });
    expect(lines).toEqual([`EGGS: ${l1}`, `info: ${l2}`, `SPAM: ${l3}`]);
  });

  it('logInfo drops the types in ignoreLogTypes (warnings by default)', () => {
    const d = new Dispatcher();
    expect(capturedLines('stdout', () => d.logInfo('hidden', 'warning'))).toEqual([]);
    d.ignoreLogTypes = new Set(['EGGS']);
    expect(capturedLines('stdout', () => {
      d.logInfo('a', 'EGGS');
      d.logInfo('b', 'warning');
    })).toEqual(['warning: b']);
  });

  it('the default hooks report the four unhandled events as warnings', () => {
    const d = new Dispatcher();
    d.ignoreLogTypes = new Set();
    const lines = capturedLines('stdout', () => {
      d.handleExpt();
      d.handleRead();
      d.handleWrite();
      d.handleConnect();
    });
    expect(lines).toEqual([
      'warning: unhandled incoming priority event',
      'warning: unhandled read event',
      'warning: unhandled write event',
      'warning: unhandled connect event',
    ]);
  });

  it('the default handleAccepted closes the socket and warns; handleClose warns and closes', () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    try {
      const d = new Dispatcher(null, map);
      d.ignoreLogTypes = new Set();
      const lines = capturedLines('stdout', () => d.handleAccepted(a, ''));
      expect(lines).toEqual(['warning: unhandled accepted event']);
      expect(a.closed).toBe(true);
      const e = new Dispatcher(b, map);
      e.ignoreLogTypes = new Set();
      expect(map.size).toBe(1);
      expect(capturedLines('stdout', () => e.handleClose())).toEqual(['warning: unhandled close event']);
      expect(map.size).toBe(0);
      expect(b.closed).toBe(true);
    } finally {
      a.close();
      b.close();
      closeAll(map);
    }
  });

  it('errnoText gives the system text for a known errno and is never empty', () => {
    expect(errnoText(E.EPERM!)).toBe(strerror(E.EPERM!));
    expect(errnoText(E.EPERM!)).toMatch(/not permitted/i);
    for (const n of [-1, 0, 99999]) expect(errnoText(n)).not.toBe('');
  });
});

describe('DispatcherWithSend', () => {
  /** A sender that never asks to read and ignores its connect event. */
  class NoReadSender extends DispatcherWithSend {
    override readable(): boolean {
      return false;
    }
    override handleConnect(): void {}
  }

  /** Reads what is available from a nonblocking socket without waiting. */
  function drain(s: Socket, into: Buffer[]): void {
    for (;;) {
      try {
        const d = s.recv(65536);
        if (d.length === 0) return;
        into.push(d);
      } catch (err) {
        if (err instanceof OSError && err.errno === E.EAGAIN) return;
        throw err;
      }
    }
  }

  it('DispatcherWithSend#send returns undefined (Python: None), and is typed so', () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    try {
      const d = new NoReadSender(a, map);
      const r: undefined = d.send('queued');
      expect(r).toBeUndefined();
      // @ts-expect-error -- the type says there is no count to read
      const n: number = d.send('more');
      expect(n).toBeUndefined();
      b.setblocking(false);
      expect(b.recv(100).toString()).toBe('queuedmore');
      // A plain Dispatcher returns the count; a subclass may narrow the type to number.
      const plain = new Dispatcher(b, map);
      expect(plain.send('back')).toBe(4);
      class Counts extends Dispatcher {
        override send(data: string): number {
          return super.send(data) ?? 0;
        }
      }
      const [x, y] = socketpair();
      const counted: number = new Counts(x, map).send('four');
      expect(counted).toBe(4);
      y.close();
    } finally {
      closeAll(map);
      a.close();
      b.close();
    }
  });

  it('send queues data that the loop delivers over a real connection; outBuffer drains', () => {
    const map = new ChannelMap();
    const srv = new Socket(AF_INET, SOCK_STREAM);
    let conn: Socket | undefined;
    try {
      srv.bind(['127.0.0.1', 0]);
      srv.listen(1);
      const d = new NoReadSender(null, map);
      d.createSocket(AF_INET, SOCK_STREAM);
      d.connect(srv.getsockname());
      conn = srv.accept()[0];
      conn.setblocking(false);
      const data = "Suppose there isn't a 16-ton weight?";
      d.send(data);
      d.send(Buffer.from(data));
      d.send('\n');
      // A large tail makes the buffer outlive several passes.
      const big = Buffer.alloc(4 << 20, 0x61);
      d.send(big);
      expect(d.outBuffer.length).toBeGreaterThan(0);
      const got: Buffer[] = [];
      for (let n = 0; n < 5000 && d.outBuffer.length > 0; n++) {
        poll(0.01, map);
        drain(conn, got);
      }
      expect(d.outBuffer.length).toBe(0);
      expect(d.writable()).toBe(false);
      d.close();
      conn.setblocking(true);
      for (;;) {
        const chunk = conn.recv(65536);
        if (chunk.length === 0) break;
        got.push(chunk);
      }
      const all = Buffer.concat(got);
      expect(all.subarray(0, data.length * 2 + 1).toString()).toBe(data + data + '\n');
      expect(all.length).toBe(data.length * 2 + 1 + big.length);
      expect(all.subarray(data.length * 2 + 1).equals(big)).toBe(true);
    } finally {
      conn?.close();
      srv.close();
      closeAll(map);
    }
  });
});

describe('FileWrapper', () => {
  const content = "It's not dead, it's sleeping!";
  const file = () => {
    const p = path.join(dir, `f${Math.random().toString(36).slice(2)}`);
    writeFileSync(p, content);
    return p;
  };

  it('recv / read from a regular file through a duplicated descriptor', () => {
    const fd = openSync(file(), 'r');
    const w = new FileWrapper(fd);
    closeSync(fd);
    expect(w.fd).not.toBe(fd);
    expect(w.fileno()).not.toBe(fd);
    expect(w.recv(13).toString()).toBe("It's not dead");
    expect(w.read(6).toString()).toBe(", it's");
    w.close();
    expect(() => w.read(1)).toThrow(OSError);
  });

  it('send / write append to a file through the duplicated descriptor', () => {
    const p = file();
    const fd = openSync(p, fsc.O_WRONLY | fsc.O_APPEND);
    const w = new FileWrapper(fd);
    closeSync(fd);
    w.write('Come again?');
    w.send(Buffer.from('I want to buy some cheese.'));
    w.close();
    expect(readFileSync(p, 'utf8')).toBe(content + 'Come again?' + 'I want to buy some cheese.');
  });

  it('recv / send on a pipe', () => {
    const [r, wfd] = pipe();
    const rw = new FileWrapper(r);
    const ww = new FileWrapper(wfd);
    closeFd(r);
    closeFd(wfd);
    try {
      expect(ww.send('through the pipe')).toBe(16);
      expect(rw.recv(100).toString()).toBe('through the pipe');
    } finally {
      rw.close();
      ww.close();
    }
  });

  it('close reports the error of a descriptor closed behind its back once; a second close is harmless', () => {
    const fd = openSync(file(), 'r');
    const w = new FileWrapper(fd);
    closeSync(fd);
    closeFd(w.fd); // the wrapper's own copy, closed under it
    let err: unknown;
    try {
      w.close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OSError);
    expect((err as OSError).errno).toBe(E.EBADF);
    expect(w.fd).toBe(-1);
    expect(() => w.close()).not.toThrow();
  });

  it('getsockopt answers SO_ERROR with 0 (a file has no pending error)', () => {
    const fd = openSync(file(), 'r');
    const w = new FileWrapper(fd);
    closeSync(fd);
    try {
      expect(w.getsockopt(1 /* SOL_SOCKET */, 4 /* SO_ERROR */)).toBe(0);
    } finally {
      w.close();
    }
  });
});

describe.each(backends)('FileDispatcher under %s', (backend) => {
  class Collector extends FileDispatcher {
    chunks: Buffer[] = [];
    closes = 0;
    constructor(fd: number, map: ChannelMap, private size: number) {
      super(fd, map);
    }
    override writable(): boolean {
      return false;
    }
    override handleRead(): void {
      const d = this.recv(this.size);
      if (d.length) this.chunks.push(d);
    }
    override handleClose(): void {
      this.closes++;
      this.close();
    }
  }

  it('reads a regular file to its end, then closes once (epoll cannot watch a file: it counts as always ready)', () => {
    const map = new ChannelMap();
    const p = path.join(dir, `r-${backend}`);
    const content = "It's not dead, it's sleeping!";
    writeFileSync(p, content);
    const fd = openSync(p, 'r');
    try {
      const d = new Collector(fd, map, 29);
      closeSync(fd);
      loop({ timeout: 0.01, backend, map, count: 2 });
      expect(Buffer.concat(d.chunks).toString()).toBe(content);
      loop({ timeout: 0.01, backend, map, count: 10 });
      expect(d.closes).toBe(1);
      expect(map.size).toBe(0);
    } finally {
      closeAll(map);
    }
  });

  it('reads a pipe until the writer closes, then closes once; the original fd stays open', () => {
    const map = new ChannelMap();
    const [r, w] = pipe();
    let rOpen = true;
    try {
      const d = new Collector(r, map, 1000);
      expect(d.fileno()).not.toBe(r);
      const payload = Buffer.alloc(20000);
      for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
      let off = 0;
      const deadline = Date.now() + 5000;
      while (off < payload.length && Date.now() < deadline) {
        const n = native.write(w, payload, off, Math.min(4096, payload.length - off));
        if (n > 0) off += n;
        loop({ timeout: 0.01, backend, map, count: 1 });
      }
      closeFd(w);
      for (let i = 0; i < 200 && map.size > 0; i++) loop({ timeout: 0.01, backend, map, count: 1 });
      expect(Buffer.concat(d.chunks).equals(payload)).toBe(true);
      expect(d.closes).toBe(1);
      expect(map.size).toBe(0);
      // The dispatcher closed its copy; the caller's descriptor is still usable.
      expect(native.getFlag(r, 0)).toBeGreaterThanOrEqual(0);
      closeFd(r);
      rOpen = false;
    } finally {
      if (rOpen) closeFd(r);
      closeAll(map);
    }
  });
});

describe('closing paths', () => {
  it('close leaves the map, forgets the descriptor, clears the states, and a second close is harmless', () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    try {
      const d = new Dispatcher(a, map);
      expect(d.connected).toBe(true);
      expect(map.get(a.fileno())).toBe(d);
      d.close();
      expect(map.size).toBe(0);
      expect(d.fileno()).toBeNull();
      expect(d.connected || d.accepting || d.connecting).toBe(false);
      expect(a.closed).toBe(true);
      expect(() => d.close()).not.toThrow();
    } finally {
      b.close();
      closeAll(map);
    }
  });

  it('a listener closes: accepting becomes false and the map empties', () => {
    const map = new ChannelMap();
    try {
      const l = new Dispatcher(null, map);
      l.createSocket(AF_INET, SOCK_STREAM);
      l.bind(['127.0.0.1', 0]);
      l.listen(5);
      expect(l.accepting).toBe(true);
      l.close();
      expect(l.accepting).toBe(false);
      expect(map.size).toBe(0);
    } finally {
      closeAll(map);
    }
  });

  it('FileDispatcher.close closes its copy only, twice without error', () => {
    const map = new ChannelMap();
    const [r, w] = pipe();
    try {
      const d = new FileDispatcher(r, map);
      const copy = d.fileno()!;
      expect(copy).not.toBe(r);
      d.close();
      d.close();
      expect(native.getFlag(copy, 0)).toBeLessThan(0); // EBADF: the copy is gone
      expect(native.getFlag(r, 0)).toBeGreaterThanOrEqual(0);
    } finally {
      closeFd(r);
      closeFd(w);
      closeAll(map);
    }
  });

  it('the default handleError logs a compact traceback as an error and closes the channel', () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    try {
      class Quiet extends Dispatcher {
        override handleClose(): void {
          this.close();
        }
      }
      const d = new Quiet(a, map);
      const lines = capturedLines('stdout', () => d.handleError(new RangeError('bad thing')));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^error: uncaptured exception, closing channel <Quiet connected ""?> \(RangeError:bad thing \[.*\]\)$/);
      expect(map.size).toBe(0);
      expect(a.closed).toBe(true);
    } finally {
      b.close();
      closeAll(map);
    }
  });
});
