/**
 * Delayed calls and signals in the loops, on real sockets: every body runs
 * under loop() with select, poll, epoll and a selector object, and under
 * loopAsync. Time bounds are loose (a shared 2-core machine); lateness is
 * the benchmark's business (bench/timers.mjs), earliness is checked exactly.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { trackFds } from './helpers/fds.js';
import { killAll, root, startProgram, type Exit } from './helpers/cli.js';
import {
  ChannelMap, Dispatcher, DispatcherWithSend, ExitNow, Interrupted, callEvery, callLater, closeAll, loop, loopAsync,
  type DelayedCall, type LoopOptions, type SocketMap,
} from '../src/asyncore/index.js';
import { now, timersOf } from '../src/asyncore/timers.js';
import { PollSelector } from '../src/selectors.js';
import { socketpair, type Socket } from '../src/socket.js';

trackFds();

type Run = (map: SocketMap, o?: LoopOptions) => Promise<void>;

const selectors: PollSelector<unknown>[] = [];
afterEach(() => {
  for (const s of selectors.splice(0)) s.close();
});

const runners: Array<[string, Run]> = [
  ['select', async (map, o) => loop({ backend: 'select', timeout: 30, ...o, map })],
  ['poll', async (map, o) => loop({ backend: 'poll', timeout: 30, ...o, map })],
  ['epoll', async (map, o) => loop({ backend: 'epoll', timeout: 30, ...o, map })],
  [
    'a selector object',
    async (map, o) => {
      const sel = new PollSelector();
      selectors.push(sel);
      loop({ backend: sel, timeout: 30, ...o, map });
    },
  ],
  ['loopAsync (epoll)', (map, o) => loopAsync({ backend: 'epoll', timeout: 30, ...o, map })],
  ['loopAsync (select)', (map, o) => loopAsync({ backend: 'select', timeout: 30, ...o, map })],
];

/** One end of a socketpair in the map that never becomes ready: the wait blocks in the backend, not in a sleep. */
class Idle extends Dispatcher {
  static override reportsInterest = true;
  constructor(sock: Socket, map: SocketMap) {
    super(sock, map);
  }
  override writable(): boolean {
    return false;
  }
  override handleRead(): void {
    this.recv(100);
  }
  override handleClose(): void {
    this.close();
  }
}

/** An echo end: sends back what it reads. */
class Echo extends DispatcherWithSend {
  override handleRead(): void {
    const d = this.recv(65536);
    if (d.length) this.send(d);
  }
  override handleClose(): void {
    this.close();
  }
}

/** The other end: sends a message, waits for its echo, again, counting rounds. */
class PingPong extends DispatcherWithSend {
  rounds = 0;
  private got = 0;
  private readonly msg = Buffer.alloc(256, 7);
  start(): this {
    this.send(this.msg);
    return this;
  }
  override handleRead(): void {
    this.got += this.recv(65536).length;
    while (this.got >= this.msg.length) {
      this.got -= this.msg.length;
      this.rounds++;
      this.send(this.msg);
    }
  }
  override handleClose(): void {
    this.close();
  }
}

/** A map with an idle channel pair in it; the returned closer empties it. */
function idleMap(): [ChannelMap, () => void] {
  const map = new ChannelMap();
  const [a, b] = socketpair();
  a.setblocking(false);
  new Idle(a, map);
  return [map, () => {
    closeAll(map);
    b.close();
  }];
}

