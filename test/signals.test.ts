/**
 * SignalTrap: real signals sent to this process and to children; the trap's
 * fd is watched with the library's own Poll. SIGUSR2 is the signal used in
 * process (SIGUSR1 would start Node's inspector); a JS listener is always
 * registered for it first, so a trap that failed to catch it shows as a
 * listener call instead of a dead test worker.
 */
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { killAll, root, startProgram } from './helpers/cli.js';
import { native } from '../src/native.js';
import { POLLIN } from '../src/constants.js';
import { Interrupted, OSError, errno as E } from '../src/errors.js';
import { Poll } from '../src/select.js';
import { SignalTrap } from '../src/asyncore/signals.js';
import * as pkg from '../src/index.js';

trackFds();
afterEach(killAll);

const fixture = path.join(root, 'test/fixtures/signal-trap-child.mjs');

/** True when `fd` becomes readable within `ms`. */
function readable(fd: number, ms = 2000): boolean {
  const p = new Poll();
  p.register(fd, POLLIN);
  return p.poll(ms).some(([f, ev]) => f === fd && (ev & POLLIN) !== 0);
}

/** Counts the JS listener's calls for SIGUSR2 while the test runs. */
function usr2Listener(): { calls: () => number; waitFor: (n: number, ms?: number) => Promise<boolean>; off: () => void } {
  let n = 0;
  const l = () => n++;
  process.on('SIGUSR2', l);
  return {
    calls: () => n,
    waitFor: async (want, ms = 2000) => {
      const end = Date.now() + ms;
      while (n < want && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      return n >= want;
    },
    off: () => process.off('SIGUSR2', l),
  };
}

/** Gives libuv's signal pipe a few turns to deliver anything pending. */
const settle = () => new Promise((r) => setTimeout(r, 50));

describe('SignalTrap: arguments', () => {
  it.each([
    ['a string', () => new SignalTrap('SIGINT' as unknown as string[]), TypeError],
    ['a number in the list', () => new SignalTrap([2 as unknown as string]), TypeError],
    ['an unknown name', () => new SignalTrap(['SIGNOPE']), RangeError],
    ['a prototype key', () => new SignalTrap(['toString']), RangeError],
    ['an empty list', () => new SignalTrap([]), RangeError],
    ['SIGKILL', () => new SignalTrap(['SIGKILL']), RangeError],
    ['SIGSTOP with SIGUSR2', () => new SignalTrap(['SIGUSR2', 'SIGSTOP']), RangeError],
    ['SIGSEGV (a fault signal)', () => new SignalTrap(['SIGSEGV']), RangeError],
    ['SIGBUS', () => new SignalTrap(['SIGBUS']), RangeError],
    ['SIGFPE', () => new SignalTrap(['SIGFPE']), RangeError],
    ['SIGILL', () => new SignalTrap(['SIGILL']), RangeError],
  ])('%s is refused', (_what, f, type) => {
    expect(f).toThrow(type);
  });

  it.each([
    ['signalTrapOpen("x")', () => native.signalTrapOpen('x' as unknown as number[]), TypeError],
    ['signalTrapOpen([])', () => native.signalTrapOpen([]), RangeError],
    ['signalTrapOpen([1.5])', () => native.signalTrapOpen([1.5]), TypeError],
    ['signalTrapOpen(["2"])', () => native.signalTrapOpen(['2' as unknown as number]), TypeError],
    ['signalTrapOpen([NaN])', () => native.signalTrapOpen([NaN]), TypeError],
    ['signalTrapOpen([0])', () => native.signalTrapOpen([0]), RangeError],
    ['signalTrapOpen([65])', () => native.signalTrapOpen([65]), RangeError],
    ['signalTrapOpen([9]) (SIGKILL)', () => native.signalTrapOpen([9]), RangeError],
    ['signalTrapOpen([19]) (SIGSTOP)', () => native.signalTrapOpen([19]), RangeError],
    ['signalTrapOpen([11]) (SIGSEGV)', () => native.signalTrapOpen([11]), RangeError],
    ['signalTrapTake(-1)', () => native.signalTrapTake(-1), RangeError],
    ['signalTrapTake(64)', () => native.signalTrapTake(64), RangeError],
    ['signalTrapTake("0")', () => native.signalTrapTake('0' as unknown as number), TypeError],
    ['signalTrapClose(1e9)', () => native.signalTrapClose(1e9), RangeError],
    ['signalTrapClose()', () => (native.signalTrapClose as () => number)(), TypeError],
  ])('native %s throws, never crashes', (_what, f, type) => {
    expect(f).toThrow(type);
  });

  it('a slot that is not open is EBADF, returned as a value', () => {
    expect(native.signalTrapTake(63)).toBe(-E.EBADF!);
    expect(native.signalTrapClose(63)).toBe(-E.EBADF!);
  });

  it('a number the C library keeps for itself (32, glibc) is EINVAL and nothing stays installed', async () => {
    const l = usr2Listener();
    try {
      // SIGUSR2 comes before 32 in the list: it must be rolled back.
      expect(native.signalTrapOpen([osConstants.signals.SIGUSR2, 32])).toBe(-E.EINVAL!);
      process.kill(process.pid, 'SIGUSR2');
      expect(await l.waitFor(1)).toBe(true);
    } finally {
      l.off();
    }
  });
});

describe('SignalTrap: a real signal to this process', () => {
  it('Interrupted is exported, with its name, code and signal', () => {
    const e = new pkg.Interrupted('SIGTERM');
    expect([e.name, e.code, e.signal, e.message]).toEqual(['Interrupted', 'ERR_INTERRUPTED', 'SIGTERM', 'interrupted by SIGTERM']);
    expect(e).toBeInstanceOf(Error);
    expect(pkg.SignalTrap).toBe(SignalTrap);
  });

  it('the fd becomes readable, take() names the signal once, the JS listener is not called; close() gives it back', async () => {
    const l = usr2Listener();
    try {
      const trap = new SignalTrap(['SIGUSR2']);
      expect(trap.signals).toEqual(['SIGUSR2']);
      expect(trap.fileno()).toBe(trap.fd);
      expect(native.getFlag(trap.fd, 0)).toBe(1); // O_NONBLOCK
      expect(native.getFlag(trap.fd, 1)).toBe(1); // FD_CLOEXEC
      expect(trap.take()).toBeNull();
      expect(readable(trap.fd, 0)).toBe(false);
      process.kill(process.pid, 'SIGUSR2');
      expect(readable(trap.fd)).toBe(true);
      expect(trap.take()).toBe('SIGUSR2');
      expect(trap.take()).toBeNull();
      expect(readable(trap.fd, 0)).toBe(false);
      await settle();
      expect(l.calls()).toBe(0);
      trap.close();
      expect([trap.closed, trap.fd]).toEqual([true, -1]);
      trap.close(); // twice is harmless
      expect(() => trap.take()).toThrow(OSError);
      process.kill(process.pid, 'SIGUSR2');
      expect(await l.waitFor(1)).toBe(true);
    } finally {
      l.off();
    }
  });

  it('take() returns the first signal that arrived, then the others', async () => {
    const l = usr2Listener();
    const winch = () => {};
    process.on('SIGWINCH', winch);
    const trap = new SignalTrap(['SIGUSR2', 'SIGWINCH', 'SIGUSR2']);
    try {
      expect(trap.signals).toEqual(['SIGUSR2', 'SIGWINCH']);
      process.kill(process.pid, 'SIGWINCH');
      expect(readable(trap.fd)).toBe(true);
      process.kill(process.pid, 'SIGUSR2');
      // The fd is readable already: give the second signal a moment to land.
      await settle();
      expect(trap.take()).toBe('SIGWINCH');
      expect(trap.take()).toBe('SIGUSR2');
      expect(trap.take()).toBeNull();
      await settle();
      expect(l.calls()).toBe(0);
    } finally {
      trap.close();
      l.off();
      process.off('SIGWINCH', winch);
    }
  });

  it('traps nest: both see the signal; the listener returns only when the last closes, in any order', async () => {
    const l = usr2Listener();
    try {
      const a = new SignalTrap(['SIGUSR2']);
      const b = new SignalTrap(['SIGUSR2']);
      process.kill(process.pid, 'SIGUSR2');
      expect(readable(a.fd)).toBe(true);
      expect(readable(b.fd)).toBe(true);
      expect([a.take(), b.take()]).toEqual(['SIGUSR2', 'SIGUSR2']);
      a.close(); // the first opened closes first
      process.kill(process.pid, 'SIGUSR2');
      expect(readable(b.fd)).toBe(true);
      expect(b.take()).toBe('SIGUSR2');
      await settle();
      expect(l.calls()).toBe(0);
      b.close();
      process.kill(process.pid, 'SIGUSR2');
      expect(await l.waitFor(1)).toBe(true);
    } finally {
      l.off();
    }
  });

  it('64 traps can be open at once; the 65th is OSError EMFILE and leaves nothing behind', () => {
    const traps: SignalTrap[] = [];
    try {
      for (let i = 0; i < 64; i++) traps.push(new SignalTrap(['SIGWINCH']));
      let err: unknown;
      try {
        new SignalTrap(['SIGWINCH']);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OSError);
      expect((err as OSError).code).toBe('EMFILE');
    } finally {
      for (const t of traps) t.close();
    }
  });

  it('a trap is process-wide: opened in a worker it sees a signal sent to the process; the worker ending closes it', async () => {
    const l = usr2Listener();
    const url = pathToFileURL(path.join(root, 'dist/asyncore/signals.js')).href;
    const selectUrl = pathToFileURL(path.join(root, 'dist/select.js')).href;
    const code = `
      const { parentPort } = require('node:worker_threads');
      (async () => {
        const { SignalTrap } = await import(${JSON.stringify(url)});
        const { Poll } = await import(${JSON.stringify(selectUrl)});
        const trap = new SignalTrap(['SIGUSR2']);
        const p = new Poll();
        p.register(trap.fd, 1);
        parentPort.postMessage({ ready: true, slot: trap.slot });
        p.poll(5000);
        parentPort.postMessage({ took: trap.take() });
        // Left open on purpose: the worker's teardown must close it.
      })();
    `;
    try {
      const w = new Worker(code, { eval: true });
      const messages: Array<{ ready?: boolean; slot?: number; took?: string | null }> = [];
      let ready!: () => void;
      const isReady = new Promise<void>((r) => (ready = r));
      w.on('message', (m) => {
        messages.push(m);
        if (m.ready) ready();
      });
      const exited = new Promise((r) => w.on('exit', r));
      await isReady;
      // The worker's trap belongs to the worker: this thread may not take from it or close it.
      const slot = messages[0]!.slot!;
      expect(native.signalTrapTake(slot)).toBe(-E.EPERM!);
      expect(native.signalTrapClose(slot)).toBe(-E.EPERM!);
      process.kill(process.pid, 'SIGUSR2');
      await exited;
      expect(messages.at(-1)).toEqual({ took: 'SIGUSR2' });
      expect(l.calls()).toBe(0);
      process.kill(process.pid, 'SIGUSR2');
      expect(await l.waitFor(1)).toBe(true);
    } finally {
      l.off();
    }
  });
});

describe('SignalTrap: a child blocked in poll(2)', () => {
  it('without a JS listener: SIGTERM wakes the wait, the finally runs, then SIGTERM kills it as before (and SIGPIPE is ignored again)', async () => {
    const p = await startProgram(fixture, ['default']);
    const exit = await p.stop('SIGTERM', 5000);
    expect(p.stdout()).toContain('took SIGTERM\nrestored\n');
    expect(p.stdout()).not.toContain('still alive');
    expect(exit.signal).toBe('SIGTERM');
  });

  it('with process.on("SIGINT"): SIGINT wakes the wait (the listener alone could not run), then the listener gets it again', async () => {
    const p = await startProgram(fixture, ['listener']);
    const exit = await p.stop('SIGINT', 5000);
    expect(p.stdout()).toContain('took SIGINT\nrestored\nlistener SIGINT\n');
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
