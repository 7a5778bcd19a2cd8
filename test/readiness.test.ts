/**
 * Real readiness on real descriptors, for each poller (select(), Poll, Epoll)
 * wherever the poller can express the event, plus the address round trips of
 * every family. Nothing is mocked: socketpairs, pipes and loopback TCP.
 */
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { closedPort, families, HAVE_IPV6, listener, unixPath } from './helpers/net.js';
import { pollerKinds, waitFor, type PollerKind } from './helpers/pollers.js';
import { native } from '../src/native.js';
import { OSError, errno as E } from '../src/errors.js';
import {
  Socket, socketpair, pipe, closeFd,
  AF_INET, AF_INET6, AF_UNIX, SOCK_STREAM, SOL_SOCKET, SO_ERROR, SHUT_WR,
} from '../src/socket.js';
import {
  Epoll, Poll, select, FD_SETSIZE,
  POLLIN, POLLOUT, POLLHUP, POLLNVAL, POLLRDHUP,
  EPOLLIN, EPOLLOUT, EPOLLET, EPOLLONESHOT, EPOLLRDHUP,
} from '../src/select.js';
import { SelectSelector, EVENT_READ } from '../src/selectors.js';

trackFds();


function closeAll(...socks: Array<Socket | undefined>): void {
  for (const s of socks) s?.close();
}

