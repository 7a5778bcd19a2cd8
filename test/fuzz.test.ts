/**
 * Bad input never crashes: random values of every kind (wrong types, NaN,
 * -0, ±Infinity, huge and negative numbers, floats, strings, objects, arrays,
 * symbols, bigints, typed arrays of every kind, detached and too-short
 * buffers, closed descriptors) thrown at every function of the raw addon and
 * every public method of Socket, Poll, Epoll, select() and the selectors.
 * Each call must return or throw TypeError / RangeError / OSError (incl.
 * SocketTimeout) / KeyError / GaiError, and the process must survive.
 *
 * Safety: a descriptor argument is never one this process might be using.
 * Fd positions only get values that are not descriptors at all, numbers
 * >= 100000 (above the 20 000 open-file limit), a descriptor this file just
 * opened and closed, or descriptors this file opened for the run (closed
 * after it). Waits only get timeouts that cannot block for long.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { native, type FdWatcherInstance } from '../src/native.js';
import { GaiError, KeyError, OSError } from '../src/errors.js';
import { Socket, socketpair, AF_INET, AF_UNIX, SOCK_DGRAM, SOCK_STREAM } from '../src/socket.js';
import { Epoll, HAVE_EPOLL, Poll, select } from '../src/select.js';
import { BaseSelector, DefaultSelector, EpollSelector, PollSelector, SelectSelector } from '../src/selectors.js';

trackFds();

const RUNS = Number(process.env.FUZZ_RUNS ?? 800);
const params = { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined };

/** The only errors a call may throw on bad input. */
function allowed(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError || e instanceof OSError || e instanceof KeyError || e instanceof GaiError;
}

function call(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    if (!allowed(e)) throw e;
    return e;
  }
}

// --- values -----------------------------------------------------------------

/** A token resolved at call time: a descriptor this file opened and closed just before the call. */
const CLOSED = Symbol('closed fd');
/** Tokens resolved to live descriptors this file opened for the run. */
const OWN_SOCK = Symbol('own socket');
const OWN_EPFD = Symbol('own epoll fd');

const detached = <T extends ArrayBufferView>(v: T): T => {
  structuredClone(v, { transfer: [v.buffer as ArrayBuffer] });
  // fast-check cannot print a detached view by reading it; give it a name.
  Object.defineProperty(v, fc.toStringMethod, { value: () => `detached ${v.constructor.name}` });
  return v;
};

const typedArrays: fc.Arbitrary<unknown> = fc.oneof(
  fc.nat(64).map((n) => Buffer.alloc(n)),
  fc.nat(64).map((n) => new Uint8Array(n)),
  fc.nat(16).map((n) => new Int8Array(n)),
  fc.nat(16).map((n) => new Uint8ClampedArray(n)),
  fc.nat(16).map((n) => new Int16Array(n)),
  fc.nat(16).map((n) => new Uint16Array(n)),
  fc.array(fc.integer({ min: -3, max: 2000 }), { maxLength: 16 }).map((a) => Int32Array.from(a)),
  fc.array(fc.nat(), { maxLength: 16 }).map((a) => Uint32Array.from(a)),
  fc.nat(16).map((n) => new Float32Array(n)),
  fc.nat(16).map((n) => new Float64Array(n)),
  fc.nat(8).map((n) => new BigInt64Array(n)),
  fc.nat(16).map((n) => new DataView(new ArrayBuffer(n))),
  fc.nat(64).map((n) => detached(new Uint8Array(n))),
  fc.nat(16).map((n) => detached(new Int32Array(n))),
  fc.nat(16).map((n) => detached(new Uint32Array(n))),
  fc.constant(null).map(() => new Uint8Array(new ArrayBuffer(16), 4, 4)),
  fc.constant(null).map(() => new Uint8Array(new SharedArrayBuffer(8))),
  fc.constant(null).map(() => new ArrayBuffer(8)),
);

const numbers: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -5, max: 70 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(
    NaN, -0, Infinity, -Infinity, 0.5, 1.5, -1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32,
    2 ** 53, -(2 ** 53), Number.MAX_VALUE, Number.MIN_VALUE, 0x80000000, 0xffff, 65536, 1e300,
  ),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
);

