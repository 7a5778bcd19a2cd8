import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { Socket, socketpair, AF_INET, SOCK_STREAM } from '../src/socket.js';
import { select } from '../src/select.js';

trackFds();

describe('smoke', () => {
  it('echoes over a socketpair and select sees readability', () => {
    const [a, b] = socketpair();
    try {
      expect(select([b], [], [], 0)[0]).toEqual([]);
      a.sendall('hello');
      expect(select([b], [], [], 1)[0]).toEqual([b]);
      expect(b.recv(10).toString()).toBe('hello');
    } finally {
      a.close();
      b.close();
    }
  });
  it('connects over TCP loopback', () => {
    const l = new Socket(AF_INET, SOCK_STREAM);
    l.bind(['127.0.0.1', 0]);
    l.listen();
    const c = new Socket();
    c.connect(l.getsockname());
    const [s, addr] = l.accept();
    expect((addr as [string, number])[0]).toBe('127.0.0.1');
    s.sendall(Buffer.from('x'));
    expect(c.recv(1).toString()).toBe('x');
    for (const x of [l, c, s]) x.close();
  });
});
