/**
 * Output queues under a peer that reads late: AsyncChat's producer FIFO and
 * DispatcherWithSend's chunk queue are O(1) per item (time per item flat
 * from 50 000 to 200 000 queued items, as a ratio within one run), each
 * writable event sends up to the stated size gathered from small chunks, the
 * bytes arrive intact and in order, and the loops hear about interest changes.
 *
 * Drains run over an AF_UNIX socketpair whose sending end was first filled
 * with raw writes, so everything the channel is given queues.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { AsyncChat, SimpleProducer } from '../src/asynchat.js';
import { ChannelMap, DispatcherWithSend, closeAll, loop, watchMap, type Backend } from '../src/asyncore/index.js';
import { Fifo } from '../src/asyncore/fifo.js';
import { OSError, errno as E } from '../src/errors.js';
import { Socket, socketpair, type BytesLike } from '../src/socket.js';

trackFds();

class Chat extends AsyncChat {
  override collectIncomingData(): void {}
  override foundTerminator(): void {}
}

/** Fills `sock`'s send buffer until EAGAIN; returns the bytes written. */
function fill(sock: Socket): number {
  sock.setblocking(false);
  const blob = Buffer.alloc(65536, 0x2e);
  let n = 0;
  for (;;) {
    try {
      n += sock.send(blob);
    } catch (err) {
      if (err instanceof OSError && err.errno === E.EAGAIN) return n;
      throw err;
    }
  }
}

/** Reads everything `peer` has now; appends to `into` when given; returns the count. */
function drainPeer(peer: Socket, sink: Buffer, into?: Buffer[]): number {
  let got = 0;
  for (;;) {
    let r: number;
    try {
      r = peer.recvInto(sink, sink.length);
    } catch (err) {
      if (err instanceof OSError && err.errno === E.EAGAIN) return got;
      throw err;
    }
    if (r === 0) return got;
    into?.push(Buffer.from(sink.subarray(0, r)));
    got += r;
  }
}

/** Runs passes (at most `ms`), the peer reading after each, until it has `want` bytes. */
function drainAll(map: ChannelMap, peer: Socket, want: number, backend: Backend = 'poll', ms = 20_000, into?: Buffer[]): number {
  const sink = Buffer.allocUnsafe(1 << 18);
  const limit = performance.now() + ms;
  let got = 0;
  let passes = 0;
  while (got < want) {
    if (performance.now() > limit) throw new Error(`not drained within ${ms} ms: ${got} of ${want} bytes`);
    loop({ map, backend, timeout: 0, count: 1 });
    passes++;
    got += drainPeer(peer, sink, into);
  }
  expect(got).toBe(want);
  return passes;
}

const ITEM = Buffer.from('250 OK\r\n');

/**
 * CPU seconds (this process: user + system) to queue `n` items behind a full
 * socket and drain them all to the peer. CPU time, not wall time: on a busy
 * machine a longer run is more likely to be preempted, which would bias a
 * ratio of wall times against the larger size.
 */
function drainTime(kind: 'AsyncChat' | 'DispatcherWithSend', n: number): number {
  const map = new ChannelMap();
  const [a, b] = socketpair();
  try {
    b.setblocking(false);
    const filler = fill(a);
    const t0 = process.cpuUsage();
    if (kind === 'AsyncChat') {
      const c = new Chat(a, map);
      for (let i = 0; i < n; i++) c.push(ITEM);
    } else {
      const d = new DispatcherWithSend(a, map);
      for (let i = 0; i < n; i++) d.send(ITEM);
    }
    drainAll(map, b, filler + n * ITEM.length);
    const d = process.cpuUsage(t0);
    return (d.user + d.system) / 1e6;
  } finally {
    closeAll(map);
    a.close();
    b.close();
  }
}