describe.each(runners)('delayed calls under %s', (name, run) => {
  const isAsync = name.startsWith('loopAsync');

  it('an empty map with pending calls sleeps until each, runs them in deadline order, then returns', async () => {
    const map = new ChannelMap();
    const ran: number[] = [];
    let early = 0;
    const t0 = now();
    const calls = [40, 10, 25, 0, 10].map((ms, i) => {
      const c: DelayedCall = callLater(ms / 1000, () => {
        if (now() < c.deadline) early++;
        ran.push(i);
      }, { map });
      return c;
    });
    const scheduling = now() - t0;
    await run(map);
    // Deadline order (the delays count from each call's own scheduling: on a slow run they may interleave).
    const byDeadline = calls.map((c, i) => [c.deadline, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i);
    expect(ran).toEqual(byDeadline);
    if (scheduling < 0.005) expect(byDeadline).toEqual([3, 1, 4, 2, 0]);
    expect(early).toBe(0);
    expect(now() - t0).toBeGreaterThanOrEqual(0.04);
    expect(timersOf(map)!.pending).toBe(0);
  });

  it('the wait is cut to the next deadline: a call 50 ms away runs long before the 30 s timeout', async () => {
    const [map, done] = idleMap();
    const t0 = now();
    let at = 0;
    callLater(0.05, () => {
      at = now() - t0;
      done();
    }, { map });
    await run(map, { timeout: 30 });
    expect(at).toBeGreaterThanOrEqual(0.05);
    expect(at).toBeLessThan(5);
  });

  it('equal-delay calls run in scheduling order (FIFO), 1000 of them in one pass', async () => {
    const map = new ChannelMap();
    const ran: number[] = [];
    for (let i = 0; i < 1000; i++) callLater(0, () => ran.push(i), { map });
    await run(map, { count: 1 });
    expect(ran).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('a call made by a call (delay 0) runs on the next pass, not in the same one', async () => {
    const map = new ChannelMap();
    const ran: string[] = [];
    callLater(0, () => {
      ran.push('a');
      callLater(0, () => {
        ran.push('b');
        callLater(0, () => ran.push('c'), { map });
      }, { map });
    }, { map });
    await run(map, { count: 1 });
    expect(ran).toEqual(['a']);
    await run(map, { count: 1 });
    expect(ran).toEqual(['a', 'b']);
    await run(map);
    expect(ran).toEqual(['a', 'b', 'c']);
  });

  it('cancel: a cancelled call never runs, even when an earlier call due in the same pass cancels it', async () => {
    const map = new ChannelMap();
    const ran: string[] = [];
    const later = callLater(0.01, () => ran.push('never'), { map });
    later.cancel();
    let victim: DelayedCall;
    callLater(0, () => {
      ran.push('first');
      victim.cancel();
    }, { map });
    victim = callLater(0, () => ran.push('victim'), { map });
    callLater(0.02, () => ran.push('last'), { map });
    await run(map);
    expect(ran).toEqual(['first', 'last']);
  });

  it('reset and delay move a pending call', async () => {
    const map = new ChannelMap();
    const ran: string[] = [];
    const a = callLater(0.05, () => ran.push('a'), { map });
    const b = callLater(1, () => ran.push('b'), { map });
    callLater(0.01, () => {
      a.reset(); // now + 50 ms: still before c
      b.delay(0); // next pass
    }, { map });
    callLater(0.2, () => ran.push('c'), { map });
    await run(map);
    expect(ran).toEqual(['b', 'a', 'c']);
  });

  it('a callEvery repeats until cancelled, its runs never early', async () => {
    const map = new ChannelMap();
    const deadlines: number[] = [];
    let early = 0;
    const every: DelayedCall = callEvery(0.01, () => {
      if (now() < every.deadline) early++;
      deadlines.push(every.deadline);
      if (deadlines.length === 5) every.cancel();
    }, { map });
    await run(map);
    expect(deadlines.length).toBe(5);
    expect(early).toBe(0);
    // On the rhythm start + k·10 ms (a loaded machine may skip slots, never shift them).
    let last = 0;
    for (const d of deadlines) {
      const k = Math.round((d - (deadlines[0]! - 0.01)) / 0.01);
      expect(Math.abs(d - (deadlines[0]! - 0.01 + k * 0.01))).toBeLessThan(1e-6);
      expect(k).toBeGreaterThan(last);
      last = k;
    }
  });

  it('an error from a callback goes to onTimerError and the loop goes on', async () => {
    const map = new ChannelMap();
    const boom = new Error('boom');
    const seen: Array<[unknown, DelayedCall]> = [];
    const ran: string[] = [];
    const bad = callLater(0, () => {
      throw boom;
    }, { map });
    callLater(0.005, () => ran.push('after'), { map });
    await run(map, { onTimerError: (err, call) => seen.push([err, call]) });
    expect(seen).toEqual([[boom, bad]]);
    expect(ran).toEqual(['after']);
  });

  it('by default an error from a callback is logged as a compact traceback on stdout', async () => {
    const map = new ChannelMap();
    callLater(0, () => {
      throw new TypeError('from a timer');
    }, { map });
    const chunks: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((c: string) => (chunks.push(String(c)), true)) as typeof write;
    try {
      await run(map);
    } finally {
      process.stdout.write = write;
    }
    expect(chunks.join('')).toMatch(/^error: uncaptured exception in a delayed call \(TypeError:from a timer \[.+\|.+\|\d+\]/);
  });

  it('ExitNow from a callback leaves the loop; the other calls stay queued', async () => {
    const map = new ChannelMap();
    const ran: string[] = [];
    callLater(0, () => {
      throw new ExitNow('stop');
    }, { map });
    callLater(0, () => ran.push('next'), { map });
    await expect(run(map)).rejects.toThrow(ExitNow);
    expect(ran).toEqual([]);
    expect(timersOf(map)!.pending).toBe(1);
    await run(map);
    expect(ran).toEqual(['next']);
  });

  it('exit rule: the loop runs while there are channels or calls; count counts passes as before', async () => {
    const [map, done] = idleMap();
    const ran: string[] = [];
    // The channel goes at 10 ms; the loop must still wait for the call at 100 ms.
    callLater(0.01, () => {
      ran.push('close');
      done();
    }, { map });
    callLater(0.1, () => ran.push('last'), { map });
    await run(map);
    expect(ran).toEqual(['close', 'last']);
    expect(map.size).toBe(0);
    // Nothing left: returns at once.
    const t0 = now();
    await run(map);
    expect(now() - t0).toBeLessThan(1);
    // count: two passes with a call due in 10 s: each pass waits only its timeout.
    const far = callLater(10, () => {}, { map });
    const t1 = now();
    await run(map, { count: 2, timeout: 0.01 });
    // (Node's timers, which loopAsync's timeout uses, keep whole ms and may end a wait a little early.)
    expect(now() - t1).toBeGreaterThanOrEqual(0.015);
    expect(now() - t1).toBeLessThan(5);
    expect(far.pending).toBe(true);
    far.cancel();
  });

  it('a timer beside a busy echo connection: it fires on time-ish and the echo keeps flowing', async () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    a.setblocking(false);
    b.setblocking(false);
    new Echo(a, map);
    const client = new PingPong(b, map).start();
    let ticks = 0, early = 0;
    let roundsAtFirstTick = -1;
    const tick: DelayedCall = callEvery(0.02, () => {
      if (now() < tick.deadline) early++;
      if (ticks === 0) roundsAtFirstTick = client.rounds;
      ticks++;
    }, { map });
    const t0 = now();
    callLater(0.3, () => {
      tick.cancel();
      closeAll(map);
    }, { map });
    await run(map);
    const elapsed = now() - t0;
    expect(early).toBe(0);
    // 15 slots in 300 ms; a loaded machine may skip some, never all.
    expect(ticks).toBeGreaterThanOrEqual(3);
    expect(ticks).toBeLessThanOrEqual(15);
    expect(client.rounds).toBeGreaterThan(100);
    expect(client.rounds).toBeGreaterThan(roundsAtFirstTick);
    expect(elapsed).toBeGreaterThanOrEqual(0.3);
    expect(elapsed).toBeLessThan(10);
  });

  it('no call ever runs early: 300 calls spread over 60 ms beside a channel', async () => {
    const [map, done] = idleMap();
    let ran = 0, early = 0;
    for (let i = 0; i < 300; i++) {
      const c: DelayedCall = callLater(Math.random() * 0.06, () => {
        if (now() < c.deadline) early++;
        if (++ran === 300) done();
      }, { map });
    }
    await run(map);
    expect([ran, early]).toEqual([300, 0]);
  });

  it('signals: a trapped signal sent during the loop leaves it with Interrupted after the pass; the listener is not called, then is again', async () => {
    let heard = 0;
    const l = () => heard++;
    process.on('SIGUSR2', l);
    try {
      const [map, done] = idleMap();
      const ran: string[] = [];
      callLater(0.005, () => process.kill(process.pid, 'SIGUSR2'), { map });
      const never = callLater(20, () => ran.push('never'), { map });
      let err: unknown;
      try {
        await run(map, { signals: ['SIGUSR2', 'SIGTERM'], timeout: null });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Interrupted);
      expect((err as Interrupted).signal).toBe('SIGUSR2');
      never.cancel();
      done();
      await new Promise((r) => setTimeout(r, 30));
      expect(heard).toBe(0);
      process.kill(process.pid, 'SIGUSR2');
      const end = Date.now() + 2000;
      while (heard === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      expect(heard).toBe(1);
    } finally {
      process.off('SIGUSR2', l);
    }
  });

  it('signals: one that arrives in the last counted pass is not dropped; an empty map waits on the trap too', async () => {
    let heard = 0;
    const l = () => heard++;
    process.on('SIGUSR2', l);
    try {
      const map = new ChannelMap();
      callLater(0, () => process.kill(process.pid, 'SIGUSR2'), { map });
      await expect(run(map, { signals: ['SIGUSR2'], count: 1 })).rejects.toThrow(Interrupted);
      // An empty map whose only call is far away: the signal ends the sleep.
      const far = callLater(30, () => {}, { map });
      if (isAsync) setTimeout(() => process.kill(process.pid, 'SIGUSR2'), 20);
      // loop() blocks this thread: the signal has to come from another process.
      else spawn('sh', ['-c', `sleep 0.05; kill -USR2 ${process.pid}`], { stdio: 'ignore' });
      const t0 = now();
      await expect(run(map, { signals: ['SIGUSR2'], timeout: null })).rejects.toThrow(Interrupted);
      expect(now() - t0).toBeLessThan(10);
      far.cancel();
      await new Promise((r) => setTimeout(r, 30));
      expect(heard).toBe(0);
    } finally {
      process.off('SIGUSR2', l);
    }
  });
});

describe('loopAsync and calls made from outside its passes', () => {
  it('a call made from a Node callback re-arms the wake-up (it runs on time, not at the 30 s timeout)', async () => {
    const [map, done] = idleMap();
    let at = 0;
    // Measured from when the call is made: Node's own setTimeout may fire up to 1 ms early.
    setTimeout(() => {
      const t0 = now();
      callLater(0.03, () => {
        at = now() - t0;
        done();
      }, { map });
    }, 20);
    await loopAsync({ map, backend: 'epoll', timeout: 30 });
    expect(at).toBeGreaterThanOrEqual(0.03);
    expect(at).toBeLessThan(5);
  });

  it('moving the earliest call later from outside does not run it early; cancelling it does not end the loop early', async () => {
    const [map, done] = idleMap();
    let early = 0, ran = 0;
    const c: DelayedCall = callLater(0.02, () => {
      if (now() < c.deadline) early++;
      ran++;
    }, { map });
    setTimeout(() => c.delay(0.1), 5);
    const t0 = now(); // before the call is made: its deadline is then >= t0 + 0.2
    const last = callLater(0.2, () => done(), { map });
    await loopAsync({ map, backend: 'epoll', timeout: 30 });
    expect([ran, early]).toEqual([1, 0]);
    expect(last.pending).toBe(false);
    expect(now() - t0).toBeGreaterThanOrEqual(0.2);
  });
});

describe('loop options for timers and signals', () => {
  it.each([
    ['signals that are not an array', { signals: 'SIGINT' as unknown as string[] }, TypeError],
    ['an unknown signal name', { signals: ['SIGNOPE'] }, RangeError],
    ['SIGKILL', { signals: ['SIGKILL'] }, RangeError],
    ['onTimerError that is not a function', { onTimerError: 5 as unknown as () => void }, TypeError],
  ])('%s is refused by loop() and loopAsync()', async (_what, o, type) => {
    const map = new ChannelMap();
    expect(() => loop({ ...o, map })).toThrow(type);
    await expect(loopAsync({ ...o, map })).rejects.toThrow(type);
  });

  it('an empty signals list traps nothing', () => {
    const map = new ChannelMap();
    let ran = false;
    callLater(0, () => (ran = true), { map });
    loop({ map, signals: [] });
    expect(ran).toBe(true);
  });
});

describe('signals: a child blocked in the loop', () => {
  afterEach(killAll);
  const fixture = path.join(root, 'test/fixtures/loop-signal-child.mjs');

  /** Starts the child, sends `sig`, and returns its output, exit and how long the signal took to reach its finally. */
  async function signalled(args: string[], sig: NodeJS.Signals): Promise<{ out: string; exit: Exit; ms: number }> {
    const p = await startProgram(fixture, args);
    const t0 = Date.now();
    p.child.kill(sig);
    let ms = Infinity;
    while (Date.now() - t0 < 5000) {
      if (p.stdout().includes('finally\n')) {
        ms = Date.now() - t0;
        break;
      }
      if (p.child.exitCode !== null || p.child.signalCode !== null) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    // It ends by itself (the signal it sends itself afterwards); a stuck one is killed.
    const stuck = setTimeout(() => p.child.kill('SIGKILL'), 5000);
    const exit = await p.exited;
    clearTimeout(stuck);
    return { out: p.stdout(), exit, ms };
  }

  const cases: Array<[string, string]> = [
    ['select', 'loop'], ['poll', 'loop'], ['epoll', 'loop'], ['selector', 'loop'],
    ['epoll', 'async'], ['select', 'async'],
  ];

  it.each(cases)('%s (%s), no JS listener: SIGTERM leaves through finally with Interrupted, then kills it as before', async (backend, runner) => {
    const { out, exit, ms } = await signalled([backend, 'default', runner], 'SIGTERM');
    expect(out).toContain('caught Interrupted SIGTERM\nfinally\n');
    expect(ms).toBeLessThan(1000);
    expect(out).not.toContain('still alive');
    expect(exit.signal).toBe('SIGTERM');
  });

  it.each(cases)('%s (%s), with process.on("SIGINT"): SIGINT leaves through finally, then the listener gets the next one', async (backend, runner) => {
    const { out, exit, ms } = await signalled([backend, 'listener', runner], 'SIGINT');
    expect(out).toContain('caught Interrupted SIGINT\nfinally\nlistener SIGINT\n');
    expect(ms).toBeLessThan(1000);
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it.each(cases.slice(0, 1).concat([['epoll', 'async']]))('difference: %s (%s): a signal not named in `signals` keeps Node\'s behaviour — SIGINT kills it, no finally (Python always raises KeyboardInterrupt)', async (backend, runner) => {
    const { out, exit } = await signalled([backend, 'termonly', runner], 'SIGINT');
    expect(out).not.toContain('finally');
    expect(exit.signal).toBe('SIGINT');
  });
});