const strings: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('', '\0', '\0abstract', '127.0.0.1', '::1', '0', '-1', 'NaN', '1e3', 'x'.repeat(200)),
);

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  numbers,
  strings,
  fc.boolean(),
  fc.constantFrom(null, undefined, Symbol('s'), () => 0, new Date(0), /x/, new Map(), Promise.resolve()),
  typedArrays,
);

/** Any value at all, including objects with a fileno() and nested arrays. */
const anyArg: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: leaf },
  { weight: 1, arbitrary: fc.array(leaf, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.object({ maxDepth: 1 }) },
  { weight: 1, arbitrary: leaf.map((v) => ({ fileno: () => v })) },
);

/** Whether `v` cannot name a descriptor this process may hold (see the file's notes). */
function safeFd(v: unknown): boolean {
  if (typeof v === 'number') return !(Number.isInteger(v) && v >= 0 && v < 100000);
  if (typeof v === 'object' && v !== null && 'fileno' in v && typeof (v as { fileno: unknown }).fileno === 'function') {
    return safeFd((v as { fileno(): unknown }).fileno());
  }
  return true;
}

/** A value for a descriptor position. */
const fdArg: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: anyArg.filter(safeFd) },
  { weight: 2, arbitrary: fc.constant(CLOSED) },
  { weight: 1, arbitrary: fc.integer({ min: 100000, max: 2 ** 31 - 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: -1 }) },
);
const fdOrOwn = (own: symbol): fc.Arbitrary<unknown> => fc.oneof({ weight: 2, arbitrary: fdArg }, { weight: 1, arbitrary: fc.constant(own) });

/** A timeout that cannot block: tiny, zero, or not a usable number at all (never null / negative = forever). */
const safeTimeout: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(0, -0, NaN, 0.001),
  fc.double({ min: 0, max: 0.002, noNaN: true }),
  anyArg.filter((v) => v !== null && v !== undefined && typeof v !== 'number' && !(typeof v === 'object' && 'fileno' in (v as object))),
);

/** Hosts that never reach a DNS server: numeric, the wildcard, localhost, and a reserved .invalid name. */
const safeHost = fc.constantFrom('127.0.0.1', '::1', '', 'localhost', '<broadcast>', '0.0.0.0', '1.2.3', '::ffff:127.0.0.1', 'no-such-host.invalid', '127.0.0.1%1');
const safeAddress: fc.Arbitrary<unknown> = fc.oneof(
  fc.tuple(safeHost, numbers),
  fc.tuple(safeHost, fc.integer({ min: 0, max: 65535 })),
  fc.tuple(safeHost, fc.integer({ min: 0, max: 65535 }), numbers, numbers),
  anyArg.filter((v) => typeof v !== 'string' && !Array.isArray(v)),
);

// --- the run's own descriptors -----------------------------------------------

interface Run {
  closedFd(): number;
  resolve(v: unknown): unknown;
  own: number[];
  created: number[];
  watchers: FdWatcherInstance[];
  sockets: Socket[];
  finish(): void;
}

function newRun(): Run {
  const run: Run = {
    own: [],
    created: [],
    watchers: [],
    sockets: [],
    closedFd() {
      const fd = native.socket(AF_UNIX, SOCK_STREAM, 0);
      expect(native.close(fd)).toBe(0);
      return fd;
    },
    resolve(v) {
      if (v === CLOSED) return run.closedFd();
      if (v === OWN_SOCK) {
        const pair = native.socketpair(AF_UNIX, SOCK_STREAM, 0) as [number, number];
        run.own.push(...pair);
        native.setFlag(pair[0], 0, true);
        return pair[0];
      }
      if (v === OWN_EPFD) {
        const ep = native.epollCreate!(0);
        run.own.push(ep);
        return ep;
      }
      return v;
    },
    finish() {
      // Watchers first: libuv must forget a descriptor before it is closed.
      for (const w of run.watchers) w.close();
      for (const s of run.sockets) s.close();
      for (const fd of [...run.created, ...run.own]) native.close(fd);
    },
  };
  return run;
}

