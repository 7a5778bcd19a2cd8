/**
 * The Socket API over real loopback sockets: modes and timeouts, connect,
 * bulk transfer, datagrams of every family, options, descriptor ownership,
 * the error taxonomy and the errno policy table of STYLE.md principle 5.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { closedPort, families, HAVE_IPV6, listener, thrown, unixPath } from './helpers/net.js';
import { native } from '../src/native.js';
import { OSError, SocketTimeout, GaiError, HError, KeyError, ExitNow, Interrupted, errno as E, errorcode, strerror } from '../src/errors.js';
import {
  Socket, socketpair, getaddrinfo, closeFd, createConnection,
  AF_INET, AF_INET6, AF_UNIX, SOCK_STREAM, SOCK_DGRAM, SOCK_NONBLOCK, SOL_SOCKET, SO_REUSEADDR, SO_RCVBUF,
  SO_LINGER, SO_TYPE, SO_ERROR, SO_KEEPALIVE, IPPROTO_TCP, TCP_NODELAY, SHUT_WR, MSG_PEEK, MSG_DONTWAIT,
  EAI_NONAME, EAI_AGAIN, EAI_FAIL,
} from '../src/socket.js';
import { Epoll, Poll, select, POLLIN, EPOLLIN } from '../src/select.js';
import { DefaultSelector, EVENT_READ } from '../src/selectors.js';

trackFds();

function closeAll(...socks: Array<Socket | undefined>): void {
  for (const s of socks) s?.close();
}



/** Resolves when the child exits (bounded: kills it after `ms`). */
function exited(child: ChildProcess, ms = 5000): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

describe('modes: blocking, nonblocking, timeout', () => {
  it('a new socket is blocking: gettimeout() null, getblocking() true, O_NONBLOCK clear', () => {
    const s = new Socket();
    try {
      expect(s.gettimeout()).toBeNull();
      expect(s.getblocking()).toBe(true);
      expect(native.getFlag(s.fileno(), 0)).toBe(0);
      expect(s.family).toBe(AF_INET);
      expect(s.type).toBe(SOCK_STREAM);
    } finally {
      s.close();
    }
  });

  it('settimeout(0) / setblocking(false) make it nonblocking; settimeout(s) keeps O_NONBLOCK with a timeout', () => {
    const s = new Socket();
    try {
      s.setblocking(false);
      expect([s.gettimeout(), s.getblocking(), native.getFlag(s.fileno(), 0)]).toEqual([0, false, 1]);
      s.settimeout(1.5);
      expect([s.gettimeout(), s.getblocking(), native.getFlag(s.fileno(), 0)]).toEqual([1.5, true, 1]);
      s.settimeout(null);
      expect([s.gettimeout(), s.getblocking(), native.getFlag(s.fileno(), 0)]).toEqual([null, true, 0]);
      s.settimeout(0);
      s.setblocking(true);
      expect([s.gettimeout(), native.getFlag(s.fileno(), 0)]).toEqual([null, 0]);
    } finally {
      s.close();
    }
  });

  it('settimeout refuses a negative value (RangeError) and a non-number (TypeError)', () => {
    const s = new Socket();
    try {
      expect(() => s.settimeout(-1)).toThrow(RangeError);
      expect(() => s.settimeout(NaN)).toThrow(TypeError);
      expect(() => s.settimeout('1' as unknown as number)).toThrow(TypeError);
      expect(s.gettimeout()).toBeNull();
    } finally {
      s.close();
    }
  });

  // macOS (and the portable build) has no SOCK_NONBLOCK: the constant is 0 there.
  it.skipIf(SOCK_NONBLOCK === 0)('SOCK_NONBLOCK in the type makes a nonblocking socket, and type reports the base type', () => {
    const s = new Socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    try {
      expect(s.gettimeout()).toBe(0);
      expect(s.type).toBe(SOCK_STREAM);
    } finally {
      s.close();
    }
  });

  it('recv with a 0.1 s timeout throws SocketTimeout after at least 0.1 s', () => {
    const [a, b] = socketpair();
    try {
      b.settimeout(0.1);
      const t0 = performance.now();
      const err = thrown(() => b.recv(10));
      const dt = performance.now() - t0;
      expect(err).toBeInstanceOf(SocketTimeout);
      expect(err).toBeInstanceOf(OSError);
      expect(err.message).toBe('timed out');
      expect((err as SocketTimeout).errno).toBe(E.ETIMEDOUT);
      expect((err as SocketTimeout).syscall).toBe('recv');
      expect(dt).toBeGreaterThanOrEqual(99);
      expect(dt).toBeLessThan(2000);
      // Data that is there before the deadline is returned.
      a.sendall('late');
      expect(b.recv(10).toString()).toBe('late');
    } finally {
      closeAll(a, b);
    }
  });

  it('accept with a timeout throws SocketTimeout; a nonblocking accept throws OSError EAGAIN', () => {
    const [l] = listener();
    try {
      l.settimeout(0.1);
      const t0 = performance.now();
      expect(thrown(() => l.accept())).toBeInstanceOf(SocketTimeout);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(99);
      l.setblocking(false);
      const err = thrown(() => l.accept()) as OSError;
      expect(err).not.toBeInstanceOf(SocketTimeout);
      expect([err.errno, err.code, err.syscall]).toEqual([E.EAGAIN, 'EAGAIN', 'accept']);
    } finally {
      l.close();
    }
  });

  it('an accepted socket is blocking even when the listener has a timeout (Python: no default timeout)', () => {
    const [l, addr] = listener();
    const c = new Socket();
    let s: Socket | undefined;
    try {
      l.settimeout(2);
      c.connect(addr);
      [s] = l.accept();
      expect(s.gettimeout()).toBeNull();
      expect(native.getFlag(s.fileno(), 0)).toBe(0);
    } finally {
      closeAll(l, c, s);
    }
  });
});

