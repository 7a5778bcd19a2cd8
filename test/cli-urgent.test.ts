/**
 * Urgent data (MSG_OOB) through the spawned `forward` and `socks5`, under
 * each backend: the relay reads urgent data inline (SO_OOBINLINE), so the
 * urgent byte arrives on the other side as an ordinary byte in its place,
 * and the proxy does not spin on it. One urgent byte goes each way on each
 * proxy; then the children's CPU time over about a second (from
 * /proc/<pid>/stat) must stay near zero, and both connections keep relaying.
 * A spinning child burns 0.5–1 s of CPU per second; an idle one ~0.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { sleep } from './helpers/net.js';
import { cpuSecondsOf, killAll, portOf, startCli, type CliProcess } from './helpers/cli.js';
import { connectReq, ipv4 } from './helpers/socks5.js';
import { MSG_OOB, Socket } from '../src/socket.js';

trackFds();
afterEach(() => killAll());

/** A blocking socket with a 5 s timeout (the tests' side; the proxies are other processes). */
function timed(s: Socket): Socket {
  s.settimeout(5);
  return s;
}

/** Reads exactly `n` bytes (SocketTimeout after 5 s without progress). */
function readExactly(s: Socket, n: number): Buffer {
  const parts: Buffer[] = [];
  let got = 0;
  while (got < n) {
    const d = s.recv(n - got);
    if (d.length === 0) throw new Error(`EOF after ${got} of ${n} bytes`);
    parts.push(d);
    got += d.length;
  }
  return Buffer.concat(parts);
}

/** The CPU budget of a child over the ~1 s window (seconds). */
const MAX_CPU_S = 0.2;

describe.each(['select', 'poll', 'epoll'] as const)('urgent data through the CLI relay with --backend %s', (backend) => {
  it('one urgent byte each way through forward and socks5: relayed inline in its place, the proxies stay idle, the connections keep relaying', async () => {
    const up = timed(new Socket());
    const socks: Socket[] = [up];
    let procs: CliProcess[] = [];
    try {
      up.bind(['127.0.0.1', 0]);
      up.listen(8);
      const upAddr = `127.0.0.1:${(up.getsockname() as [string, number])[1]}`;
      procs = await Promise.all([
        startCli(['forward', '--listen', '127.0.0.1:0', '--to', upAddr, '--backend', backend]),
        startCli(['socks5', '--listen', '127.0.0.1:0', '--backend', backend]),
      ]);
      const [fwd, proxy] = procs as [CliProcess, CliProcess];

      // forward: client -> proxy -> upstream.
      const c1 = timed(new Socket());
      socks.push(c1);
      c1.connect(['127.0.0.1', portOf(fwd.address)]);
      const u1 = timed(up.accept()[0]);
      socks.push(u1);

      // socks5: the handshake, then the same.
      const c2 = timed(new Socket());
      socks.push(c2);
      c2.connect(['127.0.0.1', portOf(proxy.address)]);
      c2.sendall(Buffer.from([5, 1, 0]));
      expect(readExactly(c2, 2)).toEqual(Buffer.from([5, 0]));
      c2.sendall(connectReq(1, ipv4('127.0.0.1'), portOf(upAddr)));
      const reply = readExactly(c2, 10);
      expect(reply[1], 'SOCKS5 reply').toBe(0);
      const u2 = timed(up.accept()[0]);
      socks.push(u2);

      const pairs: Array<[string, Socket, Socket]> = [['forward', c1, u1], ['socks5', c2, u2]];
      for (const [, c, u] of pairs) {
        c.sendall('ab');
        c.send('!', MSG_OOB);
        u.sendall('xy');
        u.send('?', MSG_OOB);
      }
      const cpu0 = procs.map((p) => cpuSecondsOf(p.child.pid!));
      await sleep(1000);
      const used = procs.map((p, i) => cpuSecondsOf(p.child.pid!) - cpu0[i]!);
      expect(used[0], `forward used ${used[0]!.toFixed(2)} s of CPU in 1 s`).toBeLessThan(MAX_CPU_S);
      expect(used[1], `socks5 used ${used[1]!.toFixed(2)} s of CPU in 1 s`).toBeLessThan(MAX_CPU_S);

      for (const [name, c, u] of pairs) {
        c.sendall('cd');
        u.sendall('zw');
        // Inline: the urgent byte is an ordinary byte in its place on the far side.
        expect(readExactly(u, 5).toString(), `${name} client -> upstream`).toBe('ab!cd');
        expect(readExactly(c, 5).toString(), `${name} upstream -> client`).toBe('xy?zw');
      }
    } finally {
      for (const s of socks) s.close();
      await Promise.all(procs.map((p) => p.stop('SIGTERM').catch(() => undefined)));
    }
  });
});
