/**
 * One behaviour suite for every selector, after CPython's
 * Lib/test/test_selectors.py (BaseSelectorTestCase + ScalableSelectorMixIn),
 * with the JS error mapping of DESIGN.md: ValueError → RangeError/TypeError,
 * RuntimeError on a closed selector → OSError EBADF.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { thrown } from './helpers/net.js';
import { native } from '../src/native.js';
import { KeyError, OSError, errno as E } from '../src/errors.js';
import { Socket, socketpair, SHUT_WR } from '../src/socket.js';
import {
  BaseSelector, DefaultSelector, EpollSelector, PollSelector, SelectSelector, EVENT_READ, EVENT_WRITE,
  type SelectorKey,
} from '../src/selectors.js';
import { HAVE_EPOLL } from '../src/select.js';

trackFds();

type Ctor = new <T = unknown>() => BaseSelector<T>;
const selectorCases: Array<{ name: string; Selector: Ctor; scalable: boolean; missing: string | null }> = [
  { name: 'SelectSelector', Selector: SelectSelector, scalable: false, missing: null },
  { name: 'PollSelector', Selector: PollSelector, scalable: true, missing: null },
  { name: 'EpollSelector', Selector: EpollSelector, scalable: true, missing: HAVE_EPOLL ? null : 'epoll(7) exists only on Linux' },
  { name: 'DefaultSelector', Selector: DefaultSelector, scalable: true, missing: null },
];


function readyFor(ready: Array<[SelectorKey, number]>, flag: number): unknown[] {
  return ready.filter(([, ev]) => ev & flag).map(([k]) => k.fileobj);
}

describe.each(selectorCases)('$name', ({ name, Selector, scalable, missing }) => {
  const it_ = missing ? it.skip : it;
  const isEpoll = name === 'EpollSelector' || (name === 'DefaultSelector' && HAVE_EPOLL);

  /** Runs `body` with a fresh selector and socketpairs, closing everything after. */
  function withSel(body: (s: BaseSelector, pair: () => [Socket, Socket]) => void | Promise<void>) {
    return async () => {
      const s = new Selector();
      const opened: Socket[] = [];
      try {
        await body(s, () => {
          const p = socketpair();
          opened.push(...p);
          return p;
        });
      } finally {
        s.close();
        for (const x of opened) x.close();
      }
    };
  }

  it_('register returns a frozen key with fileobj, fd, events and data', withSel((s, pair) => {
    const [rd] = pair();
    const key = s.register(rd, EVENT_READ, 'data');
    expect(key).toEqual({ fileobj: rd, fd: rd.fileno(), events: EVENT_READ, data: 'data' });
    expect(key.fileobj).toBe(rd);
    expect(Object.isFrozen(key)).toBe(true);
  }));

  it_('register refuses unknown events, a negative fd, a non-fd, and the same fd twice', withSel((s, pair) => {
    const [rd] = pair();
    expect(() => s.register(0, 999999)).toThrow(RangeError);
    expect(() => s.register(rd, 0)).toThrow(RangeError);
    expect(() => s.register(-10, EVENT_READ)).toThrow(RangeError);
    expect(() => s.register('3' as unknown as number, EVENT_READ)).toThrow(TypeError);
    expect(() => s.register({} as unknown as number, EVENT_READ)).toThrow(TypeError);
    s.register(rd, EVENT_READ);
    expect(() => s.register(rd, EVENT_READ)).toThrow(KeyError);
    // The same descriptor through another object is still the same registration.
    expect(() => s.register(rd.fileno(), EVENT_WRITE)).toThrow(KeyError);
    expect(s.getMap().size).toBe(1);
  }));

  it_('unregister returns the key; an unknown object or a second unregister is a KeyError', withSel((s, pair) => {
    const [rd] = pair();
    const key = s.register(rd, EVENT_READ);
    expect(s.unregister(rd)).toBe(key);
    expect(() => s.unregister(999999)).toThrow(KeyError);
    expect(() => s.unregister(rd)).toThrow(KeyError);
    expect(s.getMap().size).toBe(0);
  }));

  it_('unregister after the fd was closed does not throw (numbers)', withSel((s) => {
    const [rd, wr] = socketpair();
    const r = rd.fileno(), w = wr.fileno();
    s.register(r, EVENT_READ);
    s.register(w, EVENT_WRITE);
    rd.close();
    wr.close();
    s.unregister(r);
    s.unregister(w);
    expect(s.getMap().size).toBe(0);
  }));

  it_('unregister after the fd was closed and its number reused does not throw', withSel((s, pair) => {
    const [rd, wr] = socketpair();
    const r = rd.fileno(), w = wr.fileno();
    s.register(r, EVENT_READ);
    s.register(w, EVENT_WRITE);
    rd.close();
    wr.close();
    // The lowest free numbers are handed out again: the new pair takes r and w.
    const [rd2, wr2] = pair();
    expect([rd2.fileno(), wr2.fileno()].sort()).toEqual([r, w].sort());
    s.unregister(r);
    s.unregister(w);
    // The new sockets can be registered afresh.
    s.register(rd2, EVENT_READ);
    wr2.sendall('x');
    expect(s.select(1)).toEqual([[s.getKey(rd2), EVENT_READ]]);
  }));

  it_('unregister after the socket object was closed finds its key by identity', withSel((s) => {
    const [rd, wr] = socketpair();
    s.register(rd, EVENT_READ);
    s.register(wr, EVENT_WRITE);
    rd.close();
    wr.close();
    expect(rd.fileno()).toBe(-1);
    expect(s.unregister(rd).fileobj).toBe(rd);
    expect(s.unregister(wr).fileobj).toBe(wr);
  }));

  it_('modify changes events (a new key), and data alone without touching the kernel', withSel((s, pair) => {
    const [rd] = pair();
    const key = s.register(rd, EVENT_READ);
    const key2 = s.modify(rd, EVENT_WRITE);
    expect(key2.events).not.toBe(key.events);
    expect(s.getKey(rd)).toBe(key2);
    s.unregister(rd);

    const d1 = { d: 1 }, d2 = { d: 2 };
    const k1 = s.register(rd, EVENT_READ, d1);
    const k2 = s.modify(rd, EVENT_READ, d2);
    expect(k2.events).toBe(k1.events);
    expect(k2.data).toBe(d2);
    expect(s.getKey(rd)).toBe(k2);
    // The same events and data: nothing changes.
    expect(s.modify(rd, EVENT_READ, d2)).toBe(k2);
    expect(() => s.modify(999999, EVENT_READ)).toThrow(KeyError);
    expect(() => s.modify(rd, 0)).toThrow(RangeError);
    expect(() => s.modify(rd, 4)).toThrow(RangeError);
  }));

  it_('modify of data only works even after the fd was closed (no kernel call)', withSel((s) => {
    const [rd, wr] = socketpair();
    try {
      s.register(rd.fileno(), EVENT_READ, 'a');
    } finally {
      rd.close();
      wr.close();
    }
    expect(s.modify(s.getMap().keys().next().value as number, EVENT_READ, 'b').data).toBe('b');
  }));

  if (isEpoll) {
    it_('a kernel failure in modify drops the key (bpo-30014)', withSel((s) => {
      const [rd, wr] = socketpair();
      const fd = rd.fileno();
      s.register(fd, EVENT_READ);
      rd.close();
      wr.close();
      const err = thrown(() => s.modify(fd, EVENT_WRITE)) as OSError;
      expect(err).toBeInstanceOf(OSError);
      expect(err.errno).toBe(E.EBADF);
      expect(() => s.getKey(fd)).toThrow(KeyError);
      expect(s.getMap().size).toBe(0);
    }));

    it_('register of a regular file is OSError EPERM (epoll(7)) and leaves no key', withSel((s) => {
      const dir = mkdtempSync(path.join(tmpdir(), 'an-sel-'));
      const fd = openSync(path.join(dir, 'f'), 'w');
      try {
        expect(thrown(() => s.register(fd, EVENT_READ))).toMatchObject({ errno: E.EPERM, code: 'EPERM' });
        expect(() => s.getKey(fd)).toThrow(KeyError);
      } finally {
        closeSync(fd);
        rmSync(dir, { recursive: true, force: true });
      }
    }));

    it_('register of a closed fd is OSError EBADF and leaves no key', withSel((s) => {
      const [rd, wr] = socketpair();
      const fd = rd.fileno();
      rd.close();
      wr.close();
      expect(thrown(() => s.register(fd, EVENT_READ))).toMatchObject({ errno: E.EBADF });
      expect(() => s.getKey(fd)).toThrow(KeyError);
    }));

    it_('fileno() is the epoll descriptor, open until close()', () => {
      const s = new Selector() as EpollSelector;
      const fd = s.fileno();
      expect(fd).toBeGreaterThanOrEqual(0);
      expect(native.getFlag(fd, 1)).toBe(1);
      s.close();
      expect(native.getFlag(fd, 1)).toBe(-E.EBADF);
    });
  }

  it_('close: later calls throw OSError EBADF (Python: RuntimeError), an old map view is empty, a second close is harmless', withSel((s, pair) => {
    const mapping = s.getMap();
    const [rd, wr] = pair();
    s.register(rd, EVENT_READ);
    s.register(wr, EVENT_WRITE);
    expect(mapping.size).toBe(2);
    s.close();
    expect(s.closed).toBe(true);
    for (const f of [() => s.getKey(rd), () => s.register(rd, EVENT_READ), () => s.unregister(rd),
      () => s.modify(rd, EVENT_WRITE), () => s.select(0), () => s.getMap()]) {
      const err = thrown(f) as OSError;
      expect(err).toBeInstanceOf(OSError);
      expect(err.errno).toBe(E.EBADF);
    }
    expect(mapping.get(rd)).toBeUndefined();
    expect(mapping.size).toBe(0);
    s.close();
  }));

  it_('Symbol.dispose / nodejs.dispose closes it (Python: the context manager)', withSel((s, pair) => {
    const [rd, wr] = pair();
    s.register(rd, EVENT_READ);
    s.register(wr, EVENT_WRITE);
    (s as unknown as Record<symbol, () => void>)[Symbol.for('nodejs.dispose')]!();
    expect(thrown(() => s.getKey(rd))).toMatchObject({ errno: E.EBADF });
  }));

  it_('getKey returns the key; an unknown object is a KeyError', withSel((s, pair) => {
    const [rd] = pair();
    const key = s.register(rd, EVENT_READ, 'data');
    expect(s.getKey(rd)).toBe(key);
    expect(s.getKey(rd.fileno())).toBe(key);
    expect(() => s.getKey(999999)).toThrow(KeyError);
  }));

  it_('getMap is a live read-only view keyed by file object', withSel((s, pair) => {
    const [rd] = pair();
    const keys = s.getMap();
    expect(keys.size).toBe(0);
    expect([...keys]).toEqual([]);
    const key = s.register(rd, EVENT_READ, 'data');
    expect(keys.has(rd)).toBe(true);
    expect(keys.get(rd)).toBe(key);
    expect(keys.get(rd.fileno())).toBe(key);
    expect(keys.size).toBe(1);
    expect([...keys.keys()]).toEqual([rd]);
    expect([...keys.values()]).toEqual([key]);
    expect([...keys.entries()]).toEqual([[rd, key]]);
    const seen: unknown[] = [];
    keys.forEach((k, f) => seen.push([f, k]));
    expect(seen).toEqual([[rd, key]]);
    expect(keys.get(999999)).toBeUndefined();
    expect(keys.get('nope' as unknown as number)).toBeUndefined();
    const writable = keys as unknown as Record<string, unknown>;
    expect(writable.set).toBeUndefined();
    expect(writable.delete).toBeUndefined();
    s.unregister(rd);
    expect(keys.has(rd)).toBe(false);
  }));

  it_('select reports only the interest asked for: a fresh socket is EVENT_WRITE, an idle reader nothing', withSel((s, pair) => {
    const [rd, wr] = pair();
    s.register(rd, EVENT_READ);
    const wrKey = s.register(wr, EVENT_WRITE);
    const result = s.select();
    for (const [key, events] of result) {
      expect(events).toBeTruthy();
      expect(events & ~(EVENT_READ | EVENT_WRITE)).toBe(0);
      expect(s.getKey(key.fileobj)).toBe(key);
    }
    expect(result).toEqual([[wrKey, EVENT_WRITE]]);
  }));

  it_('an fd registered for read and write reports both in one call (gh-110038)', withSel((s, pair) => {
    const [a, b] = pair();
    b.send('foo');
    const myKey = s.register(a, EVENT_READ | EVENT_WRITE);
    const result = s.select(1);
    let mask = 0;
    expect(result.length).toBeLessThanOrEqual(2);
    for (const [key, events] of result) {
      expect(key).toBe(myKey);
      expect(mask & events).toBe(0);
      mask |= events;
    }
    expect(mask).toBe(EVENT_READ | EVENT_WRITE);
  }));

  it_('events are masked by the key: a writable reader with pending data reports EVENT_READ only', withSel((s, pair) => {
    const [a, b] = pair();
    b.send('x');
    const key = s.register(a, EVENT_READ);
    expect(s.select(1)).toEqual([[key, EVENT_READ]]);
  }));

  it_('a peer hang-up is readable (EOF), and a hang-up counts as writable for a writer', withSel((s, pair) => {
    const [a, b] = pair();
    const key = s.register(a, EVENT_READ);
    b.shutdown(SHUT_WR);
    expect(s.select(1)).toEqual([[key, EVENT_READ]]);
    expect(a.recv(1).length).toBe(0);
  }));

  it_('twelve socketpairs exchange messages through select (test_selector)', withSel((s, pair) => {
    const MSG = Buffer.from(' This is a test.');
    const w2r = new Map<Socket, Socket>(), r2w = new Map<Socket, Socket>();
    const writers: Socket[] = [];
    for (let i = 0; i < 12; i++) {
      const [rd, wr] = pair();
      s.register(rd, EVENT_READ);
      s.register(wr, EVENT_WRITE);
      writers.push(wr);
      w2r.set(wr, rd);
      r2w.set(rd, wr);
    }
    const bufs: Buffer[] = [];
    while (writers.length) {
      const readyWriters = readyFor(s.select(1), EVENT_WRITE) as Socket[];
      expect(readyWriters.length).toBeGreaterThan(0);
      const wr = readyWriters[Math.floor(Math.random() * readyWriters.length)]!;
      wr.send(MSG);
      const readyReaders = readyFor(s.select(1), EVENT_READ) as Socket[];
      expect(readyReaders).toEqual([w2r.get(wr)]);
      const rd = readyReaders[0]!;
      bufs.push(rd.recv(MSG.length));
      s.unregister(r2w.get(rd)!);
      s.unregister(rd);
      writers.splice(writers.indexOf(r2w.get(rd)!), 1);
    }
    expect(bufs).toEqual(Array(12).fill(MSG));
  }));

  it_('an empty selector: select(0) is [] at once, select(0.2) waits at least 0.2 s', withSel((s) => {
    expect(s.select(0)).toEqual([]);
    const t0 = performance.now();
    expect(s.select(0.2)).toEqual([]);
    const dt = performance.now() - t0;
    expect(dt).toBeGreaterThanOrEqual(199);
    expect(dt).toBeLessThan(2000);
  }));

  it_('timeouts: 0 and negative do not block; a positive one lasts at least that long (seconds)', withSel((s, pair) => {
    const [rd, wr] = pair();
    s.register(wr, EVENT_WRITE);
    let t0 = performance.now();
    expect(s.select(0)).toHaveLength(1);
    expect(s.select(-1)).toHaveLength(1);
    expect(performance.now() - t0).toBeLessThan(500);
    s.unregister(wr);
    s.register(rd, EVENT_READ);
    t0 = performance.now();
    expect(s.select(0)).toEqual([]);
    expect(s.select(-1)).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(500);
    t0 = performance.now();
    expect(s.select(0.3)).toEqual([]);
    const dt = performance.now() - t0;
    expect(dt).toBeGreaterThanOrEqual(299);
    expect(dt).toBeLessThan(2000);
    // A fraction of a millisecond is rounded up, never down to a busy poll.
    t0 = performance.now();
    expect(s.select(0.0001)).toEqual([]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(0.09);
    expect(() => s.select('1' as unknown as number)).toThrow(TypeError);
    expect(() => s.select(NaN)).toThrow(TypeError);
  }));

  it_('a signal during select (a child exiting) does not cut the timeout short (test_select_interrupt_noraise)', withSel(async (s, pair) => {
    const [rd] = pair();
    s.register(rd, EVENT_READ);
    const child = spawn('sleep', ['0.05'], { stdio: 'ignore' });
    const done = new Promise((r) => child.once('exit', r));
    const t0 = performance.now();
    expect(s.select(0.3)).toEqual([]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(299);
    await done;
  }));

  if (scalable) {
    it_('handles more descriptors than FD_SETSIZE (1500 socketpairs)', withSel((s) => {
      const N = 1500;
      const socks: Socket[] = [];
      try {
        for (let i = 0; i < N; i++) {
          const [rd, wr] = socketpair();
          socks.push(rd, wr);
          s.register(rd, EVENT_READ);
          s.register(wr, EVENT_WRITE);
        }
        expect(Math.max(...socks.map((x) => x.fileno()))).toBeGreaterThan(1024);
        const ready = s.select();
        expect(ready).toHaveLength(N);
        expect(ready.every(([, ev]) => ev === EVENT_WRITE)).toBe(true);
        // A reader far above FD_SETSIZE becomes ready like any other.
        socks[socks.length - 1]!.send('x');
        const last = socks[socks.length - 2]!;
        const readers = readyFor(s.select(1), EVENT_READ);
        expect(readers).toEqual([last]);
      } finally {
        for (const x of socks) x.close();
      }
    }));
  } else {
    it_('refuses descriptors >= FD_SETSIZE with a RangeError (use PollSelector / EpollSelector)', withSel((s, pair) => {
      const [a] = pair();
      const dups: number[] = [];
      try {
        let high = -1;
        while (high < 1024) dups.push((high = native.dup(a.fileno())));
        const err = thrown(() => s.register(high, EVENT_READ));
        expect(err).toBeInstanceOf(RangeError);
        expect(err.message).toMatch(/FD_SETSIZE/);
        expect(() => s.getKey(high)).toThrow(KeyError);
      } finally {
        for (const fd of dups) native.close(fd);
      }
    }));
  }
});

describe('DefaultSelector', () => {
  it('is the epoll selector on Linux, else the poll selector', () => {
    const s = new DefaultSelector();
    try {
      expect(s).toBeInstanceOf(HAVE_EPOLL ? EpollSelector : PollSelector);
    } finally {
      s.close();
    }
  });
});

describe('modify without data', () => {
  it.for(['SelectSelector', 'PollSelector', 'EpollSelector'] as const)('%s: resets the data, as Python resets it to None', async (name, { skip }) => {
    skip(name === 'EpollSelector' && !HAVE_EPOLL, 'epoll(7) exists only on Linux (and not in the portable build)');
    const mod = await import('../src/selectors.js');
    const sel = new mod[name]<string>();
    const [a, b] = socketpair();
    try {
      sel.register(a, mod.EVENT_READ, 'first');
      expect(sel.modify(a, mod.EVENT_READ | mod.EVENT_WRITE).data).toBeUndefined();
      expect(sel.getKey(a).data).toBeUndefined();
    } finally {
      sel.close();
      a.close();
      b.close();
    }
  });
});
