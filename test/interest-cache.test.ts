/**
 * The loop's interest cache (issue 10): readable()/writable() are asked only
 * of channels whose answers may have changed, and nothing a user can observe
 * differs from asyncore's ask-everyone-every-pass — except that a class that
 * declares `reportsInterest` and forgets `interestChanged()` is not re-asked,
 * as documented.
 *
 * Every body runs under select, poll, epoll, a selector object and loopAsync.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { ChannelMap, Dispatcher, DispatcherWithSend, closeAll, loop, loopAsync, type SocketMap } from '../src/asyncore/index.js';
import { PollSelector } from '../src/selectors.js';
import { Socket, socketpair } from '../src/socket.js';
import { reportsInterest } from '../src/asyncore/interest.js';

trackFds();

type Run = (map: SocketMap, passes: number, timeout: number) => Promise<void>;

const selectors: PollSelector<unknown>[] = [];
const selectorOf = new WeakMap<SocketMap, PollSelector<unknown>>();
afterEach(() => {
  for (const s of selectors.splice(0)) s.close();
});

const runners: Array<[string, Run]> = [
  ['select', async (map, count, timeout) => loop({ backend: 'select', map, count, timeout })],
  ['poll', async (map, count, timeout) => loop({ backend: 'poll', map, count, timeout })],
  ['epoll', async (map, count, timeout) => loop({ backend: 'epoll', map, count, timeout })],
  [
    'a selector object',
    async (map, count, timeout) => {
      // One selector per map: a new selector registers (and asks) every channel afresh.
      let sel = selectorOf.get(map);
      if (sel === undefined) {
        selectorOf.set(map, (sel = new PollSelector()));
        selectors.push(sel);
      }
      loop({ backend: sel, map, count, timeout });
    },
  ],
  ['loopAsync (epoll)', (map, count, timeout) => loopAsync({ backend: 'epoll', map, count, timeout })],
  ['loopAsync (poll)', (map, count, timeout) => loopAsync({ backend: 'poll', map, count, timeout })],
];

// loopAsync with select or poll keeps two registrations of each channel: the
// epoll set libuv watches to wake it, and the backend's own.
const registrations = (name: string): number => (name === 'loopAsync (poll)' ? 2 : 1);

/** Counts the questions a channel is asked. */
class Quiet extends Dispatcher {
  static override reportsInterest = true;
  asked = 0;
  override readable(): boolean {
    this.asked++;
    return true;
  }
  override writable(): boolean {
    return false;
  }
  override handleClose(): void {
    this.close();
  }
}

/** The same channel, undeclared: asked on every pass, as asyncore does. */
class QuietUndeclared extends Dispatcher {
  asked = 0;
  override readable(): boolean {
    this.asked++;
    return true;
  }
  override writable(): boolean {
    return false;
  }
}

/** Reads what arrives and runs `onData`. */
class Reader extends Dispatcher {
  onData: () => void = () => {};
  reads = 0;
  override writable(): boolean {
    return false;
  }
  override handleRead(): void {
    if (this.recv(4096).length > 0) {
      this.reads++;
      this.onData();
    }
  }
  override handleClose(): void {
    this.close();
  }
}

function pairIn(_map: SocketMap): [Socket, Socket] {
  const [a, b] = socketpair();
  return [a, b];
}

describe.each(runners)('interest cache under %s', (name, run) => {
  it('asks a declared channel once while nothing happens to it (the cost follows the changed channels)', async () => {
    const map = new ChannelMap();
    const [a, b] = pairIn(map);
    const q = new Quiet(a, map);
    const u = new QuietUndeclared(b, map);
    await run(map, 6, 0.005);
    expect(q.asked).toBe(registrations(name));
    // asyncore's behaviour, kept for a class that does not declare: asked every pass.
    expect(u.asked).toBeGreaterThanOrEqual(6);
    closeAll(map);
  });

  it('honours an undeclared writable() that reads another channel\'s state, without any call', async () => {
    const map = new ChannelMap();
    const shared = { want: false };
    let wrote = 0;
    class Watcher extends Dispatcher {
      override readable(): boolean {
        return false;
      }
      override writable(): boolean {
        return shared.want;
      }
      override handleWrite(): void {
        wrote++;
        shared.want = false;
      }
    }
    const [a, a2] = pairIn(map);
    const [b, b2] = pairIn(map);
    const w = new Watcher(a, map);
    const r = new Reader(b, map);
    r.onData = () => {
      shared.want = true; // nobody tells the loop
    };
    b2.send('go');
    await run(map, 6, 0.01);
    expect(r.reads).toBe(1);
    expect(wrote).toBe(1);
    expect(reportsInterest(w)).toBe(false);
    closeAll(map);
    a2.close();
    b2.close();
  });

  it('re-asks a channel whose answer changed inside its own handler, in the next pass', async () => {
    const map = new ChannelMap();
    let writes = 0;
    class Once extends Dispatcher {
      static override reportsInterest = true;
      done = false;
      override readable(): boolean {
        return false;
      }
      override writable(): boolean {
        return !this.done;
      }
      override handleWrite(): void {
        writes++;
        this.done = true; // no interestChanged(): it ran in a handler
      }
    }
    const [a, a2] = pairIn(map);
    new Once(a, map);
    await run(map, 8, 0.005);
    expect(writes).toBe(1);
    closeAll(map);
    a2.close();
  });

  it('does not re-ask a declared class that forgets interestChanged() (documented), and does once it calls it', async () => {
    const map = new ChannelMap();
    let writes = 0;
    class Forgetful extends Dispatcher {
      static override reportsInterest = true;
      want = false;
      override readable(): boolean {
        return false;
      }
      override writable(): boolean {
        return this.want;
      }
      override handleWrite(): void {
        writes++;
        this.want = false;
      }
    }
    const [a, a2] = pairIn(map);
    const [b, b2] = pairIn(map);
    const f = new Forgetful(a, map);
    const r = new Reader(b, map);
    r.onData = () => {
      f.want = true; // the declared class's answer changes outside its handlers, unannounced
    };
    b2.send('go');
    await run(map, 5, 0.005);
    expect(r.reads).toBe(1);
    expect(writes).toBe(0);
    r.onData = () => {
      f.want = true;
      f.interestChanged();
    };
    b2.send('again');
    await run(map, 5, 0.005);
    expect(r.reads).toBe(2);
    expect(writes).toBe(1);
    closeAll(map);
    a2.close();
    b2.close();
  });

  it('picks up queued output of a DispatcherWithSend sent from another channel\'s handler', async () => {
    const map = new ChannelMap();
    const [a, a2] = pairIn(map);
    const [b, b2] = pairIn(map);
    class Out extends DispatcherWithSend {
      override readable(): boolean {
        return false;
      }
    }
    const out = new Out(a, map);
    // Fill a's send buffer so the next send() must queue.
    const big = Buffer.alloc(1 << 16, 1);
    for (let i = 0; i < 10_000; i++) {
      try {
        a.send(big); // nonblocking: EAGAIN once full
      } catch {
        break;
      }
    }
    const r = new Reader(b, map);
    r.onData = () => out.send('tail');
    b2.send('go');
    // Drain a2 so the queued bytes can go out, then run a few passes.
    a2.setblocking(false);
    const drain = (): number => {
      let got = 0;
      for (;;) {
        try {
          const d = a2.recv(1 << 20);
          if (d.length === 0) break;
          got += d.length;
        } catch {
          break;
        }
      }
      return got;
    };
    await run(map, 2, 0.005);
    expect(out.outBuffer.length).toBeGreaterThan(0);
    let total = 0;
    for (let i = 0; i < 200 && out.outBuffer.length > 0; i++) {
      total += drain();
      await run(map, 1, 0.005);
    }
    total += drain();
    expect(out.outBuffer.length).toBe(0);
    expect(total).toBeGreaterThan(0);
    closeAll(map);
    a2.close();
    b2.close();
  });
});

