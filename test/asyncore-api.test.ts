/**
 * Conformance with CPython 3.11's asyncore API tests (test_asyncore's
 * BaseTestAPI), for IPv4, IPv6 and Unix stream sockets, under the select,
 * poll and epoll passes, and a subset again under Python's `usePoll: true`.
 *
 * As in Python's suite, the test handlers raise from every hook the test does
 * not expect, and their handleError rethrows, so an unexpected event fails
 * the test instead of being logged.
 */
import { spawn } from 'node:child_process';
import { endianness } from 'node:os';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { families, type FamilyCase } from './helpers/net.js';
import { ChannelMap, Dispatcher, closeAll, loop, type LoopOptions } from '../src/asyncore/index.js';
import { OSError, errno as E } from '../src/errors.js';
import {
  AF_UNIX,
  MSG_OOB,
  SOCK_STREAM,
  SOL_SOCKET,
  SO_LINGER,
  SO_REUSEADDR,
  Socket,
  type Address,
} from '../src/socket.js';

trackFds();

type Opts = Pick<LoopOptions, 'backend' | 'usePoll'>;

/** Raised by the hooks a test does not expect. */
class Unexpected extends Error {}

/** A dispatcher that fails on every hook a test did not ask for (Python's BaseTestHandler). */
class TestHandler extends Dispatcher {
  flag = false;
  constructor(sock: Socket | null, map: ChannelMap) {
    super(sock, map);
  }
  override handleAccept(): void {
    throw new Unexpected('handleAccept not supposed to be called');
  }
  override handleAccepted(_sock: Socket, _addr: Address): void {
    throw new Unexpected('handleAccepted not supposed to be called');
  }
  override handleConnect(): void {
    throw new Unexpected('handleConnect not supposed to be called');
  }
  override handleExpt(): void {
    throw new Unexpected('handleExpt not supposed to be called');
  }
  override handleClose(): void {
    throw new Unexpected('handleClose not supposed to be called');
  }
  override handleError(err: unknown): void {
    throw err;
  }
}

type HandlerClass = new (sock: Socket, map: ChannelMap) => Dispatcher;

/** A listener that hands each accepted connection to `handler`. */
class TestServer extends Dispatcher {
  constructor(fc: FamilyCase, map: ChannelMap, private handler: HandlerClass = TestHandler) {
    super(null, map);
    this.createSocket(fc.family, SOCK_STREAM);
    this.setReuseAddr();
    this.bind(fc.bindAddr());
    this.listen(5);
  }
  get address(): Address {
    return (this.socket as Socket).getsockname();
  }
  override handleAccepted(sock: Socket): void {
    new this.handler(sock, this._map as ChannelMap);
  }
  override handleError(err: unknown): void {
    throw err;
  }
}

/** A TestHandler that connects to `address` at once and accepts its connect event. */
class TestClient extends TestHandler {
  constructor(fc: FamilyCase, address: Address, map: ChannelMap) {
    super(null, map);
    this.createSocket(fc.family, SOCK_STREAM);
    this.connect(address);
  }
  override handleConnect(): void {}
}

/** Runs single passes of at most 10 ms until `inst.flag` is set (up to 100); fails otherwise. */
function loopWaitingForFlag(map: ChannelMap, inst: { flag: boolean }, opts: Opts): void {
  for (let n = 0; n < 100 && map.size > 0; n++) {
    loop({ timeout: 0.01, count: 1, map, ...opts });
    if (inst.flag) return;
  }
  expect.fail('flag not set');
}

/** struct linger { l_onoff = 1; l_linger = 0 }: close() then sends a reset. */
function lingerZero(): Buffer {
  const b = Buffer.alloc(8);
  if (endianness() === 'LE') b.writeInt32LE(1, 0);
  else b.writeInt32BE(1, 0);
  return b;
}

/** A handler that reads and closes quietly (the quick-connect server's side). */
class QuietHandler extends Dispatcher {
  static closed = 0;
  override writable(): boolean {
    return false;
  }
  override handleRead(): void {
    this.recv(1024);
  }
  override handleClose(): void {
    QuietHandler.closed++;
    this.close();
  }
  override handleError(err: unknown): void {
    throw err;
  }
}

