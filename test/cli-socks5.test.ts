/**
 * The SOCKS5 proxy's own pieces: the protocol parsers, the server driven
 * in-process (node:net clients, an injected slow resolver, every backend), and
 * the CLI's log lines. The black-box suite (curl, every reply code, malformed
 * floods, stopping) runs against this proxy and the ThreadingTCPServer example
 * in test/socks5-shared.test.ts.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { HAVE_IPV6, sleep } from './helpers/net.js';
import { connect, killAll, readAll, startCli } from './helpers/cli.js';
import { closedPort, connectReq, curl, domain, ipv4, readN } from './helpers/socks5.js';
import {
  REP, Socks5Server, ipv6FromBytes, ipv6ToBytes, parseAuth, parseGreeting, parseRequest, replyBytes, replyForErrno,
} from '../src/cli/socks5.js';
import type { LookupAddress, Resolver } from '../src/cli/address.js';
import { errno as E } from '../src/errors.js';
import { AF_INET, AF_INET6, SOCK_STREAM } from '../src/constants.js';
import { Socket } from '../src/socket.js';
import { select } from '../src/select.js';

trackFds();
afterEach(() => killAll());

/** A node:http server on 127.0.0.1 that answers "hello from <path>". */
let web: http.Server;
let webPort = 0;
/** A TCP server that echoes, and remembers each connection's remote port. */
let echo: net.Server;
let echoPort = 0;
const echoPeers: number[] = [];

beforeAll(async () => {
  web = http.createServer((req, res) => res.end(`hello from ${req.url}`));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as net.AddressInfo).port;
  echo = net.createServer({ allowHalfOpen: true }, (s) => {
    echoPeers.push(s.remotePort!);
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => web.close(r));
  await new Promise((r) => echo.close(r));
});

