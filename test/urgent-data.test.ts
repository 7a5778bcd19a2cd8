/**
 * TCP urgent data ("out-of-band", MSG_OOB) against the README-style echo
 * server, under every backend of `loop` and `loopAsync`: one urgent byte per
 * connection must not make the loop spin (the kernel reports POLLPRI until
 * the byte is read, tcp(7)), and every connection keeps echoing.
 *
 * Each test runs one idle window of about a second over connections of
 * every family that has urgent data, with and without SO_OOBINLINE, and
 * measures the passes and the process's CPU time in it. Spinning shows as
 * hundreds of thousands of passes (loop) and about half a second of CPU
 * (loopAsync) per second; an idle loop makes about 20
 * passes (50 ms waits) and 1-10 ms of CPU. The bounds are generous for a
 * shared 2-core machine.
 */
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { families, sleep, type FamilyCase } from './helpers/net.js';
import { ChannelMap, Dispatcher, DispatcherWithSend, closeAll, loop, loopAsync } from '../src/asyncore/index.js';
import { OSError, errno as E } from '../src/errors.js';
import { AF_UNIX, MSG_OOB, SOCK_STREAM, SOL_SOCKET, SO_OOBINLINE, Socket, socketpair, type Address } from '../src/socket.js';

trackFds();

const backends = ['select', 'poll', 'epoll'] as const;

/** AF_UNIX stream sockets carry one urgent byte only with CONFIG_AF_UNIX_OOB (Linux >= 5.15); TCP always does. */
const UNIX_OOB = (() => {
  const [a, b] = socketpair();
  try {
    a.send('x', MSG_OOB);
    return true;
  } catch (err) {
    if (err instanceof OSError && err.errno === E.EOPNOTSUPP) return false;
    throw err;
  } finally {
    a.close();
    b.close();
  }
})();
const oobFamilies = families.filter((fc) => fc.family !== AF_UNIX || UNIX_OOB);

/** The README's echo handler, with the default handleExpt; it records what it logs. */
class EchoHandler extends DispatcherWithSend {
  logged: string[] = [];
  override handleRead(): void {
    const data = this.recv(65536);
    if (data.length) this.send(data);
  }
  override handleClose(): void {
    this.close();
  }
  override logInfo(message: string, type = 'info'): void {
    this.logged.push(`${type}: ${message}`);
  }
}

class EchoServer extends Dispatcher {
  handlers: EchoHandler[] = [];
  constructor(fc: FamilyCase, map: ChannelMap, readonly inline: boolean) {
    super(null, map);
    this.createSocket(fc.family, SOCK_STREAM);
    this.bind(fc.bindAddr());
    this.listen(16);
  }
  get address(): Address {
    return (this.socket as Socket).getsockname();
  }
  override handleAccepted(sock: Socket): void {
    if (this.inline) sock.setsockopt(SOL_SOCKET, SO_OOBINLINE, 1);
    this.handlers.push(new EchoHandler(sock, this._map));
  }
}

interface Conn {
  name: string;
  server: EchoServer;
  client: Socket;
  got: string;
}

/** One echo server per family and urgent-data mode, and a connected client for each. */
function setUp(map: ChannelMap): Conn[] {
  const conns: Conn[] = [];
  for (const fc of oobFamilies) {
    for (const inline of [false, true]) {
      const server = new EchoServer(fc, map, inline);
      const client = new Socket(fc.family, SOCK_STREAM);
      conns.push({ name: `${fc.name}${inline ? ' SO_OOBINLINE' : ''}`, server, client, got: '' });
      // The kernel completes the handshake before accept(); the loop accepts later.
      client.connect(server.address);
      client.setblocking(false);
    }
  }
  return conns;
}

/** Reads what each client has, without waiting. */
function pump(conns: Conn[]): void {
  for (const c of conns) {
    for (;;) {
      let d: Buffer;
      try {
        d = c.client.recv(65536);
      } catch (err) {
        if (err instanceof OSError && err.errno === E.EAGAIN) break;
        throw err;
      }
      if (d.length === 0) break;
      c.got += d.toString('latin1');
    }
  }
}

/**
 * The test's script in three steps, around the idle window: echo works;
 * 'ab' then the urgent byte '!'; after the window, 'cd'. Without
 * SO_OOBINLINE the default handleExpt drops '!' (echo 'abcd'); with it,
 * '!' is ordinary data in its place (echo 'ab!cd').
 */
const steps = {
  hello(conns: Conn[]): void {
    for (const c of conns) c.client.sendall('hello ');
  },
  urgent(conns: Conn[]): void {
    for (const c of conns) {
      c.client.sendall('ab');
      c.client.send('!', MSG_OOB);
    }
  },
  after(conns: Conn[]): void {
    for (const c of conns) c.client.sendall('cd');
  },
  expected(c: Conn): string {
    return c.server.inline ? 'hello ab!cd' : 'hello abcd';
  },
};

