/**
 * `--idle-timeout SECONDS` on the CLI's echo, forward and socks5: a connection with no traffic in either direction for
 * that long is closed; traffic either way keeps it open. Real clients
 * (node:net) against the built CLI in a child process.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { sleep } from './helpers/net.js';
import { connect, killAll, readAll, runCli, startCli } from './helpers/cli.js';
import { connectReq, ipv4, readN } from './helpers/socks5.js';

trackFds();
afterEach(killAll);

async function serve(handler: (s: net.Socket) => void): Promise<[net.Server, string]> {
  const srv = net.createServer({ allowHalfOpen: true }, handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return [srv, `127.0.0.1:${(srv.address() as net.AddressInfo).port}`];
}
const closeServer = (s: net.Server) => new Promise((r) => s.close(r));

describe('--idle-timeout', () => {
  it('echo: an idle client is closed after the timeout (logged with -v); its echo came back first', async () => {
    const p = await startCli(['echo', '--listen', '127.0.0.1:0', '--idle-timeout', '0.3', '-v']);
    try {
      const s = await connect(p.address);
      const t0 = Date.now();
      s.write('hello');
      const r = await readAll(s, 10_000);
      const ms = Date.now() - t0;
      s.destroy();
      expect(r.error).not.toBe('timeout');
      expect(r.data.toString()).toBe('hello');
      expect(ms).toBeGreaterThanOrEqual(290);
      expect(ms).toBeLessThan(5000);
      expect((await p.stop()).code).toBe(0);
      expect(p.stderr()).toMatch(/#1 idle for 0\.3 s: closing/);
      expect(p.stderr()).toMatch(/#1 close .* echoed 5 B/);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('echo: a client that keeps talking is not closed, however long it stays', async () => {
    const p = await startCli(['echo', '--listen', '127.0.0.1:0', '--idle-timeout', '0.3', '-v']);
    try {
      const s = await connect(p.address);
      let ended = false;
      let got = 0;
      s.on('data', (d) => (got += d.length));
      s.on('end', () => (ended = true));
      let lastWrite = 0;
      for (let i = 0; i < 12; i++) {
        s.write('x');
        lastWrite = Date.now();
        await sleep(100);
      }
      // 1.2 s of traffic every 100 ms: four times the timeout, still open.
      expect(ended).toBe(false);
      expect(got).toBe(12);
      // Then silence: closed about 0.3 s after the last byte.
      expect((await readAll(s, 10_000)).error).not.toBe('timeout');
      expect(Date.now() - lastWrite).toBeGreaterThanOrEqual(290);
      s.destroy();
      expect((await p.stop()).code).toBe(0);
      expect(p.stderr().match(/idle for/g)?.length).toBe(1);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('forward: an idle connection is closed on both sides', async () => {
    let upstreamEnded: Promise<number>;
    const [srv, target] = await serve((u) => {
      const t0 = Date.now();
      upstreamEnded = new Promise((r) => {
        // allowHalfOpen: the EOF is seen as 'end'; answer it so the socket closes.
        u.on('end', () => {
          r(Date.now() - t0);
          u.end();
        });
        u.resume();
      });
    });
    const p = await startCli(['forward', '--listen', '127.0.0.1:0', '--to', target, '--idle-timeout', '0.4', '-v']);
    try {
      const s = await connect(p.address);
      const t0 = Date.now();
      const r = await readAll(s, 10_000);
      const ms = Date.now() - t0;
      s.destroy();
      expect(r.error).not.toBe('timeout');
      expect(ms).toBeGreaterThanOrEqual(390);
      expect(ms).toBeLessThan(5000);
      expect(await upstreamEnded!).toBeLessThan(5000);
      expect((await p.stop()).code).toBe(0);
      expect(p.stderr()).toMatch(/#1 idle for 0\.4 s: closing/);
    } finally {
      p.child.kill('SIGKILL');
      await closeServer(srv);
    }
  });

  it('forward: traffic in one direction only (the upstream talking) keeps the connection open', async () => {
    const [srv, target] = await serve((u) => {
      let n = 0;
      const t = setInterval(() => {
        if (++n > 10) {
          clearInterval(t);
          u.end();
          return;
        }
        u.write('tick');
      }, 100);
      u.on('close', () => clearInterval(t));
      u.on('error', () => clearInterval(t));
    });
    const p = await startCli(['forward', '--listen', '127.0.0.1:0', '--to', target, '--idle-timeout', '0.3', '-v']);
    try {
      const s = await connect(p.address);
      const r = await readAll(s, 10_000);
      s.destroy();
      // Ten ticks 100 ms apart (over three timeouts), then the upstream's own EOF.
      expect(r.data.toString()).toBe('tick'.repeat(10));
      expect((await p.stop()).code).toBe(0);
      expect(p.stderr()).not.toMatch(/idle for/);
    } finally {
      p.child.kill('SIGKILL');
      await closeServer(srv);
    }
  });

  it('socks5: a relayed connection with no traffic is closed on both sides after the timeout', async () => {
    let upstreamEnded!: Promise<number>;
    const [srv, target] = await serve((u) => {
      const t0 = Date.now();
      upstreamEnded = new Promise((r) => {
        u.on('end', () => {
          r(Date.now() - t0);
          u.end();
        });
        u.resume();
      });
    });
    const port = Number(target.split(':')[1]);
    const p = await startCli(['socks5', '--listen', '127.0.0.1:0', '--idle-timeout', '0.4', '-v']);
    try {
      const s = await connect(p.address);
      s.write(Buffer.from([5, 1, 0]));
      expect([...(await readN(s, 2))]).toEqual([5, 0]);
      s.write(connectReq(1, ipv4('127.0.0.1'), port));
      const reply = await readN(s, 10);
      expect(reply[1]).toBe(0);
      const t0 = Date.now();
      const r = await readAll(s, 10_000);
      const ms = Date.now() - t0;
      s.destroy();
      expect(r.error).not.toBe('timeout');
      expect(ms).toBeGreaterThanOrEqual(300); // 0.4 s after the reply, the last byte
      expect(ms).toBeLessThan(5000);
      expect(await upstreamEnded).toBeLessThan(5000);
      expect((await p.stop()).code).toBe(0);
      expect(p.stderr()).toMatch(/#1 idle for 0\.4 s: closing/);
      expect(p.stderr()).toMatch(/#1 close .* reply 0x00/);
    } finally {
      p.child.kill('SIGKILL');
      await closeServer(srv);
    }
  });

  it('socks5: a client silent in the middle of its handshake is closed by the idle timeout before the handshake timeout', async () => {
    const p = await startCli(['socks5', '--listen', '127.0.0.1:0', '--idle-timeout', '0.3', '--handshake-timeout', '30', '-v']);
    try {
      const s = await connect(p.address);
      const t0 = Date.now();
      s.write(Buffer.from([5])); // half a greeting
      const r = await readAll(s, 10_000);
      s.destroy();
      expect(r.error).not.toBe('timeout');
      expect(Date.now() - t0).toBeLessThan(5000);
      expect((await p.stop()).code).toBe(0);
      expect(p.stderr()).toMatch(/#1 idle for 0\.3 s: closing/);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it.each([['0'], ['-1'], ['soon'], ['1e3'], ['100000']])('--idle-timeout %s is a usage error (exit 2)', async (v) => {
    const r = await runCli(['echo', '--listen', '127.0.0.1:0', '--idle-timeout', v]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--idle-timeout must be a number of seconds/);
  });

  it.each([['echo'], ['forward'], ['socks5']])('%s --help lists --idle-timeout', async (cmd) => {
    const r = await runCli([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--idle-timeout SECONDS +close a connection with no traffic in either direction/);
  });
});