describe('interest cache with a plain Map (no change notices)', () => {
  it.each(['select', 'poll', 'epoll'] as const)('%s: finds channels set and deleted directly on the map', (backend) => {
    const map: SocketMap = new Map();
    const [a, a2] = socketpair();
    const [b, b2] = socketpair();
    // Python's tests put channels into socket_map by hand; a plain Map reports nothing.
    const scratch = new ChannelMap();
    const r1 = new Reader(a, scratch);
    const r2 = new Reader(b, scratch);
    scratch.clear();
    map.set(a.fileno(), r1);
    a2.send('x');
    loop({ backend, map, count: 2, timeout: 0.01 });
    expect(r1.reads).toBe(1);
    map.set(b.fileno(), r2);
    map.delete(a.fileno());
    a2.send('y');
    b2.send('z');
    loop({ backend, map, count: 2, timeout: 0.01 });
    expect(r1.reads).toBe(1);
    expect(r2.reads).toBe(1);
    map.clear();
    loop({ backend, map, count: 1, timeout: 0 });
    for (const s of [a, a2, b, b2]) s.close();
  });
});

describe('reportsInterest (the declaration)', () => {
  it('holds for the library classes and for subclasses that only add handlers', () => {
    const [a, b] = socketpair();
    const map = new ChannelMap();
    class Handlers extends DispatcherWithSend {
      override handleRead(): void {}
    }
    expect(reportsInterest(new Dispatcher(a, map))).toBe(true);
    expect(reportsInterest(new Handlers(b, map))).toBe(true);
    closeAll(map);
  });

  it('does not hold for an override without the declaration, an instance method, or an explicit false', () => {
    const map = new ChannelMap();
    const socks = [...socketpair(), ...socketpair()];
    class Over extends DispatcherWithSend {
      override writable(): boolean {
        return true;
      }
    }
    class Declared extends Over {
      static override reportsInterest = true;
      override writable(): boolean {
        return true;
      }
    }
    class OptOut extends Dispatcher {
      static override reportsInterest = false;
    }
    const d = new Dispatcher(socks[2], map);
    (d as unknown as { readable: () => boolean }).readable = () => true;
    expect(reportsInterest(new Over(socks[0], map))).toBe(false);
    expect(reportsInterest(new Declared(socks[1], map))).toBe(true);
    expect(reportsInterest(d)).toBe(false);
    expect(reportsInterest(new OptOut(socks[3], map))).toBe(false);
    // A duck-typed channel (any object with the shape) never reports.
    expect(reportsInterest({ fileno: () => 1, readable: () => true, writable: () => true } as never)).toBe(false);
    closeAll(map);
  });
});

describe('interest cache and errors from readable()', () => {
  it.each(['select', 'poll', 'epoll'] as const)('%s: a channel whose readable() threw ExitNow is asked again by the next loop()', async (backend) => {
    const { ExitNow } = await import('../src/errors.js');
    const map = new ChannelMap();
    const [a, a2] = socketpair();
    let asked = 0;
    class Throws extends Dispatcher {
      static override reportsInterest = true;
      override readable(): boolean {
        if (asked++ === 0) throw new ExitNow('stop');
        return true;
      }
      override writable(): boolean {
        return false;
      }
    }
    new Throws(a, map);
    expect(() => loop({ backend, map, count: 1, timeout: 0 })).toThrow(ExitNow);
    loop({ backend, map, count: 1, timeout: 0 });
    expect(asked).toBe(2);
    closeAll(map);
    a2.close();
  });
});