/** Records descriptors a call created (a number, a pair, an [fd, address] result) so the run closes them. */
function adopt(run: Run, r: unknown, kind: 'fd' | 'pair' | 'accept'): void {
  if (kind === 'fd' && typeof r === 'number' && r >= 0) run.created.push(r);
  if (kind === 'pair' && Array.isArray(r)) run.created.push(...(r as number[]));
  if (kind === 'accept' && Array.isArray(r)) run.created.push(r[0] as number);
}

/** Property: `make(run, ...args)` only throws allowed errors. */
function survives(arbs: fc.Arbitrary<unknown>[], body: (run: Run, args: unknown[]) => void, runs = RUNS): void {
  fc.assert(
    fc.property(fc.tuple(...arbs), (args) => {
      const run = newRun();
      try {
        body(run, args.map((a) => run.resolve(a)));
      } finally {
        run.finish();
      }
    }),
    { ...params, numRuns: runs },
  );
}

// --- the raw addon -------------------------------------------------------------

type Spec = { args: fc.Arbitrary<unknown>[]; creates?: 'fd' | 'pair' | 'accept' };
const A = anyArg, F = fdArg, T = safeTimeout;
const nativeSpecs: Record<string, Spec> = {
  socket: { args: [A, A, A], creates: 'fd' },
  socketpair: { args: [A, A, A], creates: 'pair' },
  pipe: { args: [A], creates: 'pair' },
  bind: { args: [F, A, A] },
  connect: { args: [F, A, A] },
  listen: { args: [F, A] },
  accept4: { args: [F, A], creates: 'accept' },
  send: { args: [fdOrOwn(OWN_SOCK), A, A, A, A] },
  recv: { args: [fdOrOwn(OWN_SOCK), A, A, A, A] },
  sendto: { args: [F, A, A, A, A, A, A] },
  recvfrom: { args: [fdOrOwn(OWN_SOCK), A, A, A, A] },
  read: { args: [fdOrOwn(OWN_SOCK), A, A, A] },
  write: { args: [fdOrOwn(OWN_SOCK), A, A, A] },
  shutdown: { args: [fdOrOwn(OWN_SOCK), A] },
  close: { args: [fdOrOwn(OWN_SOCK)] },
  dup: { args: [fdOrOwn(OWN_SOCK)], creates: 'fd' },
  setsockopt: { args: [fdOrOwn(OWN_SOCK), A, A, A] },
  getsockopt: { args: [fdOrOwn(OWN_SOCK), A, A, A] },
  getsockname: { args: [fdOrOwn(OWN_SOCK)] },
  getpeername: { args: [fdOrOwn(OWN_SOCK)] },
  setFlag: { args: [fdOrOwn(OWN_SOCK), A, A] },
  getFlag: { args: [fdOrOwn(OWN_SOCK), A] },
  getaddrinfo: { args: [fc.oneof(safeHost, A.filter((v) => typeof v !== 'string')), A, A, A, A, A] },
  strerror: { args: [A] },
  gethostname: { args: [A] },
  // Addresses that resolve from /etc/hosts only, so the fuzzing sends no DNS queries.
  getnameinfo: { args: [A, fc.oneof(fc.constant(['127.0.0.1', 80]), A.filter((v) => !Array.isArray(v))), A] },
  gethostbyaddr: { args: [A, fc.oneof(fc.constant(Buffer.from([127, 0, 0, 1])), A.filter((v) => !(ArrayBuffer.isView(v) && [4, 16].includes(v.byteLength))))] },
  inetPton: { args: [A, fc.oneof(safeHost, A)] },
  inetNtop: { args: [A, A] },
  select: { args: [A, A, A, A, A, A, T, A] },
  poll: { args: [A, A, T, A, A] },
  epollCreate: { args: [A], creates: 'fd' },
  epollCtl: { args: [fdOrOwn(OWN_EPFD), A, fdOrOwn(OWN_SOCK), A] },
  epollWait: { args: [fdOrOwn(OWN_EPFD), A, A, A, T] },
};

