#!/usr/bin/env node
// The asyncore-native echo server the benchmark drives: a DispatcherWithSend
// per connection, as a user would write it.
//
//   node bench/servers/asyncore_echo.mjs --backend select|poll|epoll [--async] [--host H] [--port P]
//
// Prints `LISTENING <port>` once bound; runs `loop()` (or `loopAsync()` with
// --async) until killed.
import { AF_INET, Dispatcher, DispatcherWithSend, SOCK_STREAM, TCP_NODELAY, IPPROTO_TCP, loop, loopAsync } from '../../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const backend = opt('backend', 'epoll');
const useAsync = args.includes('--async');

class Echo extends DispatcherWithSend {
  handleRead() {
    const data = this.recv(65536);
    if (data.length > 0) this.send(data);
  }
  handleClose() {
    this.close();
  }
}

class Server extends Dispatcher {
  constructor(host, port) {
    super();
    this.createSocket(AF_INET, SOCK_STREAM);
    this.setReuseAddr();
    this.bind([host, port]);
    this.listen(4096);
  }
  // asyncore accepts one connection per read event (one per loop pass). This
  // server, as a user may, drains the backlog instead: accept until EAGAIN
  // (accept() returns null), at most 1024 per event so a connect flood cannot
  // starve the established connections. It only shortens the ramp; the
  // measured window has no accepts.
  handleAccept() {
    for (let i = 0; i < 1024; i++) {
      const pair = this.accept();
      if (pair === null) return;
      this.handleAccepted(pair[0], pair[1]);
    }
  }
  handleAccepted(sock) {
    sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    new Echo(sock);
  }
  // A burst of connects must not stop the listener.
  handleError(err) {
    this.logInfo(String(err), 'error');
  }
}

const server = new Server(opt('host', '127.0.0.1'), Number(opt('port', '0')));
process.stdout.write(`LISTENING ${server.socket.getsockname()[1]}\n`);
if (useAsync) {
  process.on('SIGTERM', () => process.exit(0));
  await loopAsync({ backend, timeout: 30 });
} else if (opt('exit-after')) {
  // For profiling: stop by itself (a signal would end the process before the profile is written).
  const end = Date.now() + Number(opt('exit-after')) * 1000;
  while (Date.now() < end) loop({ backend, timeout: 0.1, count: 100 });
  process.exit(0);
} else {
  loop({ backend, timeout: 30 });
}
