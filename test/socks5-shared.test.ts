/**
 * One black-box SOCKS5 suite, run against both proxies as spawned programs:
 * the asyncore-based CLI (`asyncore-native socks5`, src/cli/socks5.ts) and
 * the ThreadingTCPServer example (examples/socks5-threading/server.mjs).
 * Real curl and raw node:net clients over loopback; every reply code the RFC
 * mapping in docs/cli.md promises; malformed input; half-close; concurrency;
 * a clean stop on SIGINT / SIGTERM.
 */
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { HAVE_IPV6, sleep, unixPath } from './helpers/net.js';
import { cliPath, connect, portOf, readAll, root, type CliProcess } from './helpers/cli.js';
import { closedPort, connectReq, curl, domain, ipv4, killPrograms, readN, startProgram } from './helpers/socks5.js';
import { REP, ipv6FromBytes, ipv6ToBytes } from '../src/cli/socks5.js';

trackFds();
// Each test stops its own proxies in `finally`; this is the backstop (after the shared proxies' afterAll).
afterAll(() => killPrograms());

interface Impl {
  name: string;
  /** Starts the proxy with the common options (`--listen`, `--auth`). */
  start(args: string[]): Promise<CliProcess>;
  /** Options only this implementation has, used where the suite wants them. */
  floodArgs: string[];
  /**
   * The malformed-input flood: `count` connections, `batch` at a time, each
   * answered or closed within `connMs`, all within `totalMs`. The threading
   * example starts a worker thread per connection — about 60 ms of CPU each
   * (a new V8 isolate, ~30 ms, that then loads the library, ~27 ms) — so it
   * gets fewer connections, smaller batches and more time than the
   * single-threaded loop, whose flood costs well under a second.
   */
  flood: { count: number; batch: number; connMs: number; totalMs: number };
}

const impls: Impl[] = [
  {
    name: 'asyncore (cli)',
    start: (args) => startProgram(cliPath, ['socks5', ...args]),
    floodArgs: ['--backend', 'poll'],
    flood: { count: 300, batch: 30, connMs: 5000, totalMs: 20_000 },
  },
  {
    name: 'ThreadingTCPServer example',
    start: (args) => startProgram(path.join(root, 'examples/socks5-threading/server.mjs'), args),
    floodArgs: [],
    flood: { count: 120, batch: 10, connMs: 10_000, totalMs: 45_000 },
  },
];

/** A node:http server on 127.0.0.1 (and ::1 when there is IPv6) that answers "hello from <path>". */
let web: http.Server;
let web6: http.Server | null = null;
let webPort = 0;
/** A TCP server that echoes (keeping half-closes), and remembers each connection's remote port. */
let echo: net.Server;
let echoPort = 0;
const echoPeers: number[] = [];
/** A TCP server that holds each connection SLOW_MS, then writes "slow" and ends. */
const SLOW_MS = 800;
let slow: net.Server;
let slowPort = 0;

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
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as net.AddressInfo).port;
  slow = net.createServer((s) => {
    s.on('error', () => {});
    setTimeout(() => s.end('slow'), SLOW_MS);
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  slowPort = (slow.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => web.close(r));
  if (web6) await new Promise((r) => web6!.close(r));
  await new Promise((r) => echo.close(r));
  await new Promise((r) => slow.close(r));
});

