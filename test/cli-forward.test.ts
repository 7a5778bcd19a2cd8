/**
 * The port forwarder (spawned CLI): 64 MiB each way with slow readers and
 * bounded memory, half-close, a refused upstream, async name resolution,
 * IPv6 and Unix endpoints under each backend.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { HAVE_IPV6, sleep, unixPath } from './helpers/net.js';
import { connect, killAll, readAll, rssOf, startCli } from './helpers/cli.js';

trackFds();
afterEach(() => killAll());

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Starts a node:net server; `handler` per connection. Returns it and its address text. */
async function serve(listen: { host?: string; port?: number; path?: string }, handler: (s: net.Socket) => void): Promise<[net.Server, string]> {
  const srv = net.createServer({ allowHalfOpen: true }, handler);
  await new Promise<void>((r) => (listen.path ? srv.listen(listen.path, r) : srv.listen(listen.port ?? 0, listen.host, r)));
  const a = srv.address();
  const text = typeof a === 'string' ? `unix:${a}` : a!.family === 'IPv6' ? `[${a!.address}]:${a!.port}` : `${a!.address}:${a!.port}`;
  return [srv, text];
}
const closeServer = (s: net.Server) => new Promise((r) => s.close(r));

/** Writes `data` in 1 MiB pieces, waiting for 'drain', then ends. */
async function sendAll(s: net.Socket, data: Buffer): Promise<void> {
  for (let off = 0; off < data.length; off += 1 << 20) {
    if (!s.write(data.subarray(off, off + (1 << 20)))) await new Promise((r) => s.once('drain', r));
  }
  s.end();
}

/** Reads until EOF, hashing, pausing `pauseMs` after every MiB (a slow reader). */
function slowDigest(s: net.Socket, pauseMs: number): Promise<{ bytes: number; digest: string }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0, sincePause = 0;
    s.on('data', (d: Buffer) => {
      h.update(d);
      bytes += d.length;
      sincePause += d.length;
      if (sincePause >= 1 << 20) {
        sincePause = 0;
        s.pause();
        setTimeout(() => s.resume(), pauseMs);
      }
    });
    s.once('end', () => resolve({ bytes, digest: h.digest('hex') }));
    s.once('error', reject);
  });
}