describe('SOCKS5 parsers', () => {
  it('parse every message incrementally: each prefix asks for more, the whole parses', () => {
    const cases: Array<[(b: Buffer) => unknown, Buffer]> = [
      [parseGreeting, Buffer.from([5, 2, 0, 2])],
      [parseAuth, Buffer.from([1, 3, ...Buffer.from('bob'), 2, ...Buffer.from('pw')])],
      [parseRequest, connectReq(1, ipv4('10.1.2.3'), 8080)],
      [parseRequest, connectReq(3, domain('example.com'), 443)],
      [parseRequest, connectReq(4, ipv6ToBytes('2001:db8::1'), 22)],
    ];
    for (const [parse, msg] of cases) {
      for (let i = 0; i < msg.length; i++) expect(parse(msg.subarray(0, i)), `prefix ${i}`).toHaveProperty('need');
      expect(parse(Buffer.concat([msg, Buffer.from('extra')]))).toMatchObject({ used: msg.length });
    }
    expect(parseRequest(connectReq(3, domain('example.com'), 443))).toMatchObject({ value: { host: 'example.com', port: 443 } });
    expect(parseRequest(connectReq(4, ipv6ToBytes('2001:db8::1'), 22))).toMatchObject({ value: { host: '2001:db8::1', port: 22 } });
  });

  it('fail as early as the bytes allow, with the RFC 1928 reply code', () => {
    expect(parseGreeting(Buffer.from([4]))).toEqual({ fail: 0 });
    expect(parseAuth(Buffer.from([5]))).toEqual({ fail: 1 });
    expect(parseAuth(Buffer.from([1, 0]))).toEqual({ fail: 1 });
    expect(parseRequest(Buffer.from([4]))).toEqual({ fail: REP.GENERAL_FAILURE });
    expect(parseRequest(Buffer.from([5, 2]))).toEqual({ fail: REP.COMMAND_NOT_SUPPORTED });
    expect(parseRequest(Buffer.from([5, 3]))).toEqual({ fail: REP.COMMAND_NOT_SUPPORTED });
    expect(parseRequest(Buffer.from([5, 1, 0, 9]))).toEqual({ fail: REP.ADDRESS_TYPE_NOT_SUPPORTED });
    expect(parseRequest(Buffer.from([5, 1, 0, 3, 0]))).toEqual({ fail: REP.GENERAL_FAILURE });
  });

  it('map connect errnos to reply codes as documented', () => {
    expect(replyForErrno(E.ECONNREFUSED!)).toBe(REP.CONNECTION_REFUSED);
    expect(replyForErrno(E.ENETUNREACH!)).toBe(REP.NETWORK_UNREACHABLE);
    expect(replyForErrno(E.EHOSTUNREACH!)).toBe(REP.HOST_UNREACHABLE);
    expect(replyForErrno(E.ETIMEDOUT!)).toBe(REP.HOST_UNREACHABLE);
    expect(replyForErrno(E.EACCES!)).toBe(REP.NOT_ALLOWED);
    expect(replyForErrno(E.EAFNOSUPPORT!)).toBe(REP.ADDRESS_TYPE_NOT_SUPPORTED);
    expect(replyForErrno(E.EIO!)).toBe(REP.GENERAL_FAILURE);
  });

  it('round-trip IPv6 addresses and build replies with the bound address', () => {
    for (const a of ['::', '::1', '2001:db8::1', 'fe80::1:2:3:4', '1:2:3:4:5:6:7:8', '::ffff:1.2.3.4']) {
      const b = ipv6ToBytes(a);
      expect(ipv6ToBytes(ipv6FromBytes(b))).toEqual(b);
    }
    expect(ipv6ToBytes('::ffff:1.2.3.4').subarray(10)).toEqual(Buffer.from([0xff, 0xff, 1, 2, 3, 4]));
    expect(replyBytes(0, AF_INET, ['127.0.0.1', 4660])).toEqual(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0x12, 0x34]));
    expect(replyBytes(0, AF_INET6, ['::1', 80, 0, 0])).toEqual(Buffer.from([5, 0, 0, 4, ...ipv6ToBytes('::1'), 0, 80]));
    expect(replyBytes(REP.CONNECTION_REFUSED)).toEqual(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]));
  });
});