describe('Fifo', () => {
  it('behaves as an array used as a deque, through growth and wrap-around (model-based)', () => {
    type Op = ['push' | 'unshift', number] | ['shift' | 'peek' | 'at' | 'setFirst' | 'clear', number];
    const op = fc.oneof(
      fc.tuple(fc.constant('push' as const), fc.integer()),
      fc.tuple(fc.constant('unshift' as const), fc.integer()),
      fc.tuple(fc.constant('shift' as const), fc.nat()),
      fc.tuple(fc.constant('peek' as const), fc.nat()),
      fc.tuple(fc.constant('at' as const), fc.integer({ min: -2, max: 40 })),
      fc.tuple(fc.constant('setFirst' as const), fc.integer()),
      fc.tuple(fc.constant('clear' as const), fc.nat()),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops: Op[]) => {
        const q = new Fifo<number>();
        const model: number[] = [];
        for (const [name, v] of ops) {
          if (name === 'push') (q.push(v), model.push(v));
          else if (name === 'unshift') (q.unshift(v), model.unshift(v));
          else if (name === 'shift') expect(q.shift()).toBe(model.shift());
          else if (name === 'peek') expect(q.peek()).toBe(model[0]);
          else if (name === 'at') expect(q.at(v)).toBe(v >= 0 ? model[v] : undefined);
          else if (name === 'setFirst') {
            if (model.length === 0) expect(() => q.setFirst(v)).toThrow(RangeError);
            else (q.setFirst(v), (model[0] = v));
          } else (q.clear(), (model.length = 0));
          expect(q.length).toBe(model.length);
        }
        expect(q.toArray()).toEqual(model);
      }),
      { numRuns: 300 },
    );
  });

  it('grows past 100 000 items and gives the big ring back once empty', () => {
    const q = new Fifo<number>([1, 2, 3]);
    for (let i = 0; i < 100_000; i++) q.push(i);
    expect(q.length).toBe(100_003);
    expect([q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([1, 2, 3, 0]);
    while (q.length > 0) q.shift();
    expect(q.shift()).toBeUndefined();
    expect((q as unknown as { ring: unknown[] }).ring.length).toBeLessThan(1024);
  });
});

describe('queues are O(1) per item', () => {
  // A warm-up, then each size three times, interleaved; the smallest time of
  // each (a GC pause only ever adds time). Measured beside the rest of the
  // suite: ratios 1.1–1.3 (the larger queue outlives the young generation);
  // the quadratic queues these replaced (Array#shift on a long array) gave
  // 2.6–3.0, and took ~15 s at 200 000 items.
  // Each round measures both sizes back to back and yields one ratio; the
  // median of seven rounds is checked, so one disturbed round (a busy shared
  // machine, a GC of the other size's garbage) cannot decide the result.
  it.each(['AsyncChat', 'DispatcherWithSend'] as const)('%s: time per item draining 200 000 queued items stays flat against 50 000 (ratio < 2.5)', (kind) => {
    drainTime(kind, 10_000);
    const ratios: number[] = [];
    const seen: string[] = [];
    for (let r = 0; r < 7; r++) {
      const small = drainTime(kind, 50_000) / 50_000;
      const large = drainTime(kind, 200_000) / 200_000;
      ratios.push(large / small);
      seen.push(`${(small * 1e6).toFixed(2)}/${(large * 1e6).toFixed(2)}`);
    }
    ratios.sort((x, y) => x - y);
    // A larger live heap (one Buffer per queued item, as Python keeps one bytes
    // object) costs the GC more per item: up to ~2 seen on a quiet machine; the
    // Array#shift queues these replaced gave 2.6-3.0 and minutes at 200 000.
    expect(ratios[3], `µs/item at 50 000 / 200 000 per round: ${seen.join(' ')}`).toBeLessThan(2.5);
  });
});