describe('connect / connectEx', () => {
  it.each(families)('$name: a blocking connect reaches the listener', (fc) => {
    const [l, addr] = listener(fc);
    const c = new Socket(fc.family, SOCK_STREAM);
    let s: Socket | undefined;
    try {
      c.connect(addr);
      [s] = l.accept();
      c.sendall('ping');
      expect(s.recv(4).toString()).toBe('ping');
    } finally {
      closeAll(l, c, s);
    }
  });

  it('to a closed port: connect throws OSError ECONNREFUSED, connectEx returns 111', () => {
    const port = closedPort();
    const c1 = new Socket();
    const c2 = new Socket();
    try {
      const err = thrown(() => c1.connect(['127.0.0.1', port])) as OSError;
      expect(err).toBeInstanceOf(OSError);
      expect([err.errno, err.code, err.syscall, err.message]).toEqual([E.ECONNREFUSED, 'ECONNREFUSED', 'connect', `[Errno ${E.ECONNREFUSED}] Connection refused`]);
      expect(c2.connectEx(['127.0.0.1', port])).toBe(E.ECONNREFUSED);
    } finally {
      closeAll(c1, c2);
    }
  });

  it('nonblocking: connectEx returns EINPROGRESS and connect throws OSError EINPROGRESS', () => {
    const [l, addr] = listener();
    const c1 = new Socket(), c2 = new Socket();
    try {
      c1.setblocking(false);
      c2.setblocking(false);
      expect([E.EINPROGRESS, 0]).toContain(c1.connectEx(addr));
      const err = thrown(() => c2.connect(addr)) as OSError;
      expect(err.errno).toBe(E.EINPROGRESS);
      expect(err.code).toBe('EINPROGRESS');
      // Both complete: the listener sees two connections.
      l.settimeout(2);
      const [s1] = l.accept();
      const [s2] = l.accept();
      closeAll(s1, s2);
    } finally {
      closeAll(l, c1, c2);
    }
  });

  it('with a timeout, connect to a listener succeeds and the socket keeps its timeout', () => {
    const [l, addr] = listener();
    const c = new Socket();
    try {
      c.settimeout(2);
      c.connect(addr);
      expect(c.gettimeout()).toBe(2);
      expect(c.getpeername()).toEqual(addr);
    } finally {
      closeAll(l, c);
    }
  });

  it('a host name resolves (localhost) and createConnection connects', () => {
    const [l, addr] = listener();
    const port = (addr as [string, number])[1];
    const c = new Socket();
    let cc: Socket | undefined;
    try {
      c.connect(['localhost', port]);
      expect((c.getpeername() as [string, number])[0]).toBe('127.0.0.1');
      cc = createConnection(['127.0.0.1', port], 2);
      expect(cc.gettimeout()).toBe(2);
    } finally {
      closeAll(l, c, cc);
    }
  });
});