describe.each(['select', 'poll', 'epoll'] as const)('SOCKS5 server in-process (%s)', (backend) => {
  let server: Socks5Server;
  let running: Promise<void>;
  let addr = '';
  const lookups: string[] = [];
  /** 'slow.test' answers 127.0.0.1 after 1 s; 'nowhere.test' fails; others go to localhost. */
  const resolver: Resolver = async (host) => {
    lookups.push(host);
    if (host === 'slow.test') {
      await sleep(1000);
      return [{ address: '127.0.0.1', family: 4 }];
    }
    if (host === 'nowhere.test') throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
    return [{ address: '127.0.0.1', family: 4 } as LookupAddress];
  };

  beforeAll(async () => {
    server = new Socks5Server({ resolver, connectTimeout: 3, handshakeTimeout: 10 });
    addr = await server.listen({ kind: 'inet', host: '127.0.0.1', port: 0 });
    running = server.run({ backend });
  });
  afterAll(async () => {
    server.close();
    await running;
  });

  /** Greets with no-auth and sends `request`; returns the socket and the reply header. */
  async function request(req: Buffer): Promise<[net.Socket, Buffer]> {
    const s = await connect(addr);
    s.write(Buffer.from([5, 1, 0]));
    expect(await readN(s, 2)).toEqual(Buffer.from([5, 0]));
    s.write(req);
    const head = await readN(s, 4);
    const rest = await readN(s, head[3] === 4 ? 18 : 6);
    return [s, Buffer.concat([head, rest])];
  }

  it('CONNECT to IPv4: success reply carries the upstream socket\'s own address, then relays', async () => {
    const [s, reply] = await request(connectReq(1, ipv4('127.0.0.1'), echoPort));
    try {
      expect(reply.subarray(0, 4)).toEqual(Buffer.from([5, 0, 0, 1]));
      expect([...reply.subarray(4, 8)]).toEqual([127, 0, 0, 1]);
      s.write('ping');
      expect((await readN(s, 4)).toString()).toBe('ping');
      // After the round trip, so the echo server (on this event loop) has surely seen the connection.
      expect(echoPeers).toContain(reply.readUInt16BE(8)); // BND.PORT = the port the upstream saw
      s.end();
      expect((await readAll(s)).error).toBeNull(); // half-close passed on: echo ends, we read EOF
    } finally {
      s.destroy();
    }
  });

  it('a request sent one byte at a time (greeting, request, first data) works', async () => {
    const s = await connect(addr);
    try {
      const bytes = Buffer.concat([Buffer.from([5, 1, 0]), connectReq(3, domain('echo.test'), echoPort), Buffer.from('early')]);
      for (const b of bytes) {
        s.write(Buffer.from([b]));
        await sleep(2);
      }
      expect(await readN(s, 2)).toEqual(Buffer.from([5, 0]));
      const reply = await readN(s, 10);
      expect(reply[1]).toBe(REP.SUCCEEDED);
      expect((await readN(s, 5)).toString()).toBe('early'); // bytes sent before the reply are forwarded
    } finally {
      s.destroy();
    }
  });

  it('a slow lookup for one client does not stall another', async () => {
    const t0 = performance.now();
    const slow = request(connectReq(3, domain('slow.test'), echoPort));
    await sleep(50);
    const [fast, fastReply] = await request(connectReq(1, ipv4('127.0.0.1'), echoPort));
    const fastMs = performance.now() - t0;
    fast.destroy();
    expect(fastReply[1]).toBe(REP.SUCCEEDED);
    expect(fastMs).toBeLessThan(1000);
    const [s, slowReply] = await slow;
    s.destroy();
    expect(slowReply[1]).toBe(REP.SUCCEEDED);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
  });

  it('replies 0x05 refused, 0x04 for a name that does not resolve, 0x07 and 0x08, then closes', async () => {
    const refused = await closedPort();
    const cases: Array<[Buffer, number]> = [
      [connectReq(1, ipv4('127.0.0.1'), refused), REP.CONNECTION_REFUSED],
      [connectReq(3, domain('nowhere.test'), 80), REP.HOST_UNREACHABLE],
      [connectReq(1, ipv4('127.0.0.1'), echoPort, 2), REP.COMMAND_NOT_SUPPORTED],
      [connectReq(1, ipv4('127.0.0.1'), echoPort, 3), REP.COMMAND_NOT_SUPPORTED],
      [Buffer.from([5, 1, 0, 7, 1, 2, 3, 4]), REP.ADDRESS_TYPE_NOT_SUPPORTED],
    ];
    for (const [req, rep] of cases) {
      const [s, reply] = await request(req);
      try {
        expect(reply[0]).toBe(5);
        expect(reply[1], `reply to ${req.toString('hex')}`).toBe(rep);
        expect((await readAll(s, 5000)).error).toBeNull(); // then EOF, not a reset
      } finally {
        s.destroy();
      }
    }
  });

  it.runIf(HAVE_IPV6)('CONNECT to an IPv6 literal answers with an IPv6 bound address', async () => {
    const srv = net.createServer((c) => c.end('v6!'));
    await new Promise<void>((r) => srv.listen(0, '::1', r));
    try {
      const [s, reply] = await request(connectReq(4, ipv6ToBytes('::1'), (srv.address() as net.AddressInfo).port));
      expect(reply.subarray(0, 4)).toEqual(Buffer.from([5, 0, 0, 4]));
      expect(ipv6FromBytes(reply.subarray(4, 20))).toBe('::1');
      expect((await readAll(s)).data.toString()).toBe('v6!');
      s.destroy();
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });

  it('without --auth, a greeting offering only username/password gets 0xFF and EOF', async () => {
    const s = await connect(addr);
    s.write(Buffer.from([5, 1, 2]));
    const r = await readAll(s);
    s.destroy();
    expect(r.data).toEqual(Buffer.from([5, 0xff]));
  });
});

describe('SOCKS5 server with authentication (in-process)', () => {
  let server: Socks5Server;
  let running: Promise<void>;
  let addr = '';
  beforeAll(async () => {
    server = new Socks5Server({ auth: { user: 'alice', pass: 's3cret' } });
    addr = await server.listen({ kind: 'inet', host: '127.0.0.1', port: 0 });
    running = server.run({ backend: 'epoll' });
  });
  afterAll(async () => {
    server.close();
    await running;
  });
  const authMsg = (u: string, p: string) => Buffer.concat([Buffer.from([1]), domain(u), domain(p)]);

  it('offers only 0x02: a no-auth-only greeting gets 0xFF', async () => {
    const s = await connect(addr);
    s.write(Buffer.from([5, 1, 0]));
    expect((await readAll(s)).data).toEqual(Buffer.from([5, 0xff]));
    s.destroy();
  });

  it('accepts the right credentials and relays', async () => {
    const s = await connect(addr);
    try {
      s.write(Buffer.concat([Buffer.from([5, 2, 0, 2]), authMsg('alice', 's3cret'), connectReq(1, ipv4('127.0.0.1'), echoPort), Buffer.from('x')]));
      expect(await readN(s, 2)).toEqual(Buffer.from([5, 2]));
      expect(await readN(s, 2)).toEqual(Buffer.from([1, 0]));
      expect((await readN(s, 10))[1]).toBe(0);
      expect((await readN(s, 1)).toString()).toBe('x');
    } finally {
      s.destroy();
    }
  });

  it('refuses a wrong password with status 0x01 and closes, and never connects', async () => {
    const before = echoPeers.length;
    for (const [u, p] of [['alice', 'wrong'], ['bob', 's3cret'], ['alice', '']]) {
      const s = await connect(addr);
      s.write(Buffer.concat([Buffer.from([5, 1, 2]), authMsg(u!, p!), connectReq(1, ipv4('127.0.0.1'), echoPort)]));
      const r = await readAll(s);
      s.destroy();
      expect(r.data).toEqual(Buffer.from([5, 2, 1, 1]));
    }
    expect(echoPeers.length).toBe(before);
  });
});

/**
 * A port on 127.0.0.1 that never answers a SYN: a listener with backlog 0
 * whose one accept-queue slot a connection already holds and that never
 * accepts. Linux drops SYNs while the accept queue is full (SYN cookies do
 * not apply), so a connect there hangs; checked here with a probe.
 */
function blackHole(): { port: number; close(): void } {
  const l = new Socket(AF_INET, SOCK_STREAM);
  const filler = new Socket(AF_INET, SOCK_STREAM);
  const probe = new Socket(AF_INET, SOCK_STREAM);
  const close = () => [probe, filler, l].forEach((s) => s.close());
  try {
    l.bind(['127.0.0.1', 0]);
    l.listen(0);
    filler.setblocking(false);
    filler.connectEx(l.getsockname());
    const [, ready] = select([], [filler], [], 2);
    expect(ready, 'the filler connection takes the one queue slot').toHaveLength(1);
    probe.setblocking(false);
    probe.connectEx(l.getsockname());
    const [, probed] = select([], [probe], [], 0.3);
    expect(probed, 'a connect to the black hole must hang').toHaveLength(0);
  } catch (err) {
    close();
    throw err;
  }
  return { port: (l.getsockname() as [string, number])[1], close };
}

describe('SOCKS5 timeouts (in-process)', () => {
  it('--connect-timeout bounds the name lookup once the request is complete: 0x04, not the handshake timeout\'s EOF', async () => {
    // A lookup that never answers; the handshake timeout (0.3 s) must not cut it short.
    const never: Resolver = () => new Promise<LookupAddress[]>(() => {});
    const server = new Socks5Server({ resolver: never, connectTimeout: 1, handshakeTimeout: 0.3 });
    const addr = await server.listen({ kind: 'inet', host: '127.0.0.1', port: 0 });
    const running = server.run({ backend: 'epoll' });
    const s = await connect(addr);
    try {
      const t0 = performance.now();
      s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectReq(3, domain('hang.test'), 80)]));
      expect(await readN(s, 2)).toEqual(Buffer.from([5, 0]));
      const reply = await readN(s, 10, 5000);
      const secs = (performance.now() - t0) / 1000;
      expect(reply[1]).toBe(REP.HOST_UNREACHABLE);
      expect(secs).toBeGreaterThan(0.9);
      expect(secs).toBeLessThan(4);
    } finally {
      s.destroy();
      server.close();
      await running;
    }
  });
});