describe.each(pollerKinds)('readiness with $name', (kind: PollerKind) => {
  const it_ = kind.missing ? it.skip : it;

  it_('a socket becomes readable only after the peer writes', () => {
    const [a, b] = socketpair();
    try {
      expect(waitFor(kind, b.fileno(), POLLIN, 0) & POLLIN).toBe(0);
      a.sendall('x');
      expect(waitFor(kind, b.fileno(), POLLIN, 1000) & POLLIN).toBe(POLLIN);
      // Level-triggered: still readable until the byte is read.
      expect(waitFor(kind, b.fileno(), POLLIN, 0) & POLLIN).toBe(POLLIN);
      expect(b.recv(1).toString()).toBe('x');
      expect(waitFor(kind, b.fileno(), POLLIN, 0) & POLLIN).toBe(0);
    } finally {
      closeAll(a, b);
    }
  });

  it_('a fresh connected socket is writable at once', () => {
    const [a, b] = socketpair();
    const [l, addr] = listener();
    const c = new Socket(AF_INET, SOCK_STREAM);
    let s: Socket | undefined;
    try {
      expect(waitFor(kind, a.fileno(), POLLOUT, 0) & POLLOUT).toBe(POLLOUT);
      c.connect(addr);
      [s] = l.accept();
      expect(waitFor(kind, c.fileno(), POLLOUT, 0) & POLLOUT).toBe(POLLOUT);
      expect(waitFor(kind, s.fileno(), POLLOUT, 0) & POLLOUT).toBe(POLLOUT);
    } finally {
      closeAll(a, b, l, c, s);
    }
  });

  it_('a waiting call with nothing ready lasts at least its timeout', () => {
    const [a, b] = socketpair();
    try {
      const t0 = performance.now();
      expect(waitFor(kind, b.fileno(), POLLIN, 120)).toBe(0);
      const dt = performance.now() - t0;
      expect(dt).toBeGreaterThanOrEqual(119);
      expect(dt).toBeLessThan(2000);
    } finally {
      closeAll(a, b);
    }
  });

  describe.each(families.filter((f) => f.family !== AF_UNIX))('nonblocking connect over $name', (fc) => {
    it_('to a listening port: EINPROGRESS, then writable with SO_ERROR 0', () => {
      const [l, addr] = listener(fc);
      const c = new Socket(fc.family, SOCK_STREAM);
      let s: Socket | undefined;
      try {
        c.setblocking(false);
        const r = c.connectEx(addr);
        // Loopback may finish the handshake inside connect(); anything else is a failure.
        expect([E.EINPROGRESS, 0]).toContain(r);
        expect(waitFor(kind, c.fileno(), POLLOUT, 2000) & POLLOUT).toBe(POLLOUT);
        expect(c.getsockopt(SOL_SOCKET, SO_ERROR)).toBe(0);
        [s] = l.accept();
        expect(c.getpeername()).toEqual(s.getsockname());
      } finally {
        closeAll(l, c, s);
      }
    });
  });

  it_('nonblocking connect to a closed port reports ECONNREFUSED through SO_ERROR after writability', () => {
    const port = closedPort();
    const c = new Socket(AF_INET, SOCK_STREAM);
    try {
      c.setblocking(false);
      const r = c.connectEx(['127.0.0.1', port]);
      expect([E.EINPROGRESS, E.ECONNREFUSED]).toContain(r);
      if (r === E.EINPROGRESS) {
        const ev = waitFor(kind, c.fileno(), POLLOUT, 2000);
        expect(ev & POLLOUT).toBe(POLLOUT);
        expect(c.getsockopt(SOL_SOCKET, SO_ERROR)).toBe(E.ECONNREFUSED);
        // SO_ERROR is cleared by reading it.
        expect(c.getsockopt(SOL_SOCKET, SO_ERROR)).toBe(0);
      }
    } finally {
      c.close();
    }
  });

  it_('a peer close makes the socket readable and recv returns EOF', () => {
    const [a, b] = socketpair();
    try {
      a.close();
      const ev = waitFor(kind, b.fileno(), POLLIN, 1000);
      expect(ev & POLLIN).toBe(POLLIN);
      if (kind.caps.hup) expect(ev & POLLHUP).toBe(POLLHUP);
      expect(b.recv(16).length).toBe(0);
    } finally {
      closeAll(a, b);
    }
  });

  it_('a TCP peer close makes the socket readable and recv returns EOF after the data', () => {
    const [l, addr] = listener();
    const c = new Socket(AF_INET, SOCK_STREAM);
    let s: Socket | undefined;
    try {
      c.connect(addr);
      [s] = l.accept();
      s.sendall('bye');
      s.close();
      expect(waitFor(kind, c.fileno(), POLLIN, 1000) & POLLIN).toBe(POLLIN);
      expect(c.recv(16).toString()).toBe('bye');
      expect(waitFor(kind, c.fileno(), POLLIN, 1000) & POLLIN).toBe(POLLIN);
      expect(c.recv(16).length).toBe(0);
    } finally {
      closeAll(l, c, s);
    }
  });

  // select(2) has no hang-up set, so these two rows exist only for poll and epoll.
  if (kind.caps.hup) it_('a pipe whose writer closed reports POLLHUP', () => {
    const [r, w] = pipe();
    try {
      native.write(w, Buffer.from('z'), 0, 1);
      closeFd(w);
      const ev = waitFor(kind, r, POLLIN, 1000);
      expect(ev & (POLLIN | POLLHUP)).toBe(POLLIN | POLLHUP);
      const buf = Buffer.alloc(4);
      expect(native.read(r, buf, 0, 4)).toBe(1);
      expect(waitFor(kind, r, POLLIN, 1000) & POLLHUP).toBe(POLLHUP);
      expect(native.read(r, buf, 0, 4)).toBe(0);
    } finally {
      native.close(w);
      closeFd(r);
    }
  });

  if (kind.caps.rdhup) it_('RDHUP is reported only when registered (shutdown(SHUT_WR) by the peer)', () => {
    const [a, b] = socketpair();
    try {
      a.shutdown(SHUT_WR);
      const withIt = waitFor(kind, b.fileno(), POLLIN | POLLRDHUP, 1000);
      expect(withIt & (POLLIN | POLLRDHUP)).toBe(POLLIN | POLLRDHUP);
      const without = waitFor(kind, b.fileno(), POLLIN, 1000);
      expect(without & POLLIN).toBe(POLLIN);
      expect(without & POLLRDHUP).toBe(0);
      // Half-closed, not hung up: the other direction still works.
      expect(without & POLLHUP).toBe(0);
      b.sendall('still');
      expect(a.recv(8).toString()).toBe('still');
    } finally {
      closeAll(a, b);
    }
  });

  it_('a closed descriptor: POLLNVAL for poll, EBADF for select and epoll', () => {
    // The poller exists before the close, so its own fd cannot take the closed number.
    const p = kind.create();
    const [a, b] = socketpair();
    const fd = b.fileno();
    b.close();
    try {
      if (kind.caps.nval) {
        p.register(fd, POLLIN);
        expect(p.wait(0).get(fd)).toBe(POLLNVAL);
      } else {
        let err: unknown;
        try {
          p.register(fd, POLLIN);
          p.wait(0);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(OSError);
        expect((err as OSError).errno).toBe(E.EBADF);
        expect((err as OSError).code).toBe('EBADF');
      }
    } finally {
      p.close();
      a.close();
    }
  });

  it_('a high descriptor (>= FD_SETSIZE) is refused by select only', () => {
    const [a, b] = socketpair();
    const dups: number[] = [];
    try {
      let high = -1;
      while (high < FD_SETSIZE) {
        high = native.dup(b.fileno());
        expect(high).toBeGreaterThanOrEqual(0);
        dups.push(high);
      }
      a.sendall('!');
      if (kind.name === 'select') {
        expect(() => waitFor(kind, high, POLLIN, 0)).toThrow(RangeError);
        expect(() => waitFor(kind, high, POLLIN, 0)).toThrow(new RegExp(`FD_SETSIZE=${FD_SETSIZE}`));
      } else {
        expect(waitFor(kind, high, POLLIN, 1000) & POLLIN).toBe(POLLIN);
      }
    } finally {
      for (const fd of dups) closeFd(fd);
      closeAll(a, b);
    }
  });
});

describe('recv on an empty nonblocking socket', () => {
  it('native.recv returns -EAGAIN as a value', () => {
    const [a, b] = socketpair();
    try {
      b.setblocking(false);
      const buf = Buffer.alloc(8);
      expect(native.recv(b.fileno(), buf, 0, 8, 0)).toBe(-E.EAGAIN);
      expect(native.read(b.fileno(), buf, 0, 8)).toBe(-E.EAGAIN);
    } finally {
      closeAll(a, b);
    }
  });
  it('Socket.recv throws OSError EAGAIN (Python: BlockingIOError)', () => {
    const [a, b] = socketpair();
    try {
      b.setblocking(false);
      let err: unknown;
      try {
        b.recv(8);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OSError);
      expect((err as OSError).errno).toBe(E.EAGAIN);
      expect((err as OSError).code).toBe('EAGAIN');
      expect((err as OSError).syscall).toBe('recv');
    } finally {
      closeAll(a, b);
    }
  });
});

describe.skipIf(!native.epollCreate)('epoll semantics (man 7 epoll)', () => {
  const errnoOf = (f: () => void): number | undefined => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(OSError);
      return (e as OSError).errno;
    }
    return undefined;
  };

  it('EEXIST on a double register, ENOENT on modify/unregister of an unknown fd', () => {
    const ep = new Epoll();
    const [a, b] = socketpair();
    try {
      ep.register(a, EPOLLIN);
      expect(errnoOf(() => ep.register(a, EPOLLIN))).toBe(E.EEXIST);
      expect(errnoOf(() => ep.modify(b, EPOLLIN))).toBe(E.ENOENT);
      expect(errnoOf(() => ep.unregister(b))).toBe(E.ENOENT);
      ep.unregister(a);
      expect(errnoOf(() => ep.unregister(a))).toBe(E.ENOENT);
    } finally {
      ep.close();
      closeAll(a, b);
    }
  });

  it('EBADF for register/modify/unregister of a descriptor that was closed', () => {
    const ep = new Epoll();
    const [a, b] = socketpair();
    try {
      const fd = b.fileno();
      ep.register(fd, EPOLLIN);
      b.close();
      expect(errnoOf(() => ep.modify(fd, EPOLLOUT))).toBe(E.EBADF);
      expect(errnoOf(() => ep.unregister(fd))).toBe(E.EBADF);
      expect(errnoOf(() => ep.register(fd, EPOLLIN))).toBe(E.EBADF);
      // The kernel dropped the closed fd from the set: nothing is reported for it.
      expect(ep.poll(0)).toEqual([]);
    } finally {
      ep.close();
      closeAll(a, b);
    }
  });

  it('a closed Epoll throws OSError EBADF from every method', () => {
    const ep = new Epoll();
    ep.close();
    expect(ep.closed).toBe(true);
    expect(errnoOf(() => ep.register(0, EPOLLIN))).toBe(E.EBADF);
    expect(errnoOf(() => ep.poll(0))).toBe(E.EBADF);
    expect(errnoOf(() => ep.fileno())).toBe(E.EBADF);
    ep.close();
  });

  it('EPOLLET: one event per new arrival, not repeated while the data stays unread', () => {
    const ep = new Epoll();
    const [a, b] = socketpair();
    try {
      ep.register(b, EPOLLIN | EPOLLET);
      expect(ep.poll(0)).toEqual([]);
      a.sendall('1');
      expect(ep.poll(1)).toEqual([[b.fileno(), EPOLLIN]]);
      expect(ep.poll(0)).toEqual([]);
      expect(ep.poll(0.05)).toEqual([]);
      a.sendall('2');
      expect(ep.poll(1)).toEqual([[b.fileno(), EPOLLIN]]);
      expect(ep.poll(0)).toEqual([]);
      expect(b.recv(8).toString()).toBe('12');
      // Level-triggered for contrast: unread data is reported on every wait.
      ep.modify(b, EPOLLIN);
      a.sendall('3');
      expect(ep.poll(1)).toEqual([[b.fileno(), EPOLLIN]]);
      expect(ep.poll(0)).toEqual([[b.fileno(), EPOLLIN]]);
    } finally {
      ep.close();
      closeAll(a, b);
    }
  });

  it('EPOLLET is unsigned in masks and accepted in its signed spelling', () => {
    const ep = new Epoll();
    const [a, b] = socketpair();
    try {
      expect(EPOLLET).toBe(0x80000000);
      ep.register(b, EPOLLIN | EPOLLET); // `|` makes it negative in JS
      a.sendall('x');
      const [[fd, ev]] = ep.poll(1) as [[number, number]];
      expect(fd).toBe(b.fileno());
      expect(ev).toBeGreaterThan(0);
    } finally {
      ep.close();
      closeAll(a, b);
    }
  });

  it('EPOLLONESHOT: one event, then silent until re-armed with modify', () => {
    const ep = new Epoll();
    const [a, b] = socketpair();
    try {
      ep.register(b, EPOLLIN | EPOLLONESHOT);
      a.sendall('1');
      expect(ep.poll(1)).toEqual([[b.fileno(), EPOLLIN]]);
      expect(ep.poll(0)).toEqual([]);
      a.sendall('2');
      expect(ep.poll(0.05)).toEqual([]);
      // Still registered (disarmed): a second register is EEXIST, modify re-arms.
      expect(errnoOf(() => ep.register(b, EPOLLIN))).toBe(E.EEXIST);
      ep.modify(b, EPOLLIN | EPOLLONESHOT);
      expect(ep.poll(1)).toEqual([[b.fileno(), EPOLLIN]]);
      expect(ep.poll(0)).toEqual([]);
    } finally {
      ep.close();
      closeAll(a, b);
    }
  });

  it('EPOLLOUT on a fresh socket and EPOLLRDHUP on a peer shutdown', () => {
    const ep = new Epoll();
    const [a, b] = socketpair();
    try {
      ep.register(b, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
      expect(ep.poll(0)).toEqual([[b.fileno(), EPOLLOUT]]);
      a.shutdown(SHUT_WR);
      expect(ep.poll(1)).toEqual([[b.fileno(), EPOLLIN | EPOLLOUT | EPOLLRDHUP]]);
    } finally {
      ep.close();
      closeAll(a, b);
    }
  });

  it('maxevents bounds one wait; the rest come on the next', () => {
    const ep = new Epoll();
    const pairs = Array.from({ length: 5 }, () => socketpair());
    try {
      for (const [, b] of pairs) ep.register(b, EPOLLOUT);
      expect(ep.poll(0, 2)).toHaveLength(2);
      expect(ep.poll(0)).toHaveLength(5);
      expect(() => ep.poll(0, 0)).toThrow(RangeError);
      expect(() => ep.poll(0, -2)).toThrow(RangeError);
    } finally {
      ep.close();
      for (const p of pairs) closeAll(...p);
    }
  });
});

