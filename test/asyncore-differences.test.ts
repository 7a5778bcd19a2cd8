/**
 * The deliberate differences from CPython 3.11's asyncore (DESIGN.md,
 * "Deliberate differences"), each checked under the select, poll and epoll
 * passes, and the epoll pass's own promises: interest kept between passes,
 * no dispatch to a channel closed mid-pass, and removal from the epoll set
 * before the descriptor is closed.
 */
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { capturedLines } from './helpers/capture.js';
import { ChannelMap, Dispatcher, DispatcherWithSend, FileDispatcher, closeAll, loop, type Backend } from '../src/asyncore/index.js';
import { native } from '../src/native.js';
import { OSError, errno as E } from '../src/errors.js';
import { EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, HAVE_EPOLL, POLLHUP, POLLIN } from '../src/constants.js';
import { AF_INET, SOCK_STREAM, SOL_SOCKET, SO_LINGER, SO_SNDBUF, Socket, closeFd, pipe, socketpair } from '../src/socket.js';
import { endianness } from 'node:os';

trackFds();

const backends = ['select', 'poll', 'epoll'] as const;

/** One pass of `backend` over `map` with a short timeout. */
function pass(map: ChannelMap, backend: Backend, timeout = 0.01): void {
  loop({ timeout, count: 1, backend, map });
}

/** A dispatcher that records what reaches it and closes quietly. */
class Recorder extends Dispatcher {
  reads = 0;
  writes = 0;
  closes = 0;
  data: Buffer[] = [];
  wantWrite = false;
  constructor(sock: Socket | null, map: ChannelMap, private chunk = 65536) {
    super(sock, map);
  }
  override writable(): boolean {
    return this.wantWrite;
  }
  override handleRead(): void {
    this.reads++;
    const d = this.recv(this.chunk);
    if (d.length) this.data.push(d);
  }
  override handleWrite(): void {
    this.writes++;
  }
  override handleClose(): void {
    this.closes++;
    this.close();
  }
  override handleError(err: unknown): void {
    throw err;
  }
}

/** Sockets to close whatever a test did. */
function closeLater() {
  const socks: Socket[] = [];
  return {
    add<T extends Socket>(...s: T[]): T[] {
      socks.push(...s);
      return s;
    },
    closeAll(): void {
      for (const s of socks) s.close();
    },
  };
}

/** Opens socketpairs until one end gets descriptor number `fd`; returns [thatEnd, itsPeer]. */
function socketOnFd(fd: number): [Socket, Socket] {
  const spare: Socket[] = [];
  try {
    for (let i = 0; i < 256; i++) {
      const [x, y] = socketpair();
      if (x.fileno() === fd) return [x, y];
      if (y.fileno() === fd) return [y, x];
      spare.push(x, y);
    }
    throw new Error(`no socket landed on fd ${fd}`);
  } finally {
    for (const s of spare) s.close();
  }
}

function lingerZero(): Buffer {
  const b = Buffer.alloc(8);
  if (endianness() === 'LE') b.writeInt32LE(1, 0);
  else b.writeInt32BE(1, 0);
  return b;
}

/** A connected TCP pair on loopback: [client, server side]. */
function tcpPair(): [Socket, Socket] {
  const l = new Socket(AF_INET, SOCK_STREAM);
  try {
    l.bind(['127.0.0.1', 0]);
    l.listen(1);
    const c = new Socket(AF_INET, SOCK_STREAM);
    c.connect(l.getsockname());
    return [c, l.accept()[0]];
  } finally {
    l.close();
  }
}

