/**
 * What every platform's path through native/portable.h must give, whichever
 * it takes: SOCK_CLOEXEC / accept4 / pipe2 on Linux and FreeBSD, their
 * fcntl fallbacks on macOS and in the portable build (npm run test:portable
 * runs this file against those fallbacks on Linux).
 */
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { listener } from './helpers/net.js';
import { native } from '../src/native.js';
import { errno as E } from '../src/errors.js';
import {
  AF_INET, AF_UNIX, MSG_NOSIGNAL, SO_NOSIGPIPE, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_STREAM, Socket, socketpair,
} from '../src/socket.js';
import { SignalTrap } from '../src/asyncore/signals.js';

trackFds();

const CLOEXEC = 1;
const NONBLOCK = 0;

function closeAll(fds: number[]): void {
  for (const fd of fds) native.close(fd);
}

/**
 * Connects a client to a nonblocking listener and accepts it with
 * accept4(flags); returns [client, accepted fd] or the errno. (accept(2) on
 * macOS and the BSDs hands the listener's O_NONBLOCK on; accept4 must not.)
 */
function acceptOne(flags: number): [Socket, number] | number {
  const [l, addr] = listener();
  const c = new Socket(AF_INET, SOCK_STREAM);
  try {
    l.setblocking(false);
    c.connect(addr);
    const r = native.accept4(l.fileno(), flags);
    if (typeof r === 'number') {
      c.close();
      return -r;
    }
    return [c, r[0]];
  } finally {
    l.close();
  }
}

describe('every descriptor the addon creates is close-on-exec, on every platform path', () => {
  it('socket(2)', () => {
    const fd = native.socket(AF_INET, SOCK_STREAM, 0);
    expect(fd).toBeGreaterThanOrEqual(0);
    try {
      expect(native.getFlag(fd, CLOEXEC)).toBe(1);
      expect(native.getFlag(fd, NONBLOCK)).toBe(0);
    } finally {
      native.close(fd);
    }
  });

  it.each([
    ['socketpair(AF_UNIX, SOCK_STREAM)', () => native.socketpair(AF_UNIX, SOCK_STREAM, 0)],
    ['socketpair(AF_UNIX, SOCK_DGRAM)', () => native.socketpair(AF_UNIX, SOCK_DGRAM, 0)],
    ['pipe', () => native.pipe()],
  ] as const)('%s: both ends', (_name, make) => {
    const r = make();
    expect(Array.isArray(r)).toBe(true);
    const fds = r as number[];
    try {
      expect(fds.map((fd) => native.getFlag(fd, CLOEXEC))).toEqual([1, 1]);
    } finally {
      closeAll(fds);
    }
  });

  it('accept4(fd, 0) from a nonblocking listener: close-on-exec and blocking', () => {
    const r = acceptOne(0);
    expect(Array.isArray(r)).toBe(true);
    const [c, fd] = r as [Socket, number];
    try {
      expect(native.getFlag(fd, CLOEXEC)).toBe(1);
      expect(native.getFlag(fd, NONBLOCK)).toBe(0);
    } finally {
      native.close(fd);
      c.close();
    }
  });

  // macOS (and the portable build) has no SOCK_NONBLOCK to ask with.
  it.skipIf(SOCK_NONBLOCK === 0)('accept4(fd, SOCK_NONBLOCK): close-on-exec and nonblocking', () => {
    const r = acceptOne(SOCK_NONBLOCK);
    expect(Array.isArray(r)).toBe(true);
    const [c, fd] = r as [Socket, number];
    try {
      expect(native.getFlag(fd, CLOEXEC)).toBe(1);
      expect(native.getFlag(fd, NONBLOCK)).toBe(1);
    } finally {
      native.close(fd);
      c.close();
    }
  });

  it('accept4 with a flag it does not know is EINVAL (the kernel call and the fallback agree)', () => {
    expect(acceptOne(1 << 30)).toBe(E.EINVAL);
  });

  it("a signal trap's pipe: close-on-exec and nonblocking", () => {
    const trap = new SignalTrap(['SIGUSR2']);
    try {
      expect(native.getFlag(trap.fd, CLOEXEC)).toBe(1);
      expect(native.getFlag(trap.fd, NONBLOCK)).toBe(1);
    } finally {
      trap.close();
    }
  });
});

describe('a send to a closed peer is EPIPE and raises no SIGPIPE', () => {
  // Linux and the BSDs pass MSG_NOSIGNAL, macOS sets SO_NOSIGPIPE. The
  // portable build on Linux has neither: there only Node's SIG_IGN keeps
  // SIGPIPE from killing the process, and a trap would see it.
  it.skipIf(MSG_NOSIGNAL === 0 && SO_NOSIGPIPE === 0)('with SIGPIPE trapped, the trap sees nothing', () => {
    const trap = new SignalTrap(['SIGPIPE']);
    const [a, b] = socketpair();
    try {
      b.close();
      expect(native.send(a.fileno(), Buffer.from('x'), 0, 1, 0)).toBe(-E.EPIPE);
      expect(trap.take()).toBeNull();
    } finally {
      a.close();
      trap.close();
    }
  });
});
