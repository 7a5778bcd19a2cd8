import { spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { ChannelMap, Dispatcher, DispatcherWithSend, closeAll, loopAsync } from '../src/asyncore/index.js';
import { AF_INET, SOCK_STREAM, Socket, socketpair } from '../src/socket.js';

trackFds();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const backends = ['select', 'poll', 'epoll'] as const;

class Echo extends DispatcherWithSend {
  override handleRead(): void {
    const d = this.recv(65536);
    if (d.length) this.send(d);
  }
  override handleClose(): void {
    this.close();
  }
}

class EchoServer extends Dispatcher {
  constructor(map: ChannelMap) {
    super(null, map);
    this.createSocket(AF_INET, SOCK_STREAM);
    this.setReuseAddr();
    this.bind(['127.0.0.1', 0]);
    this.listen(128);
  }
  get port(): number {
    return ((this.socket as Socket).getsockname() as [string, number])[1];
  }
  override handleAccepted(sock: Socket): void {
    new Echo(sock, this._map);
  }
}

/** A node:net client that sends `rounds` messages one at a time and checks each echo. */
function pingPong(port: number, rounds: number, size = 64): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    const msg = Buffer.alloc(size, 7);
    let got = 0, done = 0;
    c.on('connect', () => c.write(msg));
    c.on('data', (d) => {
      got += d.length;
      while (got >= size) {
        got -= size;
        done++;
        if (done === rounds) {
          c.end();
          return resolve(done);
        }
        c.write(msg);
      }
    });
    c.on('error', reject);
  });
}