describe('data transfer', () => {
  it('sendall of 4 MiB through a socketpair arrives whole at a reader in another process', async () => {
    const [a, b] = socketpair();
    const data = randomBytes(4 * 1024 * 1024);
    const reader = [
      "const fs = require('fs'), h = require('crypto').createHash('sha256');",
      'const buf = Buffer.alloc(65536); let n = 0;',
      'for (;;) { const r = fs.readSync(3, buf, 0, buf.length, null); if (r === 0) break; n += r; h.update(buf.subarray(0, r)); }',
      "process.stdout.write(n + ' ' + h.digest('hex'));",
    ].join('\n');
    let child: ChildProcess | undefined;
    try {
      child = spawn(process.execPath, ['-e', reader], { stdio: ['ignore', 'pipe', 'inherit', b.fileno()] });
      b.close();
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      // Blocks this thread until the child has taken all but the last socket buffer.
      a.sendall(data);
      a.close();
      expect(await exited(child)).toBe(0);
      expect(out).toBe(`${data.length} ${createHash('sha256').update(data).digest('hex')}`);
    } finally {
      closeAll(a, b);
      if (child) await exited(child);
    }
  });

  it('send accepts strings (UTF-8) and any Uint8Array; recvInto fills a caller buffer; MSG_PEEK leaves data', () => {
    const [a, b] = socketpair();
    try {
      expect(a.send('héllo')).toBe(6);
      expect(a.send(new Uint8Array([33]))).toBe(1);
      expect(b.recv(3, MSG_PEEK).toString('latin1')).toBe('h\xc3\xa9');
      const buf = Buffer.alloc(16);
      expect(b.recvInto(buf)).toBe(7);
      expect(buf.subarray(0, 7).toString()).toBe('héllo!');
      expect(() => b.recvInto(buf, 17)).toThrow(RangeError);
      expect(() => a.send(42 as unknown as string)).toThrow(TypeError);
    } finally {
      closeAll(a, b);
    }
  });

  it('shutdown(SHUT_WR) gives EOF at the peer while the other direction keeps working', () => {
    const [l, addr] = listener();
    const c = new Socket();
    let s: Socket | undefined;
    try {
      c.connect(addr);
      [s] = l.accept();
      c.sendall('last');
      c.shutdown(SHUT_WR);
      expect(s.recv(10).toString()).toBe('last');
      expect(s.recv(10).length).toBe(0);
      s.sendall('reply');
      expect(c.recv(10).toString()).toBe('reply');
      expect(thrown(() => c.send('x'))).toMatchObject({ errno: E.EPIPE, code: 'EPIPE' });
    } finally {
      closeAll(l, c, s);
    }
  });

  const dgramCases = [
    { name: 'UDP IPv4', family: AF_INET, addr: (): [string, number] => ['127.0.0.1', 0], skip: false },
    { name: 'UDP IPv6', family: AF_INET6, addr: (): [string, number] => ['::1', 0], skip: !HAVE_IPV6 },
    { name: 'Unix dgram', family: AF_UNIX, addr: () => unixPath(), skip: false },
  ];
  describe.each(dgramCases)('sendto / recvfrom over $name', (dc) => {
    it.skipIf(dc.skip)('a datagram arrives with its sender address, flags and truncation as recvfrom(2)', () => {
      const a = new Socket(dc.family, SOCK_DGRAM);
      const b = new Socket(dc.family, SOCK_DGRAM);
      try {
        a.bind(dc.addr());
        b.bind(dc.addr());
        const aAddr = a.getsockname(), bAddr = b.getsockname();
        expect(a.sendto('one', bAddr)).toBe(3);
        expect(a.sendto(Buffer.from('two!'), 0, bAddr)).toBe(4);
        b.settimeout(2);
        expect(b.recvfrom(64)).toEqual([Buffer.from('one'), aAddr]);
        // MSG_PEEK leaves the datagram; a short read truncates it and drops the rest.
        expect(b.recvfrom(64, MSG_PEEK)[0].toString()).toBe('two!');
        expect(b.recvfrom(2)[0].toString()).toBe('tw');
        b.setblocking(false);
        expect(thrown(() => b.recvfrom(64))).toMatchObject({ errno: E.EAGAIN });
        expect(thrown(() => b.recv(64, MSG_DONTWAIT))).toMatchObject({ errno: E.EAGAIN });
      } finally {
        closeAll(a, b);
      }
    });
  });

  it('an unbound Unix datagram sender has no address (null, Python: None)', () => {
    const a = new Socket(AF_UNIX, SOCK_DGRAM);
    const b = new Socket(AF_UNIX, SOCK_DGRAM);
    try {
      b.bind(unixPath());
      a.sendto('anon', b.getsockname());
      b.settimeout(2);
      const [data, from] = b.recvfrom(16);
      expect(data.toString()).toBe('anon');
      expect(from).toBeNull();
    } finally {
      closeAll(a, b);
    }
  });
});

