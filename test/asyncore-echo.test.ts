import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { families } from './helpers/net.js';
import { Dispatcher, DispatcherWithSend, ChannelMap, loop, closeAll } from '../src/asyncore/index.js';
import { Socket, SOCK_STREAM, type Address } from '../src/socket.js';

trackFds();

const backends = ['select', 'poll', 'epoll'] as const;

class EchoHandler extends DispatcherWithSend {
  override handleRead(): void {
    const data = this.recv(8192);
    if (data.length) this.send(data);
  }
  override handleClose(): void {
    this.close();
  }
}

class EchoServer extends Dispatcher {
  constructor(family: number, addr: Address, map: ChannelMap) {
    super(null, map);
    this.createSocket(family, SOCK_STREAM);
    this.setReuseAddr();
    this.bind(addr);
    this.listen(16);
  }
  override handleAccepted(sock: Socket): void {
    new EchoHandler(sock, this._map);
  }
}

class Client extends DispatcherWithSend {
  got: Buffer[] = [];
  total = 0;
  constructor(family: number, addr: Address, map: ChannelMap, private want: number, payload: Buffer) {
    super(null, map);
    this.createSocket(family, SOCK_STREAM);
    this.connect(addr);
    this.send(payload);
  }
  override handleConnect(): void {}
  override handleRead(): void {
    const d = this.recv(65536);
    this.got.push(d);
    this.total += d.length;
    if (this.total >= this.want) this.close();
  }
  override handleClose(): void {
    this.close();
  }
}

describe.each(backends)('echo over %s', (backend) => {
  it.each(families)('$name: 1 MiB round trip', (fc) => {
    const map = new ChannelMap();
    try {
      const server = new EchoServer(fc.family, fc.bindAddr(), map);
      const payload = Buffer.alloc(1 << 20);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
      const client = new Client(fc.family, (server.socket as Socket).getsockname(), map, payload.length, payload);
      const deadline = Date.now() + 10_000;
      while (client.fileno() !== null && Date.now() < deadline) loop({ timeout: 0.1, backend, map, count: 1 });
      expect(Buffer.concat(client.got).equals(payload)).toBe(true);
    } finally {
      closeAll(map);
    }
  });
});