interface ApiTest {
  name: string;
  /** Part of the subset that runs again under `usePoll: true`. */
  subset?: boolean;
  /** Why the test does not apply to Unix sockets, when it does not. */
  notUnix?: string;
  run(fc: FamilyCase, map: ChannelMap, opts: Opts): void | Promise<void>;
}

const apiTests: ApiTest[] = [
  {
    name: 'handleConnect is called when connect() completes',
    subset: true,
    run(fc, map, opts) {
      class C extends TestClient {
        override handleConnect(): void {
          this.flag = true;
        }
      }
      const server = new TestServer(fc, map);
      const client = new C(fc, server.address, map);
      loopWaitingForFlag(map, client, opts);
    },
  },
  {
    name: 'handleAccept is called when a client connects',
    run(fc, map, opts) {
      class Listener extends TestHandler {
        constructor() {
          super(null, map);
          this.createSocket(fc.family, SOCK_STREAM);
          this.bind(fc.bindAddr());
          this.listen(5);
        }
        override handleAccept(): void {
          this.flag = true;
        }
      }
      const server = new Listener();
      new TestClient(fc, (server.socket as Socket).getsockname(), map);
      loopWaitingForFlag(map, server, opts);
    },
  },
  {
    name: 'handleAccepted(sock, addr) is called by the default handleAccept',
    subset: true,
    run(fc, map, opts) {
      let acceptedAddr: Address | undefined;
      class Listener extends TestHandler {
        constructor() {
          super(null, map);
          this.createSocket(fc.family, SOCK_STREAM);
          this.bind(fc.bindAddr());
          this.listen(5);
        }
        override handleAccept(): void {
          Dispatcher.prototype.handleAccept.call(this);
        }
        override handleAccepted(sock: Socket, addr: Address): void {
          expect(sock).toBeInstanceOf(Socket);
          acceptedAddr = addr;
          sock.close();
          this.flag = true;
        }
      }
      const server = new Listener();
      const client = new TestClient(fc, (server.socket as Socket).getsockname(), map);
      loopWaitingForFlag(map, server, opts);
      if (fc.family === AF_UNIX) expect(acceptedAddr).toBe('');
      else expect(acceptedAddr).toEqual((client.socket as Socket).getsockname());
    },
  },
  {
    name: 'handleRead is called when data arrives',
    subset: true,
    run(fc, map, opts) {
      class Sender extends TestHandler {
        constructor(conn: Socket, m: ChannelMap) {
          super(conn, m);
          this.send(Buffer.alloc(1024, 0x78));
        }
      }
      class C extends TestClient {
        override handleRead(): void {
          this.flag = true;
        }
      }
      const server = new TestServer(fc, map, Sender);
      const client = new C(fc, server.address, map);
      loopWaitingForFlag(map, client, opts);
    },
  },
  {
    name: 'handleWrite is called when the socket is writable',
    run(fc, map, opts) {
      class C extends TestClient {
        override handleWrite(): void {
          this.flag = true;
        }
      }
      const server = new TestServer(fc, map);
      const client = new C(fc, server.address, map);
      loopWaitingForFlag(map, client, opts);
    },
  },
  {
    name: 'handleClose is called when the peer closes (seen through recv)',
    subset: true,
    run(fc, map, opts) {
      class ClosesAtOnce extends TestHandler {
        constructor(conn: Socket, m: ChannelMap) {
          super(conn, m);
          this.close();
        }
      }
      class C extends TestClient {
        override handleRead(): void {
          // The EOF is only seen by a recv() call.
          this.recv(1024);
        }
        override handleClose(): void {
          this.flag = true;
          this.close();
        }
      }
      const server = new TestServer(fc, map, ClosesAtOnce);
      const client = new C(fc, server.address, map);
      loopWaitingForFlag(map, client, opts);
      expect(client.fileno()).toBeNull();
    },
  },
  {
    name: 'handleClose is called when sending into a broken connection (EPIPE / ECONNRESET)',
    run(fc, map, opts) {
      const data = Buffer.alloc(128);
      class ReadsOnceThenCloses extends TestHandler {
        override handleRead(): void {
          this.recv(data.length);
          this.close();
        }
        override writable(): boolean {
          return false;
        }
      }
      class C extends TestClient {
        override handleWrite(): void {
          this.send(data);
        }
        override handleClose(): void {
          this.flag = true;
          this.close();
        }
        override handleExpt(): void {
          this.flag = true;
          this.close();
        }
      }
      const server = new TestServer(fc, map, ReadsOnceThenCloses);
      const client = new C(fc, server.address, map);
      loopWaitingForFlag(map, client, opts);
    },
  },
  {
    name: 'handleExpt is called when out-of-band data arrives',
    subset: true,
    notUnix: 'Python skips it for AF_UNIX: urgent data there exists only on Linux >= 5.15 with CONFIG_AF_UNIX_OOB (urgent-data.test.ts covers it where the kernel has it)',
    run(fc, map, opts) {
      let oob: Buffer | undefined;
      class SendsOob extends TestHandler {
        constructor(conn: Socket, m: ChannelMap) {
          super(conn, m);
          (this.socket as Socket).send(Buffer.from([244]), MSG_OOB);
        }
      }
      class C extends TestClient {
        override handleExpt(): void {
          oob = (this.socket as Socket).recv(1024, MSG_OOB);
          this.flag = true;
        }
      }
      const server = new TestServer(fc, map, SendsOob);
      const client = new C(fc, server.address, map);
      loopWaitingForFlag(map, client, opts);
      expect(oob).toEqual(Buffer.from([244]));
    },
  },
  {
    name: 'an error in a hook reaches handleError with the error',
    run(fc, map, opts) {
      class DivisionByZero extends Error {}
      class C extends TestClient {
        override handleWrite(): void {
          throw new DivisionByZero('float division by zero');
        }
        override handleError(err: unknown): void {
          this.flag = true;
          if (!(err instanceof DivisionByZero)) throw new Error('handleError got the wrong error');
        }
      }
      const server = new TestServer(fc, map);
      const client = new C(fc, server.address, map);
      loopWaitingForFlag(map, client, opts);
    },
  },
  {
    name: 'connection attributes: connected / accepting through connect and close',
    subset: true,
    run(fc, map, opts) {
      const server = new TestServer(fc, map);
      const client = new TestClient(fc, server.address, map);
      expect(server.connected).toBe(false);
      expect(server.accepting).toBe(true);
      expect(client.accepting).toBe(false);
      expect(client.connecting || client.connected).toBe(true);
      loop({ timeout: 0.01, count: 100, map, ...opts });
      expect(server.connected).toBe(false);
      expect(server.accepting).toBe(true);
      expect(client.connected).toBe(true);
      expect(client.connecting).toBe(false);
      expect(client.accepting).toBe(false);
      client.close();
      expect(server.connected).toBe(false);
      expect(server.accepting).toBe(true);
      expect(client.connected).toBe(false);
      expect(client.accepting).toBe(false);
      server.close();
      expect(server.connected).toBe(false);
      expect(server.accepting).toBe(false);
    },
  },
  {
    name: 'createSocket makes a nonblocking, non-inheritable stream socket of the family',
    run(fc, map) {
      const s = new Dispatcher(null, map);
      s.createSocket(fc.family, SOCK_STREAM);
      const sock = s.socket as Socket;
      expect(sock.type).toBe(SOCK_STREAM);
      expect(sock.family).toBe(fc.family);
      expect(sock.gettimeout()).toBe(0);
      expect(sock.getInheritable()).toBe(false);
      expect(map.get(sock.fileno())).toBe(s);
    },
  },
  {
    name: 'bind: a second bind to the same port fails with EADDRINUSE',
    notUnix: 'a Unix socket address is a path, not a port; the busy-port check is an IP matter',
    run(fc, map) {
      const s1 = new Dispatcher(null, map);
      s1.createSocket(fc.family, SOCK_STREAM);
      const addr = fc.bindAddr() as [string, number];
      s1.bind(addr);
      s1.listen(5);
      const port = ((s1.socket as Socket).getsockname() as [string, number])[1];
      const s2 = new Dispatcher(null, map);
      s2.createSocket(fc.family, SOCK_STREAM);
      let err: unknown;
      try {
        s2.bind([addr[0], port]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OSError);
      expect((err as OSError).errno).toBe(E.EADDRINUSE);
    },
  },
  {
    name: 'setReuseAddr turns SO_REUSEADDR on (off on a new socket)',
    notUnix: 'SO_REUSEADDR has no effect on AF_UNIX (whether the path exists decides a bind)',
    run(fc, map) {
      const probe = new Socket(fc.family, SOCK_STREAM);
      try {
        probe.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
      } finally {
        probe.close();
      }
      const s = new Dispatcher(new Socket(fc.family, SOCK_STREAM), map);
      expect(s.connected).toBe(false);
      expect((s.socket as Socket).getsockopt(SOL_SOCKET, SO_REUSEADDR)).toBe(0);
      s.close();
      s.createSocket(fc.family, SOCK_STREAM);
      s.setReuseAddr();
      expect((s.socket as Socket).getsockopt(SOL_SOCKET, SO_REUSEADDR)).not.toBe(0);
    },
  },
  {
    name: 'quick connect: a client that connects and resets at once (interleaved) does not break the loop',
    notUnix: 'SO_LINGER {1, 0} makes a TCP reset; AF_UNIX has no reset to test',
    run(fc, map, opts) {
      QuietHandler.closed = 0;
      const server = new TestServer(fc, map, QuietHandler);
      // First the reset lands before the server accepted, then after one pass accepted it.
      for (const [round, passesBeforeReset] of [0, 1].entries()) {
        const c = new Socket(fc.family, SOCK_STREAM);
        try {
          c.setsockopt(SOL_SOCKET, SO_LINGER, lingerZero());
          c.setblocking(false);
          const rc = c.connectEx(server.address);
          expect([0, E.EINPROGRESS]).toContain(rc);
          if (passesBeforeReset) loop({ timeout: 0.1, count: passesBeforeReset, map, ...opts });
        } finally {
          c.close();
        }
        for (let i = 0; i < 20 && QuietHandler.closed <= round; i++) loop({ timeout: 0.05, count: 1, map, ...opts });
      }
      // Both reset connections reached a handler and were closed; the server still serves.
      expect(QuietHandler.closed).toBe(2);
      expect(server.accepting).toBe(true);
      expect(map.size).toBe(1);
    },
  },
  {
    name: 'quick connect: a concurrent client process that connects and resets at once does not break the loop',
    notUnix: 'SO_LINGER {1, 0} makes a TCP reset; AF_UNIX has no reset to test',
    async run(fc, map, opts) {
      QuietHandler.closed = 0;
      const server = new TestServer(fc, map, QuietHandler);
      const [host, port] = server.address as [string, number];
      const script =
        "const s = require('net').connect({ host: process.argv[1], port: +process.argv[2] }, () => s.resetAndDestroy());" +
        "s.on('error', () => {});";
      const child = spawn(process.execPath, ['-e', script, host, String(port)], { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        // The loop blocks this thread; the client runs in its own process meanwhile.
        for (let i = 0; i < 100 && QuietHandler.closed === 0; i++) loop({ timeout: 0.1, count: 1, map, ...opts });
      } finally {
        expect(await exited).toBe(0);
      }
      expect(QuietHandler.closed).toBe(1);
      expect(server.accepting).toBe(true);
      loop({ timeout: 0.01, count: 3, map, ...opts });
      expect(map.size).toBe(1);
    },
  },
];

const loopCases: Array<{ name: string; opts: Opts; subsetOnly: boolean }> = [
  { name: "backend 'select'", opts: { backend: 'select' }, subsetOnly: false },
  { name: "backend 'poll'", opts: { backend: 'poll' }, subsetOnly: false },
  { name: "backend 'epoll'", opts: { backend: 'epoll' }, subsetOnly: false },
  { name: 'usePoll: true', opts: { usePoll: true }, subsetOnly: true },
];

describe.each(families)('asyncore API over $name sockets', (fc) => {
  describe.each(loopCases)('$name', ({ opts, subsetOnly }) => {
    for (const t of apiTests) {
      if (subsetOnly && !t.subset) continue;
      if (fc.family === AF_UNIX && t.notUnix) {
        it.skip(`${t.name} — not for Unix sockets: ${t.notUnix}`, () => {});
        continue;
      }
      it(t.name, async () => {
        const map = new ChannelMap();
        try {
          await t.run(fc, map, opts);
        } finally {
          closeAll(map, true);
        }
      });
    }
  });
});