describe('options and flags', () => {
  it('setsockopt / getsockopt with ints and booleans', () => {
    const s = new Socket();
    try {
      expect(s.getsockopt(SOL_SOCKET, SO_REUSEADDR)).toBe(0);
      s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
      expect(s.getsockopt(SOL_SOCKET, SO_REUSEADDR)).toBe(1);
      s.setsockopt(SOL_SOCKET, SO_KEEPALIVE, true);
      expect(s.getsockopt(SOL_SOCKET, SO_KEEPALIVE)).toBe(1);
      s.setsockopt(SOL_SOCKET, SO_KEEPALIVE, false);
      expect(s.getsockopt(SOL_SOCKET, SO_KEEPALIVE)).toBe(0);
      s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
      expect(s.getsockopt(IPPROTO_TCP, TCP_NODELAY)).not.toBe(0);
      s.setsockopt(SOL_SOCKET, SO_RCVBUF, 65536);
      // Linux doubles the value for bookkeeping (socket(7)).
      expect(s.getsockopt(SOL_SOCKET, SO_RCVBUF)).toBeGreaterThanOrEqual(65536);
      expect(s.getsockopt(SOL_SOCKET, SO_TYPE)).toBe(SOCK_STREAM);
      expect(s.getsockopt(SOL_SOCKET, SO_ERROR)).toBe(0);
      expect(thrown(() => s.getsockopt(SOL_SOCKET, 0x7fff))).toMatchObject({ code: 'ENOPROTOOPT', syscall: 'getsockopt' });
      expect(() => s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 'yes' as unknown as number)).toThrow(TypeError);
    } finally {
      s.close();
    }
  });

  it('setsockopt / getsockopt with a Buffer: SO_LINGER round-trips struct linger', () => {
    const s = new Socket();
    try {
      const linger = Buffer.from(new Int32Array([1, 7]).buffer);
      s.setsockopt(SOL_SOCKET, SO_LINGER, linger);
      const got = s.getsockopt(SOL_SOCKET, SO_LINGER, 8);
      expect(Buffer.isBuffer(got)).toBe(true);
      expect(got.equals(linger)).toBe(true);
      expect(s.getsockopt(SOL_SOCKET, SO_LINGER, 4)).toHaveLength(4);
      expect(() => s.getsockopt(SOL_SOCKET, SO_LINGER, -1)).toThrow(RangeError);
      // A too-short struct is the kernel's EINVAL, returned as an OSError.
      expect(thrown(() => s.setsockopt(SOL_SOCKET, SO_LINGER, Buffer.alloc(2)))).toMatchObject({ errno: E.EINVAL });
    } finally {
      s.close();
    }
  });

  it('descriptors are not inheritable by default; setInheritable toggles FD_CLOEXEC', () => {
    const s = new Socket();
    try {
      expect(s.getInheritable()).toBe(false);
      expect(native.getFlag(s.fileno(), 1)).toBe(1);
      s.setInheritable(true);
      expect(s.getInheritable()).toBe(true);
      expect(native.getFlag(s.fileno(), 1)).toBe(0);
      s.setInheritable(false);
      expect(s.getInheritable()).toBe(false);
    } finally {
      s.close();
    }
  });
});

