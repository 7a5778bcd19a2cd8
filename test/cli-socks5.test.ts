/**
 * The SOCKS5 proxy: the protocol parsers, the server driven in-process (with
 * node:net clients, an injected slow resolver), and the built CLI against
 * real curl, plus a flood of malformed requests.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { HAVE_IPV6, sleep } from './helpers/net.js';
import { connect, killAll, portOf, readAll, startCli } from './helpers/cli.js';
import {
  REP, Socks5Server, ipv6FromBytes, ipv6ToBytes, parseAuth, parseGreeting, parseRequest, replyBytes, replyForErrno,
} from '../src/cli/socks5.js';
import type { LookupAddress, Resolver } from '../src/cli/address.js';
import { errno as E } from '../src/errors.js';
import { AF_INET, AF_INET6 } from '../src/constants.js';

trackFds();
afterEach(() => killAll());

/** A node:http server on 127.0.0.1 (and ::1 when there is IPv6) that answers "hello from <path>". */
let web: http.Server;
let web6: http.Server | null = null;
let webPort = 0;
/** A TCP server that echoes, and remembers each connection's remote port. */
let echo: net.Server;
let echoPort = 0;
const echoPeers: number[] = [];

beforeAll(async () => {
  web = http.createServer((req, res) => res.end(`hello from ${req.url}`));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as net.AddressInfo).port;
  if (HAVE_IPV6) {
    web6 = http.createServer((req, res) => res.end(`hello over v6 from ${req.url}`));
    await new Promise<void>((r) => web6!.listen(webPort, '::1', r)).catch(() => (web6 = null));
  }
  echo = net.createServer({ allowHalfOpen: true }, (s) => {
    echoPeers.push(s.remotePort!);
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => web.close(r));
  if (web6) await new Promise((r) => web6!.close(r));
  await new Promise((r) => echo.close(r));
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

const connectReq = (atyp: number, addr: Buffer, port: number, cmd = 1) => {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  return Buffer.concat([Buffer.from([5, cmd, 0, atyp]), addr, p]);
};
const ipv4 = (s: string) => Buffer.from(s.split('.').map(Number));
const domain = (s: string) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);

/** Reads exactly `n` bytes from `s` (rejects on EOF / timeout). */
function readN(s: net.Socket, n: number, ms = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => done(new Error(`timed out waiting for ${n} bytes (got ${buf.length})`)), ms);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) {
        done(null, buf.subarray(0, n)); // pauses the socket first, so unshift does not re-emit
        if (buf.length > n) s.unshift(buf.subarray(n));
      }
    };
    const onEnd = () => done(new Error(`EOF after ${buf.length} of ${n} bytes`));
    const done = (err: Error | null, value?: Buffer) => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', onEnd);
      s.pause();
      if (err) reject(err);
      else resolve(value!);
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', onEnd);
    s.resume();
  });
}

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
      expect(echoPeers).toContain(reply.readUInt16BE(8)); // BND.PORT = the port the upstream saw
      s.write('ping');
      expect((await readN(s, 4)).toString()).toBe('ping');
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

