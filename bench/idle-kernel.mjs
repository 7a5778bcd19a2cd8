#!/usr/bin/env node
// The kernel's own cost of one wait over N registered descriptors of the
// kind an echo server holds: accepted TCP sockets whose peers (in
// bench/build/idler, another process) never send, plus one that is ready.
// bench/idle.mjs sets it beside what N idle connections add to one pass of
// each loop server. bench/pollers.mjs measures the same calls over AF_UNIX
// socketpairs; tcp_poll() does more per descriptor than unix_poll(), so the
// TCP figure is the fair one for a TCP server.
//
//   node bench/idle-kernel.mjs [--sizes 10,1010,5010,10010] [--cell-ms 300] [--json]
//
// Each size: the idler holds N - 1 connections to our listener (opened in
// batches of 2048, each accepted here before the next), plus one connection
// made in this process after them whose accepted end has one unread byte, so
// every call must report exactly 1 ready. Calls: `Poll#wait(ms, fds, events)`,
// `Epoll#wait(ms, fds, events)` (the allocation-free forms) and, while every
// fd is below FD_SETSIZE, the public `select(fds, [], fds, s)` (read and
// exceptional lists, as asyncore's select pass asks them); timing is
// bench/pollers.mjs's timeCell (median of ~2 ms batches).
//
// Two timeouts, because they cost the kernel different work: with timeout 0
// poll(2)/select(2) only scan; with a timeout they also add a wait-queue
// entry to every descriptor scanned before the first ready one (fs/select.c:
// the poll_table is dropped once something is ready) and free them all on
// return. A server blocks in its wait and its busy connections are usually
// the newest, after the idle ones, so "timeout 60 s, the ready fd last" is
// the kernel's cost in the server's position. epoll_wait has no per-fd work
// either way.
import { parseArgs } from 'node:util';
import { native } from '../dist/native.js';
import { Socket, AF_INET, SOCK_STREAM, MSG_PEEK, Poll, Epoll, select, POLLIN, EPOLLIN, FD_SETSIZE } from '../dist/index.js';
import { timeCell } from './pollers.mjs';
import { startIdler } from './lib/idler.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Returns rows {poller, registered, ready: 1, mode: '1', fdKind: 'tcp',
 * wait: 'timeout 0' | 'blocking, ready last', nsPerCall, p10, p90, calls}
 * (select rows past FD_SETSIZE: {na}).
 */
export async function runIdleKernel({ sizes = [10, 1010, 5010, 10010], cellMs = 300, onCell = () => {} } = {}) {
  const lsock = new Socket(AF_INET, SOCK_STREAM);
  lsock.bind(['127.0.0.1', 0]);
  lsock.listen(4096);
  const port = lsock.getsockname()[1];
  const lfd = lsock.fileno();
  lsock.setblocking(false);
  const idle = [];
  const readyPairs = [];
  const idler = await startIdler(port, { maxSeconds: 600 });
  const rows = [];
  try {
    for (const n of [...sizes].sort((a, b) => a - b)) {
      // Grow the idle set to n - 1, each batch accepted before the next.
      while (idle.length < n - 1) {
        const next = Math.min(n - 1, idle.length + 2048);
        await idler.set(next);
        const until = Date.now() + 60_000;
        while (idle.length < next) {
          const r = native.accept4(lfd, 0);
          if (typeof r === 'number') {
            if (Date.now() > until) throw new Error(`accepted ${idle.length} of ${next} idle connections in 60 s`);
            await sleep(2);
            continue;
          }
          idle.push(r[0]);
        }
      }
      // The ready one, made after the idle ones so that it is last both in
      // the pollfd array and in fd number order (select(2) scans by number),
      // as a server's newest, busy connections are.
      const client = new Socket(AF_INET, SOCK_STREAM);
      client.connect(['127.0.0.1', port]);
      let acc;
      for (const until = Date.now() + 5000; typeof (acc = native.accept4(lfd, 0)) === 'number'; ) {
        if (Date.now() > until) throw new Error('the ready connection was not accepted in 5 s');
        await sleep(1);
      }
      const readyEnd = new Socket(AF_INET, SOCK_STREAM, 0, acc[0]);
      readyPairs.push(client, readyEnd);
      client.send(Buffer.from('x'));
      while (readyEnd.recv(1, MSG_PEEK).length === 0) await sleep(1);
      const fds = [...idle.slice(0, n - 1), readyEnd.fileno()];
      const outFds = new Int32Array(n), outEv = new Uint32Array(n);
      onCell(`poll N=${n}`);
      const p = new Poll();
      for (const fd of fds) p.register(fd, POLLIN);
      rows.push({ poller: 'poll', registered: n, ready: 1, mode: '1', fdKind: 'tcp', wait: 'timeout 0', ...timeCell(() => p.wait(0, outFds, outEv), 1, cellMs) });
      rows.push({ poller: 'poll', registered: n, ready: 1, mode: '1', fdKind: 'tcp', wait: 'blocking, ready last', ...timeCell(() => p.wait(60_000, outFds, outEv), 1, cellMs) });
      onCell(`epoll N=${n}`);
      const ep = new Epoll();
      try {
        for (const fd of fds) ep.register(fd, EPOLLIN);
        rows.push({ poller: 'epoll', registered: n, ready: 1, mode: '1', fdKind: 'tcp', wait: 'timeout 0', ...timeCell(() => ep.wait(0, outFds, outEv), 1, cellMs) });
        rows.push({ poller: 'epoll', registered: n, ready: 1, mode: '1', fdKind: 'tcp', wait: 'blocking, ready last', ...timeCell(() => ep.wait(60_000, outFds, outEv), 1, cellMs) });
      } finally {
        ep.close();
      }
      const maxFd = Math.max(...fds);
      if (maxFd < FD_SETSIZE) {
        onCell(`select N=${n}`);
        const empty = [];
        rows.push({ poller: 'select', registered: n, ready: 1, mode: '1', fdKind: 'tcp', wait: 'timeout 0', ...timeCell(() => select(fds, empty, fds, 0)[0].length, 1, cellMs) });
        rows.push({ poller: 'select', registered: n, ready: 1, mode: '1', fdKind: 'tcp', wait: 'blocking, ready last', ...timeCell(() => select(fds, empty, fds, 60)[0].length, 1, cellMs) });
      } else {
        for (const wait of ['timeout 0', 'blocking, ready last']) rows.push({ poller: 'select', registered: n, ready: 1, mode: '1', fdKind: 'tcp', wait, na: `fd ${maxFd} >= FD_SETSIZE` });
      }
    }
  } finally {
    await idler.quit();
    for (const fd of idle) native.close(fd);
    for (const sock of readyPairs) sock.close();
    lsock.close();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '10,1010,5010,10010' },
      'cell-ms': { type: 'string', default: '300' },
      json: { type: 'boolean', default: false },
    },
  });
  const rows = await runIdleKernel({
    sizes: values.sizes.split(',').map(Number),
    cellMs: Number(values['cell-ms']),
    onCell: (l) => process.stderr.write(`CELL ${l}\n`),
  });
  if (values.json) process.stdout.write(JSON.stringify(rows) + '\n');
  else console.table(rows.map((r) => ({ ...r, nsPerCall: r.nsPerCall && Math.round(r.nsPerCall) })));
  process.exit(0);
}
