#!/usr/bin/env node
// The seed's asyncore echo server, done right:
// - each connection echoes every byte back, however the kernel splits reads
//   and writes (DispatcherWithSend keeps what a partial send left over);
// - a peer that closes or resets is closed once, quietly;
// - the listener is never asked for writability and survives a burst of
//   connects (backlog 128, reuse address).
//
//   node examples/echo-server.mjs [HOST] [PORT] [select|poll|epoll]
//
// With PORT 0 the chosen port is printed: `listening on HOST:PORT`.
import { AF_INET, AF_INET6, Dispatcher, DispatcherWithSend, SOCK_STREAM, loop } from 'asyncore-native';

export class EchoHandler extends DispatcherWithSend {
  handleRead() {
    const data = this.recv(65536);
    if (data.length > 0) this.send(data);
  }

  handleClose() {
    this.close();
  }
}

export class EchoServer extends Dispatcher {
  constructor(host, port, map) {
    super(null, map);
    this.createSocket(host.includes(':') ? AF_INET6 : AF_INET, SOCK_STREAM);
    this.setReuseAddr();
    this.bind([host, port]);
    this.listen(128);
  }

  handleAccepted(sock) {
    new EchoHandler(sock, this._map);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [host = '127.0.0.1', port = '9001', backend = 'epoll'] = process.argv.slice(2);
  const server = new EchoServer(host, Number(port));
  const [h, p] = server.socket.getsockname();
  console.log(`listening on ${h}:${p}`);
  loop({ backend, timeout: 30 });
}