describe('descriptor ownership', () => {
  it('detach gives up the fd without closing it', () => {
    const s = new Socket();
    const fd = s.fileno();
    const got = s.detach();
    try {
      expect(got).toBe(fd);
      expect(s.fileno()).toBe(-1);
      expect(s.closed).toBe(true);
      s.close();
      expect(native.getFlag(fd, 0)).toBe(0); // still open
    } finally {
      closeFd(fd);
    }
    expect(native.getFlag(fd, 0)).toBe(-E.EBADF);
  });

  it('close twice is harmless; use after close throws OSError EBADF', () => {
    const s = new Socket();
    s.close();
    s.close();
    expect(s.fileno()).toBe(-1);
    const calls: Array<[string, () => unknown]> = [
      ['send', () => s.send('x')],
      ['recv', () => s.recv(1)],
      ['bind', () => s.bind(['127.0.0.1', 0])],
      ['listen', () => s.listen()],
      ['accept', () => s.accept()],
      ['connect', () => s.connect(['127.0.0.1', 1])],
      ['getsockname', () => s.getsockname()],
      ['getpeername', () => s.getpeername()],
      ['setsockopt', () => s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)],
      ['shutdown', () => s.shutdown(SHUT_WR)],
      ['settimeout', () => s.settimeout(1)],
    ];
    for (const [syscall, f] of calls) {
      const err = thrown(f) as OSError;
      expect(err, syscall).toBeInstanceOf(OSError);
      expect([err.errno, err.code, err.syscall], syscall).toEqual([E.EBADF, 'EBADF', syscall]);
    }
  });

  it('Socket.fromFd duplicates: a new fd, the same socket, the family and type read from the kernel', () => {
    const [a, b] = socketpair();
    const [l] = listener();
    let copy: Socket | undefined, lc: Socket | undefined;
    try {
      copy = Socket.fromFd(a.fileno());
      expect(copy.fileno()).not.toBe(a.fileno());
      expect(copy.family).toBe(AF_UNIX);
      expect(copy.type).toBe(SOCK_STREAM);
      expect(copy.getInheritable()).toBe(false);
      a.close();
      copy.sendall('via copy');
      expect(b.recv(16).toString()).toBe('via copy');
      lc = Socket.fromFd(l.fileno());
      expect([lc.family, lc.type]).toEqual([AF_INET, SOCK_STREAM]);
      expect(lc.getsockname()).toEqual(l.getsockname());
      const err = thrown(() => Socket.fromFd(a.fileno() < 0 ? 999_999 : a.fileno())) as OSError;
      expect(err.errno).toBe(E.EBADF);
    } finally {
      closeAll(a, b, l, copy, lc);
    }
  });
});