describe.each(impls)('SOCKS5 proxy: $name', (impl) => {
  /** One proxy (no auth) shared by the raw-socket tests of this implementation. */
  let proxy: CliProcess;
  beforeAll(async () => {
    proxy = await impl.start(['--listen', '127.0.0.1:0']);
  });
  afterAll(async () => {
    try {
      expect((await proxy.stop('SIGTERM')).code).toBe(0);
    } finally {
      proxy.child.kill('SIGKILL');
    }
  });

  /** Greets with no-auth and sends `req`; returns the socket and the whole reply. */
  async function request(req: Buffer, addr = proxy.address): Promise<[net.Socket, Buffer]> {
    const s = await connect(addr);
    s.on('error', () => {});
    s.write(Buffer.from([5, 1, 0]));
    expect(await readN(s, 2)).toEqual(Buffer.from([5, 0]));
    s.write(req);
    const head = await readN(s, 4);
    const rest = await readN(s, head[3] === 4 ? 18 : 6);
    return [s, Buffer.concat([head, rest])];
  }

  it('serves curl --socks5-hostname, --socks5 and -x socks5h:// (IPv4, a name, IPv6); a refused port is curl error 97 (5)', async () => {
    const p = await impl.start(['--listen', '127.0.0.1:0']);
    try {
      expect(p.address).toMatch(/^127\.0\.0\.1:\d+$/);
      let r = await curl(['--socks5-hostname', p.address, `http://localhost:${webPort}/a`]);
      expect(r.stdout).toMatch(/^hello (over v6 )?from \/a$/);
      r = await curl(['--socks5', p.address, `http://127.0.0.1:${webPort}/b`]);
      expect(r).toMatchObject({ code: 0, stdout: 'hello from /b' });
      r = await curl(['-x', `socks5h://${p.address}`, `http://127.0.0.1:${webPort}/c`]);
      expect(r).toMatchObject({ code: 0, stdout: 'hello from /c' });
      if (web6) {
        r = await curl(['-x', `socks5h://${p.address}`, `http://[::1]:${webPort}/d`]);
        expect(r).toMatchObject({ code: 0, stdout: 'hello over v6 from /d' });
      }
      r = await curl(['-x', `socks5h://${p.address}`, `http://127.0.0.1:${await closedPort()}/`]);
      expect(r.code).toBe(97); // curl: "Can't complete SOCKS5 connection … (5)"
      expect(r.stderr).toMatch(/\(5\)/);
      expect((await p.stop('SIGINT')).code).toBe(0);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('with --auth: curl --proxy-user gets through; a wrong or missing password is refused, with status 0x01 and no upstream connect', async () => {
    const p = await impl.start(['--listen', '127.0.0.1:0', '--auth', 'alice:s3cret']);
    try {
      let r = await curl(['--socks5-hostname', p.address, '--proxy-user', 'alice:s3cret', `http://localhost:${webPort}/ok`]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/from \/ok$/);
      r = await curl(['--socks5-hostname', p.address, '--proxy-user', 'alice:nope', `http://localhost:${webPort}/no`]);
      expect(r.code).toBe(97);
      expect(r.stdout).toBe('');
      r = await curl(['--socks5-hostname', p.address, `http://localhost:${webPort}/none`]); // no credentials at all
      expect(r.code).toBe(97);

      const auth = (u: string, pw: string) => Buffer.concat([Buffer.from([1]), domain(u), domain(pw)]);
      const before = echoPeers.length;
      for (const [u, pw] of [['alice', 'wrong'], ['bob', 's3cret'], ['alice', ''], ['alicex', 's3cret']]) {
        const s = await connect(p.address);
        s.write(Buffer.concat([Buffer.from([5, 1, 2]), auth(u!, pw!), connectReq(1, ipv4('127.0.0.1'), echoPort)]));
        const got = await readAll(s);
        s.destroy();
        expect(got.data, `${u}:${pw}`).toEqual(Buffer.from([5, 2, 1, 1]));
      }
      // A no-auth-only greeting gets 0xFF; the right pair then relays, early data included.
      let s = await connect(p.address);
      s.write(Buffer.from([5, 1, 0]));
      expect((await readAll(s)).data).toEqual(Buffer.from([5, 0xff]));
      s.destroy();
      s = await connect(p.address);
      try {
        s.write(Buffer.concat([Buffer.from([5, 2, 0, 2]), auth('alice', 's3cret'), connectReq(1, ipv4('127.0.0.1'), echoPort), Buffer.from('x')]));
        expect(await readN(s, 4)).toEqual(Buffer.from([5, 2, 1, 0]));
        expect((await readN(s, 10))[1]).toBe(REP.SUCCEEDED);
        expect((await readN(s, 1)).toString()).toBe('x');
      } finally {
        s.destroy();
      }
      expect(echoPeers.length).toBe(before + 1); // only the authenticated client reached the upstream
      expect((await p.stop('SIGTERM')).code).toBe(0);
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it("CONNECT to IPv4: the success reply carries the upstream socket's own address, then relays and passes the half-close on", async () => {
    const [s, reply] = await request(connectReq(1, ipv4('127.0.0.1'), echoPort));
    try {
      expect(reply.subarray(0, 4)).toEqual(Buffer.from([5, 0, 0, 1]));
      expect([...reply.subarray(4, 8)]).toEqual([127, 0, 0, 1]);
      s.write('ping');
      expect((await readN(s, 4)).toString()).toBe('ping');
      // Checked after the round trip: the echo server (on this event loop) has surely seen the connection by now.
      expect(echoPeers).toContain(reply.readUInt16BE(8)); // BND.PORT = the port the upstream saw
      s.end();
      expect(await readAll(s, 5000)).toEqual({ data: Buffer.alloc(0), error: null }); // echo ended: we read EOF
    } finally {
      s.destroy();
    }
  });

  it('replies 0x05 refused, 0x04 unknown name, 0x03 unreachable network, 0x07 command, 0x08 address type, 0x01 bad request, then EOF', async () => {
    const cases: Array<[string, Buffer, number]> = [
      ['refused port', connectReq(1, ipv4('127.0.0.1'), await closedPort()), REP.CONNECTION_REFUSED],
      ['name that does not resolve', connectReq(3, domain('no-such-host.invalid'), 80), REP.HOST_UNREACHABLE],
      // connect(2) to a multicast address is ENETUNREACH on Linux (tcp_v4_connect).
      ['multicast destination', connectReq(1, ipv4('224.0.0.1'), 80), REP.NETWORK_UNREACHABLE],
      ['BIND', connectReq(1, ipv4('127.0.0.1'), echoPort, 2), REP.COMMAND_NOT_SUPPORTED],
      ['UDP ASSOCIATE', connectReq(1, ipv4('127.0.0.1'), echoPort, 3), REP.COMMAND_NOT_SUPPORTED],
      ['unknown command', connectReq(1, ipv4('127.0.0.1'), echoPort, 9), REP.COMMAND_NOT_SUPPORTED],
      ['ATYP 7', Buffer.from([5, 1, 0, 7, 1, 2, 3, 4]), REP.ADDRESS_TYPE_NOT_SUPPORTED],
      ['request VER 4', Buffer.from([4, 1, 0, 1, 127, 0, 0, 1, 0, 80]), REP.GENERAL_FAILURE],
      ['empty domain', Buffer.from([5, 1, 0, 3, 0, 0, 80]), REP.GENERAL_FAILURE],
    ];
    const before = echoPeers.length;
    for (const [what, req, rep] of cases) {
      const [s, reply] = await request(req);
      try {
        expect(reply.subarray(0, 4), what).toEqual(Buffer.from([5, rep, 0, 1]));
        expect(await readAll(s, 5000), what).toEqual({ data: Buffer.alloc(0), error: null }); // then EOF, not a reset
      } finally {
        s.destroy();
      }
    }
    expect(echoPeers.length).toBe(before); // no unsupported command was carried out as CONNECT
  });

  it('a greeting without an acceptable method gets 0xFF; a greeting that is not SOCKS5 is closed without a reply', async () => {
    let s = await connect(proxy.address);
    s.write(Buffer.from([5, 1, 2]));
    expect(await readAll(s, 5000)).toEqual({ data: Buffer.from([5, 0xff]), error: null });
    s.destroy();
    s = await connect(proxy.address);
    s.write(Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0])); // SOCKS4
    expect(await readAll(s, 5000)).toEqual({ data: Buffer.alloc(0), error: null });
    s.destroy();
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

  it('a request sent one byte at a time (greeting, request for a name the proxy resolves, first data) works', async () => {
    const s = await connect(proxy.address);
    try {
      const bytes = Buffer.concat([Buffer.from([5, 1, 0]), connectReq(3, domain('localhost'), echoPort), Buffer.from('early')]);
      for (const b of bytes) {
        s.write(Buffer.from([b]));
        await sleep(2);
      }
      expect(await readN(s, 2)).toEqual(Buffer.from([5, 0]));
      const head = await readN(s, 4);
      expect(head[1]).toBe(REP.SUCCEEDED);
      await readN(s, head[3] === 4 ? 18 : 6);
      expect((await readN(s, 5)).toString()).toBe('early'); // bytes sent before the reply are forwarded
    } finally {
      s.destroy();
    }
  });

  it('relays 4 MiB each way at once, byte for byte, and ends with EOF after the half-close', async () => {
    const [s, reply] = await request(connectReq(1, ipv4('127.0.0.1'), echoPort));
    try {
      expect(reply[1]).toBe(REP.SUCCEEDED);
      const data = Buffer.alloc(4 << 20);
      for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
      s.end(data); // written while the echo comes back: neither direction may wait for the other
      const got = await readAll(s, 20_000);
      expect(got.error).toBeNull();
      expect(got.data.length).toBe(data.length);
      expect(createHash('sha256').update(got.data).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    } finally {
      s.destroy();
    }
  });

  it('serves two clients with slow upstreams at the same time', async () => {
    const t0 = performance.now();
    const one = async () => {
      const [s, reply] = await request(connectReq(1, ipv4('127.0.0.1'), slowPort));
      try {
        expect(reply[1]).toBe(REP.SUCCEEDED);
        return (await readAll(s, 5000)).data.toString();
      } finally {
        s.destroy();
      }
    };
    expect(await Promise.all([one(), one()])).toEqual(['slow', 'slow']);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(SLOW_MS - 50);
    expect(ms).toBeLessThan(2 * SLOW_MS - 100); // one after the other would take 2 × SLOW_MS
  });

  it('answers or closes each of a flood of malformed requests, then still serves a good one', async () => {
    const p = await impl.start(['--listen', '127.0.0.1:0', ...impl.floodArgs]);
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
      const { flood } = impl;
      const t0 = performance.now();
      const one = async (i: number) => {
        const s = await connect(p.address);
        s.on('error', () => {});
        s.write(makers[i % makers.length]!());
        s.end(); // a truncated request then ends; the proxy must not wait forever
        const r = await readAll(s, flood.connMs);
        s.destroy();
        return r.error !== 'timeout';
      };
      const results: boolean[] = [];
      for (let i = 0; i < flood.count; i += flood.batch) {
        results.push(...(await Promise.all(Array.from({ length: flood.batch }, (_, j) => one(i + j)))));
      }
      expect(results.length).toBe(flood.count);
      expect(results.filter((x) => !x).length).toBe(0);
      expect(performance.now() - t0).toBeLessThan(flood.totalMs);
      // Still serving.
      const r = await curl(['--socks5', p.address, `http://127.0.0.1:${webPort}/after`]);
      expect(r).toMatchObject({ code: 0, stdout: 'hello from /after' });
      expect((await p.stop('SIGTERM')).code).toBe(0);
    } finally {
      p.child.kill('SIGKILL');
    }
  }, 90_000);

  it('listens on IPv6 and on a Unix path', async () => {
    if (HAVE_IPV6) {
      const p = await impl.start(['--listen', '[::1]:0']);
      try {
        expect(p.address).toMatch(/^\[::1\]:\d+$/);
        const r = await curl(['--socks5', `[::1]:${portOf(p.address)}`, `http://127.0.0.1:${webPort}/v6`]);
        expect(r).toMatchObject({ code: 0, stdout: 'hello from /v6' });
        expect((await p.stop()).code).toBe(0);
      } finally {
        p.child.kill('SIGKILL');
      }
    }
    const where = unixPath();
    const p = await impl.start(['--listen', `unix:${where}`]);
    try {
      expect(p.address).toBe(`unix:${where}`);
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

  it('SIGTERM with a relay and a half-done handshake open: both clients read EOF, and the exit code is 0', async () => {
    const p = await impl.start(['--listen', '127.0.0.1:0']);
    try {
      const [relayed, reply] = await request(connectReq(1, ipv4('127.0.0.1'), echoPort), p.address);
      expect(reply[1]).toBe(REP.SUCCEEDED);
      const halfway = await connect(p.address);
      halfway.on('error', () => {});
      halfway.write(Buffer.from([5, 1, 0, 5, 1])); // greeting and the start of a request
      expect(await readN(halfway, 2)).toEqual(Buffer.from([5, 0]));
      const t0 = performance.now();
      const ends = Promise.all([readAll(relayed, 5000), readAll(halfway, 5000)]);
      expect((await p.stop('SIGTERM', 5000)).code).toBe(0);
      for (const r of await ends) expect(r.error === null || r.error === 'ECONNRESET').toBe(true);
      expect(performance.now() - t0).toBeLessThan(4000);
      relayed.destroy();
      halfway.destroy();
    } finally {
      p.child.kill('SIGKILL');
    }
  });
});
