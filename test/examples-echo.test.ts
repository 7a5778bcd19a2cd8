/**
 * The examples from seed 001, run as a user would: the echo server in its
 * own process, the echo client in another, over real loopback sockets; and
 * in-process under each backend with many clients and large messages.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { ChannelMap, closeAll, loop } from '../src/asyncore/index.js';

trackFds();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const server = path.join(root, 'examples/echo-server.mjs');
const client = path.join(root, 'examples/echo-client.mjs');

describe('examples: echo server and client', () => {
  it('the client gets every message back from the server, as separate processes', async () => {
    const srv = spawn(process.execPath, [server, '127.0.0.1', '0', 'epoll'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('server did not start')), 10_000);
        srv.stdout.on('data', (d: Buffer) => {
          const m = /listening on .*:(\d+)/.exec(d.toString());
          if (m) {
            clearTimeout(t);
            resolve(Number(m[1]));
          }
        });
      });
      const big = 'x'.repeat(100_000);
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const c = spawn(process.execPath, [client, '127.0.0.1', String(port), 'abcdefg', 'hijklmn', big], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        const t = setTimeout(() => c.kill(), 15_000);
        c.on('exit', (code) => {
          clearTimeout(t);
          resolve({ code, out });
        });
      });
      expect(r.code).toBe(0);
      const lines = r.out.trim().split('\n');
      expect(lines[0]).toBe('ok "abcdefg"');
      expect(lines[1]).toBe('ok "hijklmn"');
      expect(lines[2]!.startsWith('ok ')).toBe(true);
    } finally {
      srv.kill();
      await new Promise((r) => srv.once('exit', r));
    }
  });

  it.each(['select', 'poll', 'epoll'] as const)('in one process under %s: 50 clients, 64 KiB each', async (backend) => {
    // The examples import the package by name; they run against dist/ (built by the test setup).
    const { EchoServer } = await import(server);
    const { EchoClient } = await import(client);
    const map = new ChannelMap();
    try {
      const s = new EchoServer('127.0.0.1', 0, map);
      const port = s.socket.getsockname()[1];
      const clients = Array.from({ length: 50 }, (_, i) => new EchoClient('127.0.0.1', port, Buffer.alloc(65536, i), map));
      for (let i = 0; i < 2000 && clients.some((c) => c.fileno() !== null); i++) loop({ backend, map, timeout: 0.05, count: 1 });
      expect(clients.every((c) => c.ok)).toBe(true);
    } finally {
      closeAll(map);
    }
  });

  it('the client reports a refused connection and exits non-zero', () => {
    const r = spawnSync(process.execPath, [client, '127.0.0.1', '1', 'hello'], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('MISMATCH');
  });
});
