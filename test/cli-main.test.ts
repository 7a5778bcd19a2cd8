/**
 * The CLI as a program: --help, wrong command lines, the echo command, and
 * stopping on SIGINT / SIGTERM with every connection closed and exit code 0.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { sleep } from './helpers/net.js';
import { connect, killAll, readAll, rssOf, runCli, startCli } from './helpers/cli.js';

trackFds();
afterEach(() => killAll());

describe('asyncore-native --help and command lines', () => {
  it.each(['echo', 'forward', 'socks5'])('%s --help exits 0 and prints its usage', async (cmd) => {
    const r = await runCli([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: asyncore-native ${cmd} `));
    expect(r.stdout).toMatch(/--listen ADDR/);
    expect(r.stdout).toMatch(/--backend select\|poll\|epoll/);
    expect(r.stdout).toMatch(/--verbose/);
    expect(r.stderr).toBe('');
  });

  it('the top-level --help lists the commands; no command at all is a usage error', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['echo', 'forward', 'socks5']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect((await runCli([])).code).toBe(2);
  });

  it.each([
    [['nope'], /unknown command "nope"/],
    [['echo'], /--listen ADDR is required/],
    [['forward', '--listen', '127.0.0.1:0'], /--to ADDR is required/],
    [['echo', '--listen', 'localhost'], /--listen: expected HOST:PORT/],
    [['echo', '--listen', '127.0.0.1:70000'], /bad port "70000"/],
    [['echo', '--listen', '::1:80'], /needs brackets: \[::1\]:80/],
    [['echo', '--listen', 'unix:'], /unix: needs a path/],
    [['echo', '--listen', '127.0.0.1:0', '--backend', 'kqueue'], /--backend must be select, poll or epoll/],
    [['echo', '--listen', '127.0.0.1:0', '--bogus'], /unknown option --bogus/],
    [['echo', '--listen', '127.0.0.1:0', 'extra'], /unexpected argument "extra"/],
    [['echo', '--listen'], /--listen needs a value/],
    [['socks5', '--listen', '127.0.0.1:0', '--auth', 'nocolon'], /--auth must be USER:PASS/],
    [['forward', '--listen', '127.0.0.1:0', '--to', 'x:1', '--connect-timeout', '-3'], /--connect-timeout must be a number/],
  ])('%j exits 2 with a clear message', async (args, message) => {
    const r = await runCli(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr).toMatch(/Try 'asyncore-native/);
    expect(r.stdout).toBe('');
  });

  it('an address in use exits 1 and says why', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const r = await runCli(['echo', '--listen', `127.0.0.1:${(srv.address() as net.AddressInfo).port}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/cannot listen on 127\.0\.0\.1:\d+: \[Errno 98\] Address already in use/);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});

describe('asyncore-native echo', () => {
  it('echoes, answers a half-close with EOF after the echo, and logs each connection', async () => {
    const p = await startCli(['echo', '--listen', '127.0.0.1:0', '-v']);
    try {
      expect(p.address).toMatch(/^127\.0\.0\.1:\d+$/);
      const s = await connect(p.address);
      s.end('round trip');
      expect(await readAll(s)).toEqual({ data: Buffer.from('round trip'), error: null });
      s.destroy();
      await sleep(50);
      expect(p.stderr()).toMatch(/echo: #1 open 127\.0\.0\.1:\d+\n/);
      expect(p.stderr()).toMatch(/echo: #1 close 127\.0\.0\.1:\d+ echoed 10 B in [\d.]+ s\n/);
      expect((await p.stop('SIGTERM')).code).toBe(0);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('stops reading a client that does not read its echo (memory stays bounded)', async () => {
    const p = await startCli(['echo', '--listen', '127.0.0.1:0']);
    try {
      const rss0 = rssOf(p.child.pid!);
      const s = await connect(p.address);
      s.pause(); // never read
      const chunk = Buffer.alloc(1 << 20, 1);
      let accepted = 0;
      const t0 = performance.now();
      // Write until the kernel and the server stop taking more (a bounded amount), or 2 s.
      while (performance.now() - t0 < 2000) {
        if (s.write(chunk)) accepted += chunk.length;
        else await Promise.race([new Promise((r) => s.once('drain', r)), sleep(200)]);
        if (s.writableLength > 8 << 20) break;
      }
      const grown = rssOf(p.child.pid!) - rss0;
      expect(s.writableLength).toBeGreaterThan(0); // the writer is blocked: the server stopped reading
      expect(grown).toBeLessThan(64 << 20);
      s.destroy();
      expect((await p.stop('SIGINT')).code).toBe(0);
    } finally {
      p.child.kill('SIGKILL');
    }
  });
});

describe('SIGINT and SIGTERM', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('%s closes every connection (idle, relaying, mid-handshake) and exits 0', async (signal) => {
    const echo = await startCli(['echo', '--listen', '127.0.0.1:0']);
    const fwd = await startCli(['forward', '--listen', '127.0.0.1:0', '--to', echo.address, '-v']);
    const socks = await startCli(['socks5', '--listen', '127.0.0.1:0', '-v', '--backend', 'select']);
    try {
      const clients = await Promise.all([connect(fwd.address), connect(fwd.address), connect(socks.address), connect(socks.address)]);
      for (const c of clients) c.on('error', () => {});
      clients[0]!.write('relaying'); // an active relay
      await readAllUntil(clients[0]!, 8);
      clients[2]!.write(Buffer.from([5, 1])); // a truncated greeting: mid-handshake
      await sleep(100);
      const ends = clients.map((c) => readAll(c, 5000));
      const [fExit, sExit] = await Promise.all([fwd.stop(signal), socks.stop(signal)]);
      expect(fExit).toEqual({ code: 0, signal: null });
      expect(sExit).toEqual({ code: 0, signal: null });
      for (const r of await Promise.all(ends)) expect(r.error).not.toBe('timeout');
      for (const c of clients) c.destroy();
      expect(fwd.stderr()).toMatch(new RegExp(`${signal}: closing every connection`));
      expect(fwd.stderr().match(/#\d+ close/g)).toHaveLength(2);
      expect(socks.stderr().match(/#\d+ close/g)).toHaveLength(2);
      expect((await echo.stop(signal)).code).toBe(0);
    } finally {
      for (const p of [echo, fwd, socks]) p.child.kill('SIGKILL');
    }
  });
});

/** Waits until `s` has delivered `n` bytes. */
function readAllUntil(s: net.Socket, n: number): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    const on = (d: Buffer) => {
      got += d.length;
      if (got >= n) {
        s.off('data', on);
        resolve();
      }
    };
    s.on('data', on);
  });
}