describe('poll semantics', () => {
  it('Poll.unregister of an unknown fd is a KeyError, modify an OSError ENOENT', () => {
    const p = new Poll();
    expect(() => p.unregister(12345)).toThrow(expect.objectContaining({ name: 'KeyError' }));
    let err: unknown;
    try {
      p.modify(12345, POLLIN);
    } catch (e) {
      err = e;
    }
    expect((err as OSError).errno).toBe(E.ENOENT);
  });
  it('a poll timeout in milliseconds rounds fractions up', () => {
    const [a, b] = socketpair();
    const p = new Poll();
    try {
      p.register(b, POLLIN);
      const t0 = performance.now();
      expect(p.poll(30.2)).toEqual([]);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(30);
    } finally {
      closeAll(a, b);
    }
  });
  it('the allocation-free wait fills caller arrays up to their length', () => {
    const pairs = Array.from({ length: 3 }, () => socketpair());
    const p = new Poll();
    try {
      for (const [x] of pairs) p.register(x, POLLOUT);
      const fds = new Int32Array(2), evs = new Uint32Array(2);
      expect(p.wait(0, fds, evs)).toBe(2);
      expect([...evs]).toEqual([POLLOUT, POLLOUT]);
      expect(pairs.map(([x]) => x.fileno())).toEqual(expect.arrayContaining([...fds]));
    } finally {
      for (const pr of pairs) closeAll(...pr);
    }
  });
});