describe('asyncore-native forward', () => {
  it('moves 64 MiB each way at once with slow readers on both sides, intact (SHA-256), in bounded memory', async () => {
    const SIZE = 64 << 20;
    const up = randomBytes(SIZE);
    const down = randomBytes(SIZE);
    let upstreamResult: Promise<{ bytes: number; digest: string }> | null = null;
    const [srv, target] = await serve({ host: '127.0.0.1' }, (s) => {
      upstreamResult = slowDigest(s, 15);
      void sendAll(s, down);
    });
    const p = await startCli(['forward', '--listen', '127.0.0.1:0', '--to', target]);
    const pid = p.child.pid!;
    const rss0 = rssOf(pid);
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 25);
    try {
      const c = await connect(p.address);
      const t0 = performance.now();
      const clientResult = slowDigest(c, 15);
      await sendAll(c, up);
      const got = await clientResult;
      const secs = (performance.now() - t0) / 1000;
      while (upstreamResult === null) await sleep(5);
      const upGot = await upstreamResult;
      c.destroy();
      expect(upGot).toEqual({ bytes: SIZE, digest: sha(up) });
      expect(got).toEqual({ bytes: SIZE, digest: sha(down) });
      const growth = peak - rss0;
      console.log(`forward: 2 x 64 MiB in ${secs.toFixed(2)} s (${((2 * SIZE) / (1 << 20) / secs).toFixed(0)} MiB/s total), RSS ${(rss0 / 2 ** 20).toFixed(0)} -> peak ${(peak / 2 ** 20).toFixed(0)} MiB (+${(growth / 2 ** 20).toFixed(1)} MiB)`);
      expect(growth).toBeLessThan(150 * 2 ** 20);
      expect((await p.stop('SIGTERM')).code).toBe(0);
    } finally {
      clearInterval(sampler);
      p.child.kill('SIGKILL');
      await closeServer(srv);
    }
  }, 60_000);

  it('passes a half-close on after the data, and the answer comes back', async () => {
    let upstreamSawEof = false;
    const [srv, target] = await serve({ host: '127.0.0.1' }, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => {
        upstreamSawEof = true;
        s.end(`got ${Buffer.concat(chunks).toString()}`);
      });
    });
    const p = await startCli(['forward', '--listen', '127.0.0.1:0', '--to', target, '--verbose']);
    try {
      const s = await connect(p.address);
      s.write('hello, ');
      s.end('world'); // shutdown(SHUT_WR): the upstream must see EOF after the bytes
      const r = await readAll(s);
      s.destroy();
      expect(r).toEqual({ data: Buffer.from('got hello, world'), error: null });
      expect(upstreamSawEof).toBe(true);
      expect((await p.stop('SIGINT')).code).toBe(0);
      expect(p.stderr()).toMatch(/#1 close 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ sent 12 B received 16 B/);
    } finally {
      p.child.kill('SIGKILL');
      await closeServer(srv);
    }
  });

  it('closes the client when the upstream refuses', async () => {
    const [tmp, target] = await serve({ host: '127.0.0.1' }, () => {});
    await closeServer(tmp); // nothing listens there now
    const p = await startCli(['forward', '--listen', '127.0.0.1:0', '--to', target, '-v']);
    try {
      const s = await connect(p.address);
      s.write('anyone?');
      const r = await readAll(s, 5000);
      s.destroy();
      expect(r.error).not.toBe('timeout');
      expect(r.data.length).toBe(0);
      expect((await p.stop()).code).toBe(0);
      expect(p.stderr()).toMatch(/#1 close .* failed: ECONNREFUSED/);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('resolves a host name in --to per connection (localhost), trying each address', async () => {
    const [srv, target] = await serve({ host: '127.0.0.1' }, (s) => s.end('via name'));
    const p = await startCli(['forward', '--listen', '127.0.0.1:0', '--to', `localhost:${target.split(':')[1]}`]);
    try {
      const r = await readAll(await connect(p.address));
      expect(r.data.toString()).toBe('via name');
      expect((await p.stop()).code).toBe(0);
    } finally {
      p.child.kill('SIGKILL');
      await closeServer(srv);
    }
  });

  describe.each(['select', 'poll', 'epoll'] as const)('with --backend %s', (backend) => {
    const cases: Array<[string, () => { listen: string; upstream: { host?: string; path?: string } }]> = [
      ['IPv4', () => ({ listen: '127.0.0.1:0', upstream: { host: '127.0.0.1' } })],
      ...(HAVE_IPV6 ? [['IPv6', () => ({ listen: '[::1]:0', upstream: { host: '::1' } })] as [string, () => { listen: string; upstream: { host: string } }]] : []),
      ['Unix', () => ({ listen: `unix:${unixPath()}`, upstream: { path: unixPath() } })],
    ];
    it.each(cases)('relays %s to the same family, through the echo command', async (_name, make) => {
      const { listen, upstream } = make();
      // The upstream is the CLI's own echo server.
      const echoListen = upstream.path ? `unix:${upstream.path}` : upstream.host!.includes(':') ? `[${upstream.host}]:0` : `${upstream.host}:0`;
      const echo = await startCli(['echo', '--listen', echoListen, '--backend', backend]);
      const fwd = await startCli(['forward', '--listen', listen, '--to', echo.address, '--backend', backend]);
      try {
        const payload = randomBytes(1 << 20);
        const s = await connect(fwd.address);
        const done = readAll(s);
        await sendAll(s, payload);
        const r = await done;
        s.destroy();
        expect(r.error).toBeNull();
        expect(sha(r.data)).toBe(sha(payload));
        expect((await fwd.stop('SIGINT')).code).toBe(0);
        expect((await echo.stop('SIGTERM')).code).toBe(0);
      } finally {
        fwd.child.kill('SIGKILL');
        echo.child.kill('SIGKILL');
      }
    });
  });
});