describe('the raw addon survives bad arguments', () => {
  const exported = Object.keys(native).filter((k) => typeof (native as unknown as Record<string, unknown>)[k] === 'function');

  it('every exported function has a fuzz spec here (a new export needs one)', () => {
    expect(exported.filter((k) => k !== 'FdWatcher' && !(k in nativeSpecs))).toEqual([]);
  });

  const fns = Object.entries(nativeSpecs).filter(([k]) => k in native);
  it.each(fns)('native.%s', (name, spec) => {
    const fn = (native as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!;
    // Fewer arguments than the call wants are bad input too.
    survives([...spec.args, fc.nat(spec.args.length)], (run, args) => {
      const n = args.pop() as number;
      const r = call(() => fn(...args.slice(0, args.length - (n % 4 === 3 ? Math.min(n, args.length) : 0))));
      if (spec.creates) adopt(run, r, spec.creates);
    });
  });

  it('native.FdWatcher: constructor and methods', () => {
    const Watcher = native.FdWatcher;
    survives([fdOrOwn(OWN_SOCK), fc.oneof(fc.constant(() => {}), A), A, fc.nat(3), fc.boolean()], (run, [fd, cb, ev, which, withNew]) => {
      const w = call(() => (withNew ? new Watcher(fd as number, cb as () => void) : (Watcher as unknown as (...a: unknown[]) => unknown)(fd, cb)));
      if (!(w instanceof Watcher)) return;
      run.watchers.push(w);
      if (which === 0) call(() => w.start(ev as number));
      if (which === 1) call(() => w.stop());
      if (which === 2) {
        w.close();
        call(() => w.start(ev as number));
        call(() => w.stop());
      }
      if (which === 3) {
        const r = call(() => w.start(1));
        // A watcher on a descriptor libuv cannot watch reports it as a status, never a throw.
        if (typeof fd !== 'number' || fd !== run.own[0]) expect(typeof r === 'number' && r < 0).toBe(true);
      }
    });
  });
});

// --- the TypeScript layer --------------------------------------------------------

const socketMethods: Record<string, number> = {
  fileno: 0, setblocking: 1, getblocking: 0, settimeout: 1, gettimeout: 0, bind: 1, listen: 1, accept: 0,
  connectEx: 1, connect: 1, send: 2, sendall: 2, sendto: 3, recv: 2, recvInto: 3, recvfrom: 2, shutdown: 1,
  close: 0, detach: 0, setsockopt: 3, getsockopt: 3, getsockname: 0, getpeername: 0, getInheritable: 0, setInheritable: 1,
};
/** Methods safe to run on a live socketpair end with any arguments (no addresses, nothing that blocks). */
const liveMethods = Object.keys(socketMethods).filter((m) => !['bind', 'connect', 'connectEx', 'sendto', 'close', 'detach'].includes(m));

describe('Socket survives bad arguments', () => {
  it('the constructor and Socket.fromFd', () => {
    survives([A, A, A, fc.option(F, { nil: undefined })], (run, [family, type, proto, fileno]) => {
      const s = call(() => new Socket(family as number, type as number, proto as number, fileno as number));
      if (s instanceof Socket) run.sockets.push(s);
      const t = call(() => Socket.fromFd(fileno as number, family as number, type as number, proto as number));
      if (t instanceof Socket) run.sockets.push(t);
    });
  });

  it.each(Object.keys(socketMethods))('Socket#%s on a closed socket', (m) => {
    const s = new Socket();
    s.close();
    survives(Array(socketMethods[m]! + 1).fill(A), (_run, args) => {
      call(() => (s as unknown as Record<string, (...a: unknown[]) => unknown>)[m]!(...args));
    }, Math.ceil(RUNS / 4));
  });

  it.each(liveMethods)('Socket#%s on a live nonblocking socketpair end', (m) => {
    survives(Array(socketMethods[m]! + 1).fill(A), (run, args) => {
      const [a, b] = socketpair();
      run.sockets.push(a, b);
      a.setblocking(false);
      call(() => (a as unknown as Record<string, (...x: unknown[]) => unknown>)[m]!(...args));
      if (a.fileno() >= 0) a.setblocking(false);
      // What the call accepted leaves the socket usable.
      if (m !== 'shutdown' && !a.closed) {
        b.sendall('ok');
        if (m !== 'setsockopt') expect(a.recv(8, 0).toString()).toContain('ok');
      }
    }, Math.ceil(RUNS / 4));
  });

  it.each(['bind', 'connect', 'connectEx', 'sendto'])('Socket#%s with addresses on a live UDP socket', (m) => {
    survives([safeAddress, A, safeAddress], (run, args) => {
      const s = new Socket(AF_INET, SOCK_DGRAM);
      run.sockets.push(s);
      s.setblocking(false);
      const a = m === 'sendto' ? [Buffer.from('x'), ...args] : args;
      call(() => (s as unknown as Record<string, (...x: unknown[]) => unknown>)[m]!(...a));
    }, Math.ceil(RUNS / 2));
  });
});

describe('select(), Poll, Epoll survive bad arguments', () => {
  it('select()', () => {
    const list = fc.oneof(fc.array(fc.oneof(fc.integer({ min: -3, max: 200 }), A), { maxLength: 6 }), A);
    survives([list, list, list, T], (_run, [r, w, x, t]) => {
      call(() => select(r as number[], w as number[], x as number[], t as number));
    });
  });

  const pollMethods: Array<[string, fc.Arbitrary<unknown>[]]> = [
    ['register', [A, A]], ['modify', [A, A]], ['unregister', [A]], ['poll', [T]], ['wait', [T, A, A]],
  ];
  it.each(pollMethods)('Poll#%s', (m, arbs) => {
    survives([A, ...arbs], (run, [pre, ...args]) => {
      const [a, b] = socketpair();
      run.sockets.push(a, b);
      const p = new Poll();
      p.register(a);
      call(() => p.register(pre as number)); // sometimes a second, random registration
      call(() => (p as unknown as Record<string, (...x: unknown[]) => unknown>)[m]!(...args));
      expect(p.size).toBeGreaterThanOrEqual(m === 'unregister' ? 0 : 1);
    });
  });

  it.skipIf(!HAVE_EPOLL)('the Epoll constructor and Epoll.fromfd', () => {
    survives([A, A, F], (run, [hint, flags, fd]) => {
      const e = call(() => new Epoll(hint as number, flags as number));
      if (e instanceof Epoll) run.created.push(e.fileno());
      const f = call(() => Epoll.fromfd(fd as number));
      if (f instanceof Epoll) call(() => f.close());
    });
  });

  const epollMethods: Array<[string, fc.Arbitrary<unknown>[]]> = [
    ['register', [A, A]], ['modify', [A, A]], ['unregister', [A]], ['poll', [T, A]], ['wait', [T, A, A]],
    ['fileno', []], ['close', []],
  ];
  it.skipIf(!HAVE_EPOLL).each(epollMethods)('Epoll#%s', (m, arbs) => {
    survives(arbs, (run, args) => {
      const [a, b] = socketpair();
      run.sockets.push(a, b);
      const e = new Epoll();
      try {
        e.register(a);
        call(() => (e as unknown as Record<string, (...x: unknown[]) => unknown>)[m]!(...args));
      } finally {
        e.close();
      }
    });
  });
});

describe('the selectors survive bad arguments', () => {
  const classes: Array<[string, new () => BaseSelector]> = [
    ['SelectSelector', SelectSelector], ['PollSelector', PollSelector], ['DefaultSelector', DefaultSelector],
    ...(HAVE_EPOLL ? [['EpollSelector', EpollSelector] as [string, new () => BaseSelector]] : []),
  ];
  const methods: Array<[string, fc.Arbitrary<unknown>[]]> = [
    ['register', [A, A, A]], ['unregister', [A]], ['modify', [A, A, A]], ['select', [T]], ['getKey', [A]],
    ['getMap', []], ['close', []],
  ];
  const cases = classes.flatMap(([n, C]) => methods.map(([m, arbs]) => [`${n}#${m}`, C, m, arbs] as const));
  it.each(cases)('%s', (_name, Sel, m, arbs) => {
    survives([A, ...arbs], (run, [pre, ...args]) => {
      const [a, b] = socketpair();
      run.sockets.push(a, b);
      const s = new Sel();
      try {
        s.register(a, 2, 'data');
        call(() => s.register(pre as number, 1)); // sometimes a second, random registration
        call(() => (s as unknown as Record<string, (...x: unknown[]) => unknown>)[m]!(...args));
        if (!s.closed) call(() => s.select(0));
      } finally {
        s.close();
      }
    }, Math.ceil(RUNS / 2));
  });
});