describe('select()', () => {
  it('returns the objects given, not their numbers', () => {
    const [a, b] = socketpair();
    try {
      a.sendall('x');
      const [r, w, x] = select([b], [a], [], 1);
      expect(r).toEqual([b]);
      expect(r[0]).toBe(b);
      expect(w).toEqual([a]);
      expect(x).toEqual([]);
    } finally {
      closeAll(a, b);
    }
  });
  it('select([b, a, b], …) reports an object listed twice twice, in input order, as Python does', () => {
    const [a, b] = socketpair();
    try {
      // Python 3.11: select.select([b, a, b], [b, a, b], [], 0) -> ([], [b, a, b], []) for an idle pair.
      const [r0, w0] = select([b, a, b], [b, a, b], [], 0);
      expect(r0).toEqual([]);
      expect(w0.map((s) => s.fileno())).toEqual([b.fileno(), a.fileno(), b.fileno()]);
      a.sendall('x');
      const [r] = select([b, a, b], [], [], 1);
      expect(r).toHaveLength(2);
      expect(r[0]).toBe(b);
      expect(r[1]).toBe(b);
      // Numbers too, each occurrence in its place.
      const [rn] = select([a.fileno(), b.fileno(), a.fileno(), b.fileno()], [], [], 1);
      expect(rn).toEqual([b.fileno(), b.fileno()]);
    } finally {
      closeAll(a, b);
    }
  });
  it('refuses a negative timeout (RangeError) and a negative fd', () => {
    expect(() => select([], [], [], -1)).toThrow(RangeError);
    expect(() => select([-1], [], [], 0)).toThrow(RangeError);
    expect(() => select(['3' as unknown as number], [], [], 0)).toThrow(TypeError);
  });
  it('SelectSelector refuses a descriptor >= FD_SETSIZE at register time with a RangeError naming the limit', () => {
    const [a, b] = socketpair();
    const dups: number[] = [];
    const s = new SelectSelector();
    try {
      let high = -1;
      while (high < FD_SETSIZE) dups.push((high = native.dup(a.fileno())));
      expect(() => s.register(high, EVENT_READ)).toThrow(/FD_SETSIZE/);
      expect(() => s.register(high, EVENT_READ)).toThrow(RangeError);
      expect(s.getMap().size).toBe(0);
    } finally {
      s.close();
      for (const fd of dups) closeFd(fd);
      closeAll(a, b);
    }
  });
});