describe('errors', () => {
  const rows: Array<[string, string, string]> = [
    ['ECONNREFUSED', 'connect', 'Connection refused'],
    ['EAGAIN', 'recv', 'Resource temporarily unavailable'],
    ['EBADF', 'close', 'Bad file descriptor'],
    ['EADDRINUSE', 'bind', 'Address already in use'],
    ['EINPROGRESS', 'connect', 'Operation now in progress'],
    ['ENOENT', 'bind', 'No such file or directory'],
  ];
  it.each(rows)('OSError %s: positive errno, code, syscall, Python-style message', (code, syscall, text) => {
    const num = E[code]!;
    const err = new OSError(-num, syscall);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('OSError');
    expect(err.errno).toBe(num);
    expect(err.errno).toBeGreaterThan(0);
    expect(err.code).toBe(code);
    expect(errorcode(num)).toBe(code);
    expect(err.syscall).toBe(syscall);
    expect(err.strerror).toBe(text);
    expect(strerror(num)).toBe(text);
    expect(err.message).toBe(`[Errno ${num}] ${text}`);
    expect(new OSError(num, syscall).message).toBe(err.message);
  });

  it('a real failure carries the file name for a Unix path', () => {
    const s = new Socket(AF_UNIX, SOCK_STREAM);
    const p = '/nonexistent-dir-an/sock';
    try {
      const err = thrown(() => s.bind(p)) as OSError;
      expect([err.code, err.syscall, err.filename]).toEqual(['ENOENT', 'bind', p]);
      expect(err.message).toBe(`[Errno ${E.ENOENT}] No such file or directory: '${p}'`);
    } finally {
      s.close();
    }
  });

  it('the taxonomy: each error has a fixed name and code', () => {
    const table: Array<[Error, string, string]> = [
      [new OSError(E.EPIPE, 'send'), 'OSError', 'EPIPE'],
      [new SocketTimeout('recv'), 'SocketTimeout', 'ETIMEDOUT'],
      [new GaiError(EAI_NONAME, 'Name or service not known', 'x'), 'GaiError', 'EAI_NONAME'],
      [new HError(1, 'Unknown host'), 'HError', 'HOST_NOT_FOUND'],
      [new KeyError(5), 'KeyError', 'ERR_KEY'],
      [new ExitNow(), 'ExitNow', 'ERR_EXIT_NOW'],
      [new Interrupted('SIGINT'), 'Interrupted', 'ERR_INTERRUPTED'],
    ];
    for (const [err, name, code] of table) {
      expect(err).toBeInstanceOf(Error);
      expect(err.name).toBe(name);
      expect((err as Error & { code: string }).code).toBe(code);
    }
    expect(new SocketTimeout()).toBeInstanceOf(OSError);
    expect(new GaiError(EAI_NONAME, 'm')).not.toBeInstanceOf(OSError);
    expect(new HError(1, 'm')).not.toBeInstanceOf(OSError);
    expect(new Interrupted('SIGTERM').signal).toBe('SIGTERM');
    // A kind of ExitNow: it passes handleError by, as Python re-raises KeyboardInterrupt.
    expect(new Interrupted('SIGTERM')).toBeInstanceOf(ExitNow);
  });

  it('an unresolvable name ("no-such-host.invalid") is a GaiError from getaddrinfo and connect', () => {
    const host = 'no-such-host.invalid';
    const err = thrown(() => getaddrinfo(host, 80)) as GaiError;
    expect(err).toBeInstanceOf(GaiError);
    expect(err.name).toBe('GaiError');
    expect(err.syscall).toBe('getaddrinfo');
    // EAI_NONAME normally; EAI_AGAIN / EAI_FAIL when the machine has no resolver at all.
    expect([EAI_NONAME, EAI_AGAIN, EAI_FAIL]).toContain(err.errno);
    expect(err.errno).toBeLessThan(0);
    expect(err.code).toMatch(/^EAI_/);
    expect(err.message).toMatch(new RegExp(`^\\[Errno ${err.errno}\\] .+: '${host}'$`));
    const s = new Socket();
    try {
      expect(thrown(() => s.connect([host, 80]))).toBeInstanceOf(GaiError);
    } finally {
      s.close();
    }
  });
});

/**
 * STYLE.md principle 5, one row per call class (the table heads src/select.ts):
 * waits retry EINTR with the remaining time; I/O returns EAGAIN as a value and
 * retries EINTR; connect returns EINPROGRESS; close is never retried.
 */
