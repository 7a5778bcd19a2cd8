#!/usr/bin/env node
// The floor under our loop: an echo server on the raw addon calls (epoll_wait
// into typed arrays, recv into one reused Buffer, send from it), with no
// Dispatcher, no map, no per-pass sweep. Not a user-facing pattern; it tells
// how much of a message's cost is the JS↔C++ boundary and the kernel alone.
//
//   node bench/servers/raw_epoll_echo.mjs [--host H] [--port P]
import { native } from '../../dist/native.js';
import { AF_INET, SOCK_STREAM, Socket, IPPROTO_TCP, TCP_NODELAY, EPOLLIN } from '../../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2;
const lsock = new Socket(AF_INET, SOCK_STREAM);
lsock.setReuseAddr?.();
lsock.bind([opt('host', '127.0.0.1'), Number(opt('port', '0'))]);
lsock.listen(4096);
lsock.setblocking(false);
const lfd = lsock.fileno();
const ep = native.epollCreate(0);
native.epollCtl(ep, EPOLL_CTL_ADD, lfd, EPOLLIN);
process.stdout.write(`LISTENING ${lsock.getsockname()[1]}\n`);
process.on('SIGTERM', () => process.exit(0));
const fds = new Int32Array(4096), evs = new Uint32Array(4096);
const buf = Buffer.allocUnsafeSlow(65536);
const one = new Int32Array([1]);
for (;;) {
  const n = native.epollWait(ep, fds, evs, fds.length, 1000);
  for (let i = 0; i < n; i++) {
    const fd = fds[i];
    if (fd === lfd) {
      for (let k = 0; k < 1024; k++) {
        const r = native.accept4(lfd, 0);
        if (typeof r === 'number') break;
        new Socket(AF_INET, SOCK_STREAM, 0, r[0]).setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
        native.epollCtl(ep, EPOLL_CTL_ADD, r[0], EPOLLIN);
      }
      continue;
    }
    const r = native.recv(fd, buf, 0, 65536, 0);
    if (r > 0) native.send(fd, buf, 0, r, 0);
    else if (r === 0 || (r !== -11)) {
      native.epollCtl(ep, EPOLL_CTL_DEL, fd, 0);
      native.close(fd);
    }
  }
}