describe('address round trips', () => {
  it.each(families)('$name: getsockname of the listener equals getpeername of the client, and back', (fc) => {
    const [l, addr] = listener(fc);
    const c = new Socket(fc.family, SOCK_STREAM);
    let s: Socket | undefined;
    try {
      c.connect(addr);
      let peer;
      [s, peer] = l.accept();
      expect(c.getpeername()).toEqual(addr);
      expect(s.getsockname()).toEqual(addr);
      expect(s.getpeername()).toEqual(peer);
      if (fc.family === AF_UNIX) {
        expect(typeof addr).toBe('string');
        // The client never bound: an unnamed Unix peer's address is ''.
        expect(peer).toBe('');
        expect(c.getsockname()).toBe('');
      } else {
        expect(c.getsockname()).toEqual(peer);
        const host = fc.family === AF_INET ? '127.0.0.1' : '::1';
        expect((addr as [string, number])[0]).toBe(host);
        expect((addr as [string, number])[1]).toBeGreaterThan(0);
        if (fc.family === AF_INET6) expect(addr).toHaveLength(4);
        else expect(addr).toHaveLength(2);
      }
    } finally {
      closeAll(l, c, s);
    }
  });

  it.skipIf(!HAVE_IPV6)('IPv6 keeps flowinfo and scope id fields (0 on loopback)', () => {
    const s = new Socket(AF_INET6, SOCK_STREAM);
    try {
      s.bind(['::1', 0]);
      const [host, port, flow, scope] = s.getsockname() as [string, number, number, number];
      expect([host, flow, scope]).toEqual(['::1', 0, 0]);
      expect(port).toBeGreaterThan(0);
    } finally {
      s.close();
    }
  });

  it('Unix abstract names ("\\0name") round-trip byte for byte', () => {
    const name = `\0an-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const l = new Socket(AF_UNIX, SOCK_STREAM);
    const c = new Socket(AF_UNIX, SOCK_STREAM);
    let s: Socket | undefined;
    try {
      l.bind(name);
      l.listen(4);
      expect(l.getsockname()).toBe(name);
      c.connect(name);
      let peer;
      [s, peer] = l.accept();
      expect(c.getpeername()).toBe(name);
      expect(s.getsockname()).toBe(name);
      expect(peer).toBe('');
      // A second bind of the same abstract name is EADDRINUSE, as for a path.
      const other = new Socket(AF_UNIX, SOCK_STREAM);
      try {
        expect(() => other.bind(name)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
      } finally {
        other.close();
      }
    } finally {
      closeAll(l, c, s);
    }
  });

  it('a bound Unix client shows its path at the server', () => {
    const [l, addr] = listener(families.find((f) => f.family === AF_UNIX)!);
    const c = new Socket(AF_UNIX, SOCK_STREAM);
    let s: Socket | undefined;
    try {
      const mine = unixPath();
      c.bind(mine);
      c.connect(addr);
      let peer;
      [s, peer] = l.accept();
      expect(peer).toBe(mine);
      expect(s.getpeername()).toBe(mine);
    } finally {
      closeAll(l, c, s);
    }
  });

  it('a socketpair end has the unnamed address \'\' on both sides', () => {
    const [a, b] = socketpair();
    try {
      expect(a.getsockname()).toBe('');
      expect(a.getpeername()).toBe('');
      expect(b.getpeername()).toBe('');
    } finally {
      closeAll(a, b);
    }
  });

  it('getpeername of an unconnected socket is OSError ENOTCONN', () => {
    const s = new Socket(AF_INET, SOCK_STREAM);
    try {
      expect(() => s.getpeername()).toThrow(expect.objectContaining({ errno: E.ENOTCONN, code: 'ENOTCONN' }));
    } finally {
      s.close();
    }
  });
});

describe('Poll argument limits (as Python test_poll)', () => {
  it('a mask outside 0..0xFFFF is a RangeError, not silently truncated; a timeout past INT_MAX ms too', () => {
    const p = new Poll();
    const [a, b] = socketpair();
    try {
      expect(() => p.register(a, 0x10000)).toThrow(RangeError);
      expect(() => p.register(a, -1)).toThrow(RangeError);
      p.register(a, POLLIN);
      expect(() => p.modify(a, 0x10000)).toThrow(RangeError);
      expect(() => p.poll(2 ** 31)).toThrow(RangeError);
      expect(p.poll(0)).toEqual([]);
    } finally {
      a.close();
      b.close();
    }
  });
});