describe.each(backends)('deliberate differences under %s', (backend) => {
  it('difference: recv on EAGAIN returns an empty Buffer and does not close (Python raises)', () => {
    const map = new ChannelMap();
    const socks = closeLater();
    try {
      const [a, b] = socks.add(...socketpair());
      const results: Buffer[] = [];
      class Greedy extends Recorder {
        override handleRead(): void {
          this.reads++;
          // Reads past what is there: the last recv meets EAGAIN.
          for (;;) {
            const d = this.recv(4096);
            results.push(d);
            if (d.length === 0) break;
          }
        }
      }
      const d = new Greedy(a, map);
      expect(d.recv(16)).toEqual(Buffer.alloc(0));
      expect(map.get(a.fileno())).toBe(d);
      b.send('abc');
      pass(map, backend);
      expect(results.map((r) => r.toString())).toEqual(['abc', '']);
      expect(d.closes).toBe(0);
      expect(d.connected).toBe(true);
      expect(map.get(a.fileno())).toBe(d);
      b.send('def');
      pass(map, backend);
      expect(results.map((r) => r.toString())).toEqual(['abc', '', 'def', '']);
      expect(d.closes).toBe(0);
    } finally {
      closeAll(map);
      socks.closeAll();
    }
  });

  it('difference: handleClose runs at most once — EOF, then an explicit call, then handleError', () => {
    const map = new ChannelMap();
    const socks = closeLater();
    try {
      const [a, b] = socks.add(...socketpair());
      const d = new Recorder(a, map);
      b.close();
      for (let i = 0; i < 10 && map.size > 0; i++) pass(map, backend);
      expect(d.closes).toBe(1);
      d.handleClose();
      expect(d.closes).toBe(1);
      // The default handleError logs, then asks for handleClose: it does not run again.
      const lines = capturedLines('stdout', () => Dispatcher.prototype.handleError.call(d, new Error('late')));
      expect(lines[0]).toMatch(/^error: uncaptured exception/);
      expect(d.closes).toBe(1);
    } finally {
      closeAll(map);
      socks.closeAll();
    }
  });

  it('difference: handleClose runs at most once — a reset reaching it from recv, hang-up flags and later passes', () => {
    const map = new ChannelMap();
    const socks = closeLater();
    try {
      const [client, served] = socks.add(...tcpPair());
      let closes = 0;
      // This handler does not close: every later path that would call handleClose is exercised.
      class KeepsOpen extends Recorder {
        override handleClose(): void {
          closes++;
        }
      }
      const d = new KeepsOpen(served, map);
      client.setsockopt(SOL_SOCKET, SO_LINGER, lingerZero());
      client.close(); // sends a reset
      for (let i = 0; i < 5; i++) pass(map, backend);
      expect(d.reads).toBeGreaterThanOrEqual(1);
      expect(closes).toBe(1);
      const lines = capturedLines('stdout', () => Dispatcher.prototype.handleError.call(d, new Error('after reset')));
      expect(lines).toHaveLength(1);
      expect(closes).toBe(1);
      d.close();
    } finally {
      closeAll(map);
      socks.closeAll();
    }
  });

  it('difference: a dispatcher closed during a pass is never dispatched again, even when a new one takes its fd in that pass', () => {
    const map = new ChannelMap();
    const socks = closeLater();
    try {
      const [a, aPeer] = socks.add(...socketpair());
      const [b, bPeer] = socks.add(...socketpair());
      let newcomer: Recorder | undefined;
      let oldFd = -1;
      const chans: Recorder[] = [];
      class Closer extends Recorder {
        override handleRead(): void {
          super.handleRead();
          if (newcomer !== undefined) return;
          // The first one dispatched closes the other, whose event is still pending in this pass.
          const other = chans.find((c) => c !== this)!;
          oldFd = other.fileno()!;
          other.close();
          const [s, peer] = socks.add(...socketOnFd(oldFd));
          peer.send('for the newcomer');
          newcomer = new Recorder(s, map);
        }
      }
      chans.push(new Closer(a, map), new Closer(b, map));
      aPeer.send('x');
      bPeer.send('y');
      pass(map, backend);
      expect(newcomer).toBeDefined();
      expect(newcomer!.fileno()).toBe(oldFd);
      const [first, second] = chans[0]!.reads === 1 ? [chans[0]!, chans[1]!] : [chans[1]!, chans[0]!];
      expect(first.reads).toBe(1);
      expect(second.reads).toBe(0);
      expect(second.fileno()).toBeNull();
      expect(newcomer!.reads).toBe(0);
      // The newcomer was ready all along; its own event comes in the next pass.
      pass(map, backend);
      expect(newcomer!.reads).toBe(1);
      expect(Buffer.concat(newcomer!.data).toString()).toBe('for the newcomer');
    } finally {
      closeAll(map);
      socks.closeAll();
    }
  });

  it('difference: a dispatcher that closes itself in handleRead gets no write, expt or close event from the same readiness', () => {
    const map = new ChannelMap();
    const socks = closeLater();
    try {
      const [a, aPeer] = socks.add(...socketpair());
      class ClosesOnRead extends Recorder {
        expts = 0;
        override handleRead(): void {
          super.handleRead();
          this.close();
        }
        override handleExpt(): void {
          this.expts++;
        }
      }
      const d = new ClosesOnRead(a, map);
      d.wantWrite = true;
      aPeer.send('x');
      aPeer.close(); // a hang-up too, under poll and epoll
      pass(map, backend);
      expect(d.reads).toBe(1);
      expect(d.writes).toBe(0);
      expect(d.expts).toBe(0);
      expect(d.closes).toBe(0);
      expect(map.size).toBe(0);
    } finally {
      closeAll(map);
      socks.closeAll();
    }
  });

  it('difference: data still readable at hang-up reaches handleRead before handleClose (Python poll2 loses it)', () => {
    const map = new ChannelMap();
    const socks = closeLater();
    try {
      const [reader, writer] = socks.add(...socketpair());
      writer.setsockopt(SOL_SOCKET, SO_SNDBUF, 1 << 20);
      writer.setblocking(false);
      const payload = Buffer.alloc(200 * 1024);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
      let sent = 0;
      while (sent < payload.length) sent += writer.send(payload.subarray(sent, sent + 65536));
      expect(sent).toBe(payload.length);
      writer.close();
      // The precondition: the kernel reports the hang-up together with the pending data.
      const pfd = new Int32Array([reader.fileno(), POLLIN]);
      expect(native.poll(pfd, 1, 0)).toBe(1);
      expect((pfd[1]! >>> 16) & (POLLIN | POLLHUP)).toBe(POLLIN | POLLHUP);
      let readsAfterClose = 0;
      class Slow extends Recorder {
        override handleRead(): void {
          if (this.closes > 0) readsAfterClose++;
          super.handleRead();
        }
      }
      const d = new Slow(reader, map, 1024);
      for (let i = 0; i < 1000 && map.size > 0; i++) pass(map, backend);
      const got = Buffer.concat(d.data);
      expect(got.length).toBe(payload.length);
      expect(got.equals(payload)).toBe(true);
      expect(d.closes).toBe(1);
      expect(readsAfterClose).toBe(0);
      expect(map.size).toBe(0);
    } finally {
      closeAll(map);
      socks.closeAll();
    }
  });

  if (backend === 'select') {
    it('POLLNVAL: select(2) has no per-descriptor "not open" report; the pass raises EBADF as Python\'s does', () => {
      const map = new ChannelMap();
      const [a, b] = socketpair();
      try {
        const d = new Recorder(a, map);
        closeFd(a.detach()); // closed behind the dispatcher's back
        d.socket = { fileno: () => -1, close: () => {} };
        let err: unknown;
        try {
          pass(map, backend, 0);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(OSError);
        expect((err as OSError).errno).toBe(E.EBADF);
      } finally {
        closeAll(map);
        b.close();
      }
    });
  } else {
    it('difference: POLLNVAL closes the channel without closing its descriptor number again', () => {
      const map = new ChannelMap();
      const [a, b] = socketpair();
      const [c, cPeer] = socketpair();
      const origClose = native.close;
      const closed: number[] = [];
      try {
        // A first pass over another channel sets the poller up (epoll's set gets its own
        // descriptor now, so it cannot take the number freed below).
        new Recorder(c, map);
        pass(map, backend, 0);
        const d = new Recorder(a, map);
        const fd = a.fileno();
        origClose(fd); // closed behind the dispatcher's back
        native.close = (n: number) => {
          closed.push(n);
          return origClose(n);
        };
        expect(() => pass(map, backend, 0)).not.toThrow();
        native.close = origClose;
        expect(d.closes).toBe(1);
        expect(map.size).toBe(1);
        expect(d.fileno()).toBeNull();
        expect(closed).not.toContain(fd);
      } finally {
        native.close = origClose;
        if (!a.closed) a.detach();
        closeAll(map);
        b.close();
        cPeer.close();
      }
    });
  }

  if (backend !== 'select') {
    it('difference: POLLNVAL closes a FileDispatcher without closing its (dup\'ed) descriptor number again', () => {
      const map = new ChannelMap();
      const [r, w] = pipe();
      const [c, cPeer] = socketpair();
      const origClose = native.close;
      const closed: number[] = [];
      let copy = -1;
      let closes = 0;
      try {
        new Recorder(c, map);
        pass(map, backend, 0);
        class CountingFile extends FileDispatcher {
          override handleClose(): void {
            closes++;
            this.close();
          }
        }
        const d = new CountingFile(r, map);
        copy = d.fileno()!;
        origClose(copy); // the dispatcher's own copy, closed behind its back
        native.close = (n: number) => {
          closed.push(n);
          return origClose(n);
        };
        expect(() => pass(map, backend, 0)).not.toThrow();
        native.close = origClose;
        expect(closes).toBe(1);
        expect(d.fileno()).toBeNull();
        expect(map.size).toBe(1);
        expect(closed).not.toContain(copy);
      } finally {
        native.close = origClose;
        closeAll(map, true);
        closeFd(r);
        closeFd(w);
        cPeer.close();
      }
    });
  }

  it("difference: strings are accepted where bytes are — send('hi') (Python 3 raises TypeError)", () => {
    const map = new ChannelMap();
    const socks = closeLater();
    try {
      const [a, aPeer] = socks.add(...socketpair());
      const [b, bPeer] = socks.add(...socketpair());
      class SaysHi extends Recorder {
        override handleWrite(): void {
          this.send('hi ✓');
          this.wantWrite = false;
        }
      }
      class BufferedHi extends DispatcherWithSend {
        override readable(): boolean {
          return false;
        }
        override handleWrite(): void {
          if (this.outBuffer.length === 0) this.send('hé');
          super.handleWrite();
        }
      }
      const d = new SaysHi(a, map);
      d.wantWrite = true;
      const w = new BufferedHi(b, map);
      w.send('one ');
      pass(map, backend);
      aPeer.setblocking(false);
      bPeer.setblocking(false);
      expect(aPeer.recv(100).toString('utf8')).toBe('hi ✓');
      expect(bPeer.recv(100).toString('utf8')).toBe('one ');
      w.send('two');
      pass(map, backend);
      expect(bPeer.recv(100).toString('utf8')).toBe('two');
      expect(w.writable()).toBe(false);
    } finally {
      closeAll(map);
      socks.closeAll();
    }
  });

  it('difference: after d.delChannel(otherMap), d.close() still removes d from its own map (Python leaves the closed channel in it)', () => {
    const own = new ChannelMap();
    const other = new ChannelMap();
    const socks = closeLater();
    try {
      const [a, aPeer] = socks.add(...socketpair());
      const d = new Recorder(a, own);
      const fd = a.fileno();
      d.addChannel(other);
      expect(other.get(fd)).toBe(d);
      d.delChannel(other);
      // Leaving another map does not forget the descriptor: the own map still holds d.
      expect(other.has(fd)).toBe(false);
      expect(d.fileno()).toBe(fd);
      expect(own.get(fd)).toBe(d);
      // The channel still works in its own map.
      aPeer.sendall('x');
      pass(own, backend);
      expect(Buffer.concat(d.data).toString()).toBe('x');
      d.close();
      expect(own.size).toBe(0);
      expect(d.fileno()).toBeNull();
      expect(a.closed).toBe(true);
      // A pass over the emptied map has nothing to dispatch (no closed descriptor left behind).
      pass(own, backend, 0);
      expect(d.reads).toBe(1);
    } finally {
      closeAll(own);
      closeAll(other);
      socks.closeAll();
    }
  });

  it('difference: close() leaves every map the channel joined; a channel moved to another map keeps its descriptor', () => {
    const own = new ChannelMap();
    const other = new ChannelMap();
    const socks = closeLater();
    try {
      const [a, aPeer] = socks.add(...socketpair());
      const fd = a.fileno();
      const d = new Recorder(a, own);
      // Moved: joins `other`, leaves its own map. Python forgets the descriptor here.
      d.addChannel(other);
      d.delChannel();
      expect(own.has(fd)).toBe(false);
      expect(d.fileno()).toBe(fd);
      aPeer.sendall('y');
      pass(other, backend);
      expect(Buffer.concat(d.data).toString()).toBe('y');
      d.close();
      expect(other.size).toBe(0);
      expect(d.fileno()).toBeNull();
      // In its own map only, delChannel() forgets the descriptor, as Python's del_channel.
      const [b] = socks.add(...socketpair());
      const e = new Recorder(b, own);
      e.delChannel();
      expect(own.size).toBe(0);
      expect(e.fileno()).toBeNull();
      b.close();
    } finally {
      closeAll(own);
      closeAll(other);
      socks.closeAll();
    }
  });
});

describe.skipIf(!HAVE_EPOLL)('epoll pass (Linux only: epoll(7) does not exist elsewhere)', () => {
  /** Records every epoll_ctl the library makes while `fn` runs. */
  function countingCtl<T>(fn: (calls: Array<[number, number, number]>) => T): T {
    const orig = native.epollCtl!;
    const calls: Array<[number, number, number]> = [];
    native.epollCtl = (epfd, op, fd, events) => {
      calls.push([op, fd, events]);
      return orig(epfd, op, fd, events);
    };
    try {
      return fn(calls);
    } finally {
      native.epollCtl = orig;
    }
  }

  it('interest is kept between passes: an unchanged pass makes no epoll_ctl, a change makes exactly one', () => {
    const map = new ChannelMap();
    const socks = closeLater();
    try {
      const chans = [0, 1, 2].map(() => new Recorder(socks.add(...socketpair())[0]!, map));
      countingCtl((calls) => {
        pass(map, 'epoll', 0);
        expect(calls.map((c) => c[0])).toEqual([EPOLL_CTL_ADD, EPOLL_CTL_ADD, EPOLL_CTL_ADD]);
        calls.length = 0;
        pass(map, 'epoll', 0);
        pass(map, 'epoll', 0);
        expect(calls).toEqual([]);
        chans[1]!.wantWrite = true;
        pass(map, 'epoll', 0);
        expect(calls).toHaveLength(1);
        expect(calls[0]![0]).toBe(EPOLL_CTL_MOD);
        expect(calls[0]![1]).toBe(chans[1]!.fileno());
        expect(chans[1]!.writes).toBe(1);
        calls.length = 0;
        pass(map, 'epoll', 0);
        expect(calls).toEqual([]);
        chans[1]!.wantWrite = false;
        pass(map, 'epoll', 0);
        expect(calls.map((c) => c[0])).toEqual([EPOLL_CTL_MOD]);
        calls.length = 0;
        const fd = chans[2]!.fileno();
        chans[2]!.close();
        pass(map, 'epoll', 0);
        expect(calls).toEqual([[EPOLL_CTL_DEL, fd, 0]]);
      });
    } finally {
      closeAll(map);
      socks.closeAll();
    }
  });

  it('a channel closed by another handler in the middle of a pass gets none of its pending events', () => {
    const map = new ChannelMap();
    const socks = closeLater();
    try {
      const pairs = [0, 1, 2, 3].map(() => socks.add(...socketpair()));
      const chans: Recorder[] = [];
      let closer: Recorder | undefined;
      class ClosesTheRest extends Recorder {
        override handleRead(): void {
          super.handleRead();
          if (closer !== undefined) return;
          closer = this;
          for (const c of chans) if (c !== this) c.close();
        }
        override handleWrite(): void {
          super.handleWrite();
          this.wantWrite = false;
        }
      }
      for (const [s] of pairs) {
        const c = new ClosesTheRest(s!, map);
        c.wantWrite = true; // read and write events both pending
        chans.push(c);
      }
      for (const [, peer] of pairs) peer!.send('ready');
      pass(map, 'epoll', 0);
      expect(closer).toBeDefined();
      for (const c of chans) {
        if (c === closer) continue;
        expect(c.reads + c.writes).toBe(0);
        expect(c.fileno()).toBeNull();
      }
      expect(map.size).toBe(1);
    } finally {
      closeAll(map);
      socks.closeAll();
    }
  });

  it.each([
    ['a socket Dispatcher', false],
    ['a FileDispatcher (a dup\'ed pipe)', true],
  ] as const)('closing %s removes it from the epoll set before its descriptor is closed', (_name, isFile) => {
    const map = new ChannelMap();
    const socks = closeLater();
    const rawFds: number[] = [];
    const origClose = native.close;
    try {
      let d: Dispatcher;
      if (isFile) {
        const [r, w] = pipe();
        rawFds.push(r, w);
        d = new FileDispatcher(r, map);
      } else {
        d = new Recorder(socks.add(...socketpair())[0]!, map);
      }
      const fd = d.fileno()!;
      const order: string[] = [];
      countingCtl((calls) => {
        pass(map, 'epoll', 0);
        expect(calls.map((c) => c[0])).toEqual([EPOLL_CTL_ADD]);
        native.epollCtl = ((inner) => (epfd: number, op: number, f: number, ev: number) => {
          if (f === fd) order.push(op === EPOLL_CTL_DEL ? 'del' : `ctl${op}`);
          return inner(epfd, op, f, ev);
        })(native.epollCtl!);
        native.close = (n: number) => {
          if (n === fd) order.push('close');
          return origClose(n);
        };
        d.close();
        native.close = origClose;
      });
      expect(order).toEqual(['del', 'close']);
      expect(map.size).toBe(0);
    } finally {
      native.close = origClose;
      for (const f of rawFds) closeFd(f);
      closeAll(map);
      socks.closeAll();
    }
  });
});

describe.skipIf(!HAVE_EPOLL)('epoll pass: a descriptor closed behind the channel (Linux only: epoll(7))', () => {
  it('is reported as POLLNVAL even when the new epoll set took its number', () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    const r = new Recorder(a, map);
    const fd = r.fileno()!;
    try {
      // Closed behind the channel's back, before the map has an epoll set:
      // epoll_create1 takes the lowest free number, which is this one.
      native.close(fd);
      pass(map, 'epoll');
      expect(r.closes).toBe(1);
      expect(map.size).toBe(0);
      // The set's own descriptor was not closed by mistake: a new channel is served.
      const [c, d] = socketpair();
      const r2 = new Recorder(c, map);
      d.send('x');
      pass(map, 'epoll');
      expect(r2.data.map(String)).toEqual(['x']);
      r2.close();
      d.close();
    } finally {
      a.detach();
      b.close();
      closeAll(map);
    }
  });
});