describe('errno policy by call class', () => {
  /** Starts a child that exits after `s` seconds: its SIGCHLD interrupts a blocking wait (EINTR). */
  const exitSoon = (s = 0.05) => spawn('sleep', [String(s)], { stdio: 'ignore' });

  const waits: Array<[string, (fd: number) => unknown]> = [
    ['select()', (fd) => select([fd], [], [], 0.3)[0]],
    ['Poll#poll (ms)', (fd) => {
      const p = new Poll();
      p.register(fd, POLLIN);
      return p.poll(300);
    }],
    ['Socket#recv with a timeout', (fd) => {
      const s = Socket.fromFd(fd);
      try {
        s.settimeout(0.3);
        return thrown(() => s.recv(1)) instanceof SocketTimeout ? [] : ['no timeout'];
      } finally {
        s.close();
      }
    }],
    ['DefaultSelector#select', (fd) => {
      const sel = new DefaultSelector();
      try {
        sel.register(fd, EVENT_READ);
        return sel.select(0.3);
      } finally {
        sel.close();
      }
    }],
    ...(native.epollCreate
      ? [['Epoll#poll (s)', (fd: number) => {
          const ep = new Epoll();
          try {
            ep.register(fd, EPOLLIN);
            return ep.poll(0.3);
          } finally {
            ep.close();
          }
        }] as [string, (fd: number) => unknown]]
      : []),
  ];
  it.each(waits)('waits: %s retries EINTR (a child exits mid-wait) and still lasts the full 300 ms', async (_name, wait) => {
    const [a, b] = socketpair();
    const child = exitSoon();
    try {
      const t0 = performance.now();
      const r = wait(b.fileno());
      const dt = performance.now() - t0;
      expect(r).toEqual([]);
      expect(dt).toBeGreaterThanOrEqual(299);
      expect(dt).toBeLessThan(3000);
      // The child really ended during the wait (its exit is what sent SIGCHLD).
      expect(await exited(child)).toBe(0);
    } finally {
      closeAll(a, b);
      await exited(child);
    }
  });

  it('I/O: a blocking recv interrupted by SIGCHLD is retried and returns the data that comes later', async () => {
    const [a, b] = socketpair();
    // Timed from before the writer starts: its 300 ms sleep is the least the recv can take.
    const t0 = performance.now();
    const writer = spawn('sh', ['-c', 'sleep 0.3; printf x >&3'], { stdio: ['ignore', 'ignore', 'inherit', b.fileno()] });
    b.close();
    const child = exitSoon();
    try {
      expect(a.recv(1).toString()).toBe('x');
      expect(performance.now() - t0).toBeGreaterThanOrEqual(299);
    } finally {
      a.close();
      await exited(child);
      await exited(writer);
    }
  });

  it('I/O: EAGAIN is a returned value from the addon (recv, send, accept), never a throw', () => {
    const [a, b] = socketpair();
    const [l] = listener();
    try {
      a.setblocking(false);
      l.setblocking(false);
      const buf = Buffer.alloc(65536);
      expect(native.recv(a.fileno(), buf, 0, buf.length, 0)).toBe(-E.EAGAIN);
      let r = 0, total = 0;
      while ((r = native.send(a.fileno(), buf, 0, buf.length, 0)) > 0) total += r;
      expect(r).toBe(-E.EAGAIN);
      expect(total).toBeGreaterThan(0);
      expect(native.accept4(l.fileno(), 0)).toBe(-E.EAGAIN);
    } finally {
      closeAll(a, b, l);
    }
  });

  it('connect: EINPROGRESS is a returned value; the outcome comes later through SO_ERROR', () => {
    const [l, addr] = listener();
    const c = new Socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    try {
      const r = native.connect(c.fileno(), AF_INET, addr as [string, number]);
      expect([-E.EINPROGRESS, 0]).toContain(r);
      // A second connect while it goes on is EALREADY / EISCONN: why EINTR is not retried.
      const again = native.connect(c.fileno(), AF_INET, addr as [string, number]);
      expect([-E.EALREADY, -E.EISCONN, 0]).toContain(again);
    } finally {
      closeAll(l, c);
    }
  });

  it('close: never retried; the number is gone after the first call (a second is -EBADF)', () => {
    const s = new Socket();
    const fd = s.detach();
    expect(native.close(fd)).toBe(0);
    expect(native.close(fd)).toBe(-E.EBADF);
    expect(thrown(() => closeFd(fd))).toMatchObject({ errno: E.EBADF, syscall: 'close' });
  });
});