describe.each(backends)('loopAsync over %s', (backend) => {
  it('an http server and an asyncore echo server answer together under load', async () => {
    const map = new ChannelMap();
    const server = new EchoServer(map);
    const ac = new AbortController();
    const running = loopAsync({ backend, map, timeout: 5, signal: ac.signal }).catch((e) => e);
    const httpServer = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    const hport = (httpServer.address() as net.AddressInfo).port;
    try {
      const httpLoad = (async () => {
        let n = 0;
        for (let i = 0; i < 100; i++) {
          const body = await new Promise<string>((resolve, reject) => {
            http.get({ port: hport, host: '127.0.0.1', agent: false }, (res) => {
              let b = '';
              res.on('data', (d) => (b += d));
              res.on('end', () => resolve(b));
            }).on('error', reject);
          });
          if (body === 'ok') n++;
        }
        return n;
      })();
      const echoLoad = Promise.all(Array.from({ length: 20 }, () => pingPong(server.port, 200)));
      const [httpOk, echoed] = await Promise.all([httpLoad, echoLoad]);
      expect(httpOk).toBe(100);
      expect(echoed.reduce((a, b) => a + b, 0)).toBe(20 * 200);
    } finally {
      ac.abort(new Error('done'));
      expect(((await running) as Error).message).toBe('done');
      closeAll(map);
      await new Promise((r) => httpServer.close(r));
    }
  });

  it('uses no CPU while idle and a 10 ms interval keeps its rhythm', async () => {
    const map = new ChannelMap();
    new EchoServer(map);
    const ac = new AbortController();
    const running = loopAsync({ backend, map, signal: ac.signal }).catch(() => undefined);
    try {
      const ticks: number[] = [];
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const iv = setInterval(() => {
          ticks.push(performance.now());
          if (ticks.length === 100) {
            clearInterval(iv);
            resolve();
          }
        }, 10);
      });
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const share = (cpu.user + cpu.system) / 1000 / wall;
      // The interval itself costs a little; a busy wait would be ~100 %.
      expect(share).toBeLessThan(0.05);
      const gaps = ticks.slice(1).map((t, i) => t - ticks[i]!).sort((a, b) => a - b);
      expect(gaps[Math.floor(gaps.length / 2)]!).toBeLessThan(15);
    } finally {
      ac.abort();
      await running;
      closeAll(map);
    }
  });

  it('a channel added from a timer is served at once, not after the timeout', async () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    let got = '';
    class Reader extends Dispatcher {
      override writable(): boolean {
        return false;
      }
      override handleRead(): void {
        got += this.recv(100).toString();
        this.close();
      }
    }
    // A placeholder keeps the map non-empty; the loop waits up to 20 s.
    const [p1, p2] = socketpair();
    class Idle extends Dispatcher {
      override readable(): boolean {
        return true;
      }
      override writable(): boolean {
        return false;
      }
      override handleRead(): void {
        this.recv(10);
      }
    }
    const idle = new Idle(p1, map);
    const running = loopAsync({ backend, map, timeout: 20 });
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 20));
    new Reader(b, map);
    a.send('hello');
    while (got === '' && performance.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 5));
    expect(got).toBe('hello');
    expect(performance.now() - t0).toBeLessThan(1000);
    idle.close();
    await running; // the map is empty now: resolves
    a.close();
    p2.close();
  });

  it('aborting mid-wait rejects with the reason and leaves the channels open', async () => {
    const map = new ChannelMap();
    const server = new EchoServer(map);
    const ac = new AbortController();
    const p = loopAsync({ backend, map, timeout: 30, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop now')), 30);
    const t0 = performance.now();
    await expect(p).rejects.toThrow('stop now');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(map.get(server.fileno()!)).toBe(server);
    closeAll(map);
  });

  it('count limits the passes; a timeout pass counts', async () => {
    const map = new ChannelMap();
    new EchoServer(map);
    const t0 = performance.now();
    await loopAsync({ backend, map, timeout: 0.02, count: 3 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    closeAll(map);
  });

  it('a large send queued from a timer drains without waiting for the timeout', async () => {
    const map = new ChannelMap();
    const [a, b] = socketpair();
    const w = new DispatcherWithSend(a, map);
    w.handleRead = () => void w.recv(10);
    // The peer end is read by Node itself, so the JS thread stays free for the loop.
    const peer = new net.Socket({ fd: b.detach(), readable: true, writable: true });
    let received = 0;
    peer.on('data', (d) => (received += d.length));
    const running = loopAsync({ backend, map, timeout: 20 });
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    const size = 4 << 20;
    // More than the socket buffer: most of it waits for the loop to see writability.
    w.send(Buffer.alloc(size, 1));
    while (received < size && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    expect(received).toBe(size);
    expect(performance.now() - t0).toBeLessThan(3000);
    w.close();
    await running;
    peer.destroy();
  });
});

it('rejects a second loopAsync on the same map and an aborted signal at once', async () => {
  const map = new ChannelMap();
  new EchoServer(map);
  const ac = new AbortController();
  const first = loopAsync({ backend: 'epoll', map, signal: ac.signal }).catch((e) => e);
  await expect(loopAsync({ backend: 'epoll', map })).rejects.toThrow(/already running/);
  ac.abort(new Error('x'));
  await first;
  await expect(loopAsync({ map, signal: AbortSignal.abort(new Error('pre')) })).rejects.toThrow('pre');
  await expect(loopAsync({ map, backend: 'nope' as never })).rejects.toThrow(TypeError);
  closeAll(map);
});

it('many loops run and stopped in sequence leave no fds and no handles: the process exits by itself', () => {
  const script = `
    import { ChannelMap, Dispatcher, closeAll, loopAsync } from './dist/index.js';
    import { readdirSync } from 'node:fs';
    const before = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 50; i++) {
      for (const backend of ['select', 'poll', 'epoll']) {
        const map = new ChannelMap();
        const d = new Dispatcher(null, map);
        d.createSocket();
        d.bind(['127.0.0.1', 0]);
        d.listen(5);
        const ac = new AbortController();
        const p = loopAsync({ backend, map, signal: ac.signal }).catch(() => {});
        await new Promise((r) => setImmediate(r));
        ac.abort();
        await p;
        closeAll(map);
        // and one that ends because its map empties
        const m2 = new ChannelMap();
        const d2 = new Dispatcher(null, m2);
        d2.createSocket();
        const p2 = loopAsync({ backend, map: m2 });
        setTimeout(() => d2.close(), 1);
        await p2;
      }
    }
    const after = readdirSync('/proc/self/fd').length;
    console.log(JSON.stringify({ before, after }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, timeout: 30_000, encoding: 'utf8' });
  expect(r.error, 'the process must exit by itself').toBeUndefined();
  expect(r.status, r.stderr).toBe(0);
  const { before, after } = JSON.parse(r.stdout.trim().split('\n').pop()!);
  expect(after).toBe(before);
});