function expectEchoesAndOneWarning(conns: Conn[]): void {
  for (const c of conns) {
    expect(c.got, c.name).toBe(steps.expected(c));
    const [h] = c.server.handlers;
    // POLLPRI reached the default handleExpt (with SO_OOBINLINE too): one warning, however many events.
    expect(h!.logged, c.name).toEqual(['warning: unhandled incoming priority event']);
  }
}

/** The idle window's bounds: a spinning loop exceeds both by far. */
const MAX_PASSES = 150;
const MAX_CPU_MS = 200;

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

describe.each(backends)('urgent data under loop() with %s', (backend) => {
  /** Runs 10 ms passes until `done()` (at most 5 s). */
  function drive(map: ChannelMap, conns: Conn[], done: () => boolean): void {
    const end = performance.now() + 5000;
    while (!done()) {
      if (performance.now() > end) throw new Error(`timed out; got ${conns.map((c) => JSON.stringify(c.got)).join(' ')}`);
      loop({ timeout: 0.01, count: 1, map, backend });
      pump(conns);
    }
  }

  it('one urgent byte per connection: the loop stays idle (the default handleExpt drops it, warns once) and every connection keeps echoing', () => {
    const map = new ChannelMap();
    let conns: Conn[] = [];
    try {
      conns = setUp(map);
      steps.hello(conns);
      drive(map, conns, () => conns.every((c) => c.got === 'hello '));
      steps.urgent(conns);
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      let passes = 0;
      while (performance.now() - t0 < 1000) {
        loop({ timeout: 0.05, count: 1, map, backend });
        passes++;
      }
      const cpu = cpuMs(cpu0);
      expect(passes, `${passes} passes in 1 s (spinning)`).toBeLessThan(MAX_PASSES);
      expect(cpu, `${cpu.toFixed(0)} ms of CPU in 1 s`).toBeLessThan(MAX_CPU_MS);
      pump(conns);
      steps.after(conns);
      drive(map, conns, () => conns.every((c) => c.got === steps.expected(c)));
      expectEchoesAndOneWarning(conns);
    } finally {
      for (const c of conns) c.client.close();
      closeAll(map);
    }
  });
});

describe.each(backends)('urgent data under loopAsync() with %s', (backend) => {
  async function settle(conns: Conn[], done: () => boolean): Promise<void> {
    const end = performance.now() + 5000;
    while (!done()) {
      if (performance.now() > end) throw new Error(`timed out; got ${conns.map((c) => JSON.stringify(c.got)).join(' ')}`);
      await sleep(5);
      pump(conns);
    }
  }

  it('one urgent byte per connection: the process stays idle and every connection keeps echoing', async () => {
    const map = new ChannelMap();
    let conns: Conn[] = [];
    let running: Promise<void> | null = null;
    try {
      conns = setUp(map);
      running = loopAsync({ map, backend, timeout: null });
      steps.hello(conns);
      await settle(conns, () => conns.every((c) => c.got === 'hello '));
      steps.urgent(conns);
      const cpu0 = process.cpuUsage();
      await sleep(1000);
      const cpu = cpuMs(cpu0);
      expect(cpu, `${cpu.toFixed(0)} ms of CPU in 1 s`).toBeLessThan(MAX_CPU_MS);
      pump(conns);
      steps.after(conns);
      await settle(conns, () => conns.every((c) => c.got === steps.expected(c)));
      expectEchoesAndOneWarning(conns);
    } finally {
      for (const c of conns) c.client.close();
      closeAll(map);
      await running;
    }
  });
});

describe('urgent data: the hooks', () => {
  it('an override of handleExpt is called instead of the default, which then reads nothing', () => {
    const map = new ChannelMap();
    const tcp: Socket[] = [];
    try {
      let oob: Buffer | null = null;
      class Takes extends Dispatcher {
        override writable(): boolean {
          return false;
        }
        override handleExpt(): void {
          oob = (this.socket as Socket).recv(1, MSG_OOB);
        }
      }
      const l = new Socket();
      tcp.push(l);
      l.bind(['127.0.0.1', 0]);
      l.listen(1);
      const c = new Socket();
      tcp.push(c);
      c.connect(l.getsockname());
      const [s] = l.accept();
      tcp.push(s);
      new Takes(s, map);
      c.send(Buffer.from([0xf4]), MSG_OOB);
      for (let i = 0; i < 100 && oob === null; i++) loop({ timeout: 0.01, count: 1, map, backend: 'poll' });
      expect(oob).toEqual(Buffer.from([0xf4]));
    } finally {
      closeAll(map);
      for (const s of tcp) s.close();
    }
  });

  it('the default handleExpt with nothing urgent to read (EINVAL) and on a socketless dispatcher is harmless', () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    try {
      const d = new EchoHandler(a, map);
      d.handleExpt();
      d.handleExpt();
      expect(d.logged).toEqual(['warning: unhandled incoming priority event']);
      expect(map.size).toBe(1);
      const bare = new EchoHandler(null, map);
      bare.handleExpt();
      expect(bare.logged).toHaveLength(1);
    } finally {
      closeAll(map);
      b.close();
    }
  });
});