describe('one send per writable event, gathered', () => {
  /** A DispatcherWithSend that records the length of every send(2) it makes. */
  class Counting extends DispatcherWithSend {
    sends: number[] = [];
    protected override sendBytes(b: Uint8Array, off: number, len: number): number {
      this.sends.push(len);
      return super.sendBytes(b, off, len);
    }
    override readable(): boolean {
      return false;
    }
  }

  it.each(['select', 'poll', 'epoll'] as const)('DispatcherWithSend under %s sends up to 64 KiB per writable event, gathered from small chunks, intact and in order', (backend) => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    try {
      b.setblocking(false);
      const filler = fill(a);
      const d = new Counting(a, map);
      const parts: Buffer[] = [];
      for (let i = 0; i < 3000; i++) parts.push(Buffer.from(`chunk ${i};`));
      for (const p of parts) d.send(p);
      // Behind queued bytes, send() does not try again: one attempt for the first chunk only.
      expect(d.sends).toEqual([parts[0]!.length]);
      const got: Buffer[] = [];
      drainAll(map, b, filler + Buffer.concat(parts).length, backend, 20_000, got);
      const total = Buffer.concat(parts).length;
      expect(Buffer.concat(got).subarray(filler).equals(Buffer.concat(parts))).toBe(true);
      const writes = d.sends.slice(1).filter((n) => n > 0);
      expect(Math.max(...writes)).toBeLessThanOrEqual(65536);
      // About 35 KB in 10-byte chunks: a handful of gathered sends, not 3000.
      expect(d.sends.length).toBeLessThan(50);
      expect(writes.reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(total);
      expect(d.writable()).toBe(false);
    } finally {
      closeAll(map);
      a.close();
      b.close();
    }
  });

  it('difference: AsyncChat gathers the queued bytes at the head into one send of up to acOutBufferSize (asynchat sends one item per writable event)', () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    try {
      b.setblocking(false);
      const filler = fill(a);
      const sent: number[] = [];
      class Recording extends Chat {
        override send(data: BytesLike): number {
          const n = super.send(data) ?? 0;
          sent.push(n);
          return n;
        }
      }
      const c = new Recording(a, map);
      c.acOutBufferSize = 1000;
      const lines: string[] = [];
      for (let i = 0; i < 500; i++) lines.push(`250 line ${i}\r\n`);
      for (const l of lines) c.push(l);
      const got: Buffer[] = [];
      const expected = lines.join('');
      drainAll(map, b, filler + expected.length, 'poll', 20_000, got);
      expect(Buffer.concat(got).subarray(filler).toString()).toBe(expected);
      const full = sent.filter((n) => n > 0);
      // Each send carried many queued items, and none more than acOutBufferSize bytes.
      expect(Math.max(...full)).toBeLessThanOrEqual(1000);
      expect(Math.max(...full)).toBeGreaterThan(900);
      expect(full.length).toBeLessThan(lines.length / 10);
    } finally {
      closeAll(map);
      a.close();
      b.close();
    }
  });

  it('AsyncChat: bytes, a producer, more bytes and closeWhenDone arrive in order, then EOF', () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    try {
      b.setblocking(false);
      const filler = fill(a);
      const c = new Chat(a, map);
      c.push('one ');
      c.push('two ');
      c.pushWithProducer(new SimpleProducer('produced in small pieces ', 4));
      c.push('three');
      c.closeWhenDone();
      c.push('never sent');
      const got: Buffer[] = [];
      const expected = 'one two produced in small pieces three';
      drainAll(map, b, filler + expected.length, 'poll', 20_000, got);
      expect(Buffer.concat(got).subarray(filler).toString()).toBe(expected);
      for (let i = 0; i < 10 && map.size > 0; i++) loop({ map, backend: 'poll', timeout: 0.01, count: 1 });
      expect(map.size).toBe(0);
      b.setblocking(true);
      expect(b.recv(100).length).toBe(0);
    } finally {
      closeAll(map);
      a.close();
      b.close();
    }
  });
});

describe('interest changes reach the loops', () => {
  /** Counts the 'interest' notices for `fd` on `map` while `fn` runs. */
  function notices(map: ChannelMap, fn: () => void): number {
    let n = 0;
    const stop = watchMap(map, (change) => {
      if (change === 'interest') n++;
    });
    try {
      fn();
    } finally {
      stop();
    }
    return n;
  }

  it('DispatcherWithSend and AsyncChat announce a queue that becomes non-empty from outside a handler, and one that drains', () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    const [c2, d2] = socketpair();
    try {
      b.setblocking(false);
      d2.setblocking(false);
      fill(a);
      fill(c2);
      const d = new DispatcherWithSend(a, map);
      const chat = new Chat(c2, map);
      expect(d.writable()).toBe(false);
      expect(notices(map, () => d.send('queued'))).toBe(1);
      expect(d.writable()).toBe(true);
      // Behind queued bytes nothing changes, nothing is announced.
      expect(notices(map, () => d.send('more'))).toBe(0);
      expect(notices(map, () => chat.push('x'))).toBeGreaterThanOrEqual(1);
      expect(chat.writable()).toBe(true);
      expect(notices(map, () => chat.push('y'))).toBe(0);
      expect(notices(map, () => (d.outBuffer = ''))).toBe(1);
      expect(d.writable()).toBe(false);
      expect(notices(map, () => chat.discardBuffers())).toBe(1);
      expect(chat.writable()).toBe(false);
      expect(notices(map, () => chat.closeWhenDone())).toBe(1);
    } finally {
      closeAll(map);
      for (const s of [a, b, c2, d2]) s.close();
    }
  });
});