/** Runs curl; resolves with its exit code and output (bounded by curl's own --max-time). */
function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('asyncore-native socks5 (spawned) with curl', () => {
  it('serves curl --socks5-hostname, --socks5 and -x socks5h:// (IPv4 and a name), and over IPv6', async () => {
    const p = await startCli(['socks5', '--listen', '127.0.0.1:0', '--verbose']);
    try {
      const proxy = p.address;
      expect(proxy).toMatch(/^127\.0\.0\.1:\d+$/);
      let r = await curl(['--socks5-hostname', proxy, `http://localhost:${webPort}/a`]);
      expect(r.stdout).toMatch(/^hello (over v6 )?from \/a$/);
      r = await curl(['--socks5', proxy, `http://127.0.0.1:${webPort}/b`]);
      expect(r).toMatchObject({ code: 0, stdout: 'hello from /b' });
      r = await curl(['-x', `socks5h://${proxy}`, `http://127.0.0.1:${webPort}/c`]);
      expect(r).toMatchObject({ code: 0, stdout: 'hello from /c' });
      if (web6) {
        r = await curl(['-x', `socks5h://${proxy}`, `http://[::1]:${webPort}/d`]);
        expect(r).toMatchObject({ code: 0, stdout: 'hello over v6 from /d' });
      }
      r = await curl(['-x', `socks5h://${proxy}`, `http://127.0.0.1:${await closedPort()}/`]);
      expect(r.code).toBe(97); // curl: "Can't complete SOCKS5 connection … (5)"
      expect(r.stderr).toMatch(/\(5\)/);
      expect((await p.stop('SIGINT')).code).toBe(0);
      expect(p.stderr()).toMatch(/#1 open 127\.0\.0\.1:\d+/);
      expect(p.stderr()).toMatch(/#1 close .* reply 0x00/);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('with --auth, curl --proxy-user gets through and a wrong password is refused', async () => {
    const p = await startCli(['socks5', '--listen', '127.0.0.1:0', '--auth', 'alice:s3cret']);
    try {
      let r = await curl(['--socks5-hostname', p.address, '--proxy-user', 'alice:s3cret', `http://localhost:${webPort}/ok`]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/from \/ok$/);
      r = await curl(['--socks5-hostname', p.address, '--proxy-user', 'alice:nope', `http://localhost:${webPort}/no`]);
      expect(r.code).toBe(97);
      expect(r.stdout).toBe('');
      r = await curl(['--socks5-hostname', p.address, `http://localhost:${webPort}/none`]); // no credentials at all
      expect(r.code).toBe(97);
      expect((await p.stop('SIGTERM')).code).toBe(0);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('answers or closes each of 300 malformed requests, then still serves a good one', async () => {
    const p = await startCli(['socks5', '--listen', '127.0.0.1:0', '--backend', 'poll']);
    try {
      // A fixed pseudo-random sequence, so a failure can be replayed.
      let seed = 0x2545f491;
      const rnd = (n: number) => {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        return (seed >>> 0) % n;
      };
      const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => rnd(256)));
      const good = Buffer.concat([Buffer.from([5, 1, 0]), connectReq(1, ipv4('127.0.0.1'), echoPort)]);
      const makers: Array<() => Buffer> = [
        () => bytes(1 + rnd(600)), // noise
        () => Buffer.concat([Buffer.from([5, 1, 0]), bytes(1 + rnd(40))]), // good greeting, noise request
        () => good.subarray(0, 1 + rnd(good.length - 1)), // truncated good
        () => Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]), // SOCKS4
        () => Buffer.from([5, 1, 0, 4, 1, 0, 1]), // request with a wrong version
        () => Buffer.from([5, 1, 0, 5, 1, 0, 3, 200, 1, 2]), // domain length longer than sent
        () => Buffer.from([5, 1, 0, 5, 1, 0, 3, 0, 0, 80]), // empty domain
        () => Buffer.from([5, 255, ...bytes(255)]), // many methods, no 0x00 among them maybe
        () => Buffer.from([5, 1, 0, 5, 9, 0, 1, 127, 0, 0, 1, 0, 80]), // unknown command
      ];
      const t0 = performance.now();
      const one = async (i: number) => {
        const s = await connect(p.address);
        s.on('error', () => {});
        s.write(makers[i % makers.length]!());
        s.end(); // a truncated request then ends; the proxy must not wait forever
        const r = await readAll(s, 5000);
        s.destroy();
        return r.error !== 'timeout';
      };
      const results: boolean[] = [];
      for (let i = 0; i < 300; i += 30) results.push(...(await Promise.all(Array.from({ length: 30 }, (_, j) => one(i + j)))));
      expect(results.filter((x) => !x).length).toBe(0);
      expect(performance.now() - t0).toBeLessThan(20_000);
      // Still serving.
      const r = await curl(['--socks5', p.address, `http://127.0.0.1:${webPort}/after`]);
      expect(r).toMatchObject({ code: 0, stdout: 'hello from /after' });
      expect((await p.stop('SIGTERM')).code).toBe(0);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('listens on IPv6 and on a Unix path', async () => {
    if (HAVE_IPV6) {
      const p = await startCli(['socks5', '--listen', '[::1]:0']);
      try {
        expect(p.address).toMatch(/^\[::1\]:\d+$/);
        const r = await curl(['--socks5', `[::1]:${portOf(p.address)}`, `http://127.0.0.1:${webPort}/v6`]);
        expect(r).toMatchObject({ code: 0, stdout: 'hello from /v6' });
        expect((await p.stop()).code).toBe(0);
      } finally {
        p.child.kill('SIGKILL');
      }
    }
    const { unixPath } = await import('./helpers/net.js');
    const path = unixPath();
    const p = await startCli(['socks5', '--listen', `unix:${path}`]);
    try {
      expect(p.address).toBe(`unix:${path}`);
      const s = await connect(p.address);
      s.write(Buffer.concat([Buffer.from([5, 1, 0]), connectReq(1, ipv4('127.0.0.1'), echoPort), Buffer.from('via unix')]));
      expect((await readN(s, 12)).subarray(0, 2)).toEqual(Buffer.from([5, 0]));
      expect((await readN(s, 8)).toString()).toBe('via unix');
      s.destroy();
      expect((await p.stop()).code).toBe(0);
    } finally {
      p.child.kill('SIGKILL');
    }
  });
});