describe('asyncore-native socks5 (spawned), CLI only', () => {
  // The black-box suite shared with the ThreadingTCPServer example is test/socks5-shared.test.ts.
  it('the handshake timeout stops once the request is complete: with --handshake-timeout 1 --connect-timeout 3 and a black-hole upstream the client gets 0x04 at ~3 s, not EOF at 1 s', async () => {
    const hole = blackHole();
    try {
      const p = await startCli(['socks5', '--listen', '127.0.0.1:0', '--handshake-timeout', '1', '--connect-timeout', '3']);
      const s = await connect(p.address);
      // A second client that never completes its request: the handshake timeout still closes it.
      const idle = await connect(p.address);
      try {
        const t0 = performance.now();
        idle.write(Buffer.from([5, 1, 0]));
        const idleDone = readAll(idle, 10_000).then((r) => ({ ...r, secs: (performance.now() - t0) / 1000 }));
        s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectReq(1, ipv4('127.0.0.1'), hole.port)]));
        expect(await readN(s, 2)).toEqual(Buffer.from([5, 0]));
        const reply = await readN(s, 10, 10_000);
        const secs = (performance.now() - t0) / 1000;
        expect(reply[0]).toBe(5);
        expect(reply[1], 'reply code').toBe(REP.HOST_UNREACHABLE);
        expect(secs).toBeGreaterThan(2.5);
        expect(secs).toBeLessThan(8);
        const i = await idleDone;
        expect(i.data).toEqual(Buffer.from([5, 0]));
        expect(i.error).toBeNull();
        expect(i.secs).toBeGreaterThan(0.8);
        expect(i.secs).toBeLessThan(2.5);
      } finally {
        s.destroy();
        idle.destroy();
        await p.stop('SIGTERM');
      }
    } finally {
      hole.close();
    }
  });

  it('--verbose logs one open and one close line per client, with the destination and the reply code', async () => {
    const p = await startCli(['socks5', '--listen', '127.0.0.1:0', '--verbose']);
    try {
      let r = await curl(['--socks5', p.address, `http://127.0.0.1:${webPort}/logged`]);
      expect(r).toMatchObject({ code: 0, stdout: 'hello from /logged' });
      const refused = await closedPort();
      r = await curl(['--socks5', p.address, `http://127.0.0.1:${refused}/`]);
      expect(r.code).toBe(97);
      expect((await p.stop('SIGINT')).code).toBe(0);
      expect(p.stderr()).toMatch(/#1 open 127\.0\.0\.1:\d+/);
      expect(p.stderr()).toMatch(new RegExp(`#1 close 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${webPort} reply 0x00 sent \\d+ B received \\d+ B`));
      expect(p.stderr()).toMatch(new RegExp(`#2 close 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${refused} reply 0x05`));
      expect(p.stderr()).toMatch(/SIGINT: closing every connection/);
    } finally {
      p.child.kill('SIGKILL');
    }
  });
});
