/**
 * asynchat, carrying what CPython's test_asynchat checks, under select, poll
 * and epoll. The peer is a blocking echo server in a worker thread (as
 * Python's test uses a thread): it reads one byte at a time until QUIT,
 * then echoes everything back in chunks of 1, 2 or 3 bytes.
 */
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { AsyncChat, SimpleProducer, findPrefixAtEnd } from '../src/asynchat.js';
import { ChannelMap, closeAll, loop } from '../src/asyncore/index.js';
import { AF_INET, SOCK_STREAM, socketpair } from '../src/socket.js';

trackFds();

const dist = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/index.js')).href;
const QUIT = Buffer.from('QUIT\n');

const serverCode = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.dist).then(({ Socket }) => {
  const l = new Socket();
  l.bind(['127.0.0.1', 0]);
  l.listen(1);
  parentPort.postMessage(l.getsockname()[1]);
  const [conn] = l.accept();
  conn.settimeout(10);
  let buf = Buffer.alloc(0);
  const quit = Buffer.from('QUIT\\n');
  while (buf.indexOf(quit) < 0) {
    const d = conn.recv(1);
    if (d.length === 0) break;
    buf = Buffer.concat([buf, d]);
  }
  const i = buf.indexOf(quit);
  if (i >= 0) buf = Buffer.concat([buf.subarray(0, i), buf.subarray(i + quit.length)]);
  const got = buf.length;
  const go = () => {
    try {
      while (buf.length) {
        const n = conn.send(buf.subarray(0, workerData.chunk));
        buf = buf.subarray(n);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      }
    } catch {}
    conn.close();
    l.close();
    parentPort.postMessage({ left: buf.length, got });
  };
  if (workerData.waitForResend) parentPort.once('message', go); else go();
});
`;

interface EchoServer {
  port: number;
  worker: Worker;
  done: Promise<{ left: number; got: number }>;
}

async function startServer(chunk = 1, waitForResend = false): Promise<EchoServer> {
  const worker = new Worker(serverCode, { eval: true, workerData: { dist, chunk, waitForResend } });
  let resolveDone!: (v: { left: number; got: number }) => void;
  const done = new Promise<{ left: number; got: number }>((r) => (resolveDone = r));
  const port = await new Promise<number>((resolve, reject) => {
    worker.on('message', (m) => (typeof m === 'number' ? resolve(m) : resolveDone(m)));
    worker.on('error', reject);
  });
  return { port, worker, done };
}

class EchoClient extends AsyncChat {
  contents: Buffer[] = [];
  buffer = Buffer.alloc(0);
  constructor(terminator: Buffer | number | null, port: number, map: ChannelMap) {
    super(null, map);
    this.createSocket(AF_INET, SOCK_STREAM);
    this.connect(['127.0.0.1', port]);
    this.setTerminator(terminator);
  }
  override handleConnect(): void {}
  override collectIncomingData(data: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, data]);
  }
  override foundTerminator(): void {
    this.contents.push(this.buffer);
    this.buffer = Buffer.alloc(0);
  }
}

const backends = ['select', 'poll', 'epoll'] as const;
let maps: ChannelMap[] = [];
afterEach(() => {
  for (const m of maps) closeAll(m, true);
  maps = [];
});

function newMap(): ChannelMap {
  const m = new ChannelMap();
  maps.push(m);
  return m;
}

/** Runs the loop until the server thread has finished (bounded: 10 s), then drains what is in flight. */
async function serve(map: ChannelMap, backend: (typeof backends)[number], server: EchoServer): Promise<void> {
  let finished = false;
  void server.done.then(() => (finished = true));
  const deadline = performance.now() + 10_000;
  while (!finished && map.size > 0 && performance.now() < deadline) {
    loop({ backend, map, timeout: 0.01, count: 1 });
    await new Promise((r) => setImmediate(r));
  }
  // The last bytes the server sent may still be in flight: a few more passes.
  for (let j = 0; j < 20 && map.size > 0; j++) loop({ backend, map, timeout: 0.01, count: 1 });
  await server.done;
  await server.worker.terminate();
}

describe.each(backends)('asynchat under %s', (backend) => {
  for (const [name, term] of [['1-byte', '\n'], ['2-byte', '\r\n'], ['3-byte', 'qqq']] as const) {
    it.each([1, 2, 3])(`${name} line terminator, server chunks of %i`, async (chunk) => {
      const server = await startServer(chunk);
      const map = newMap();
      const t = Buffer.from(term);
      const c = new EchoClient(t, server.port, map);
      c.push(Buffer.from('hello '));
      c.push(Buffer.concat([Buffer.from('world'), t]));
      c.push(Buffer.concat([Buffer.from("I'm not dead yet!"), t]));
      c.push(QUIT);
      await serve(map, backend, server);
      expect(c.contents.map(String)).toEqual(['hello world', "I'm not dead yet!"]);
    });
  }

  it.each([1, 6])('numeric terminator of %i bytes', async (n) => {
    const server = await startServer();
    const map = newMap();
    const c = new EchoClient(n, server.port, map);
    const data = Buffer.from("hello world, I'm not dead yet!\n");
    c.push(data);
    c.push(QUIT);
    await serve(map, backend, server);
    expect(c.contents).toEqual([data.subarray(0, n)]);
    // After the count is reached the terminator is 0: the rest is collected.
    expect(c.getTerminator()).toBe(0);
    expect(c.buffer.equals(data.subarray(n))).toBe(true);
  });

  it('null terminator collects everything', async () => {
    const server = await startServer();
    const map = newMap();
    const c = new EchoClient(null, server.port, map);
    const data = Buffer.from("hello world, I'm not dead yet!\n");
    c.push(data);
    c.push(QUIT);
    await serve(map, backend, server);
    expect(c.contents).toEqual([]);
    expect(c.buffer.equals(data)).toBe(true);
  });

  it('simple producer', async () => {
    const server = await startServer();
    const map = newMap();
    const c = new EchoClient(Buffer.from('\n'), server.port, map);
    const data = Buffer.from("hello world\nI'm not dead yet!\n");
    c.pushWithProducer(new SimpleProducer(Buffer.concat([data, QUIT]), 8));
    await serve(map, backend, server);
    expect(c.contents.map(String)).toEqual(['hello world', "I'm not dead yet!"]);
  });

  it('string producer (bytes pushed as a producer)', async () => {
    const server = await startServer();
    const map = newMap();
    const c = new EchoClient(Buffer.from('\n'), server.port, map);
    c.pushWithProducer(Buffer.concat([Buffer.from("hello world\nI'm not dead yet!\n"), QUIT]));
    await serve(map, backend, server);
    expect(c.contents.map(String)).toEqual(['hello world', "I'm not dead yet!"]);
  });

  it('empty line', async () => {
    const server = await startServer();
    const map = newMap();
    const c = new EchoClient(Buffer.from('\n'), server.port, map);
    c.push(Buffer.from("hello world\n\nI'm not dead yet!\n"));
    c.push(QUIT);
    await serve(map, backend, server);
    expect(c.contents.map(String)).toEqual(['hello world', '', "I'm not dead yet!"]);
  });

  it('close when done: closes after the queue drains, before any reply', async () => {
    const server = await startServer(1, true);
    const map = newMap();
    const c = new EchoClient(Buffer.from('\n'), server.port, map);
    c.push(Buffer.from("hello world\nI'm not dead yet!\n"));
    c.push(QUIT);
    c.closeWhenDone();
    for (let i = 0; i < 300 && map.size > 0; i++) loop({ backend, map, timeout: 0.01, count: 1 });
    expect(map.size).toBe(0);
    server.worker.postMessage('resend');
    const { got } = await server.done;
    await server.worker.terminate();
    expect(c.contents).toEqual([]);
    // Everything queued before closeWhenDone reached the server.
    expect(got).toBe(Buffer.byteLength("hello world\nI'm not dead yet!\n"));
  });

  it('push: bytes, typed arrays and strings (UTF-8, a deliberate difference); TypeError otherwise', async () => {
    const server = await startServer();
    const map = newMap();
    const c = new EchoClient(Buffer.from('\n'), server.port, map);
    const data = Buffer.from('bytes\n');
    c.push(data);
    c.push(new Uint8Array(data));
    c.push(new DataView(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)));
    c.push('bytes\n');
    expect(() => c.push(10 as never)).toThrow(TypeError);
    expect(() => c.push(null as never)).toThrow(TypeError);
    c.push(QUIT);
    await serve(map, backend, server);
    expect(c.contents.map(String)).toEqual(['bytes', 'bytes', 'bytes', 'bytes']);
  });
});

describe('asynchat without a peer', () => {
  it('recv on EAGAIN does not reach handleError', () => {
    const map = newMap();
    const [a, b] = socketpair();
    let errors = 0;
    class Chat extends AsyncChat {
      override collectIncomingData(): void {}
      override foundTerminator(): void {}
      override handleError(): void {
        errors++;
      }
    }
    const c = new Chat(a, map);
    c.handleRead();
    expect(errors).toBe(0);
    expect(map.get(c.fileno()!)).toBe(c);
    c.close();
    b.close();
  });

  it('findPrefixAtEnd', () => {
    expect(findPrefixAtEnd('qwerty\r', '\r\n')).toBe(1);
    expect(findPrefixAtEnd('qwertydkjf', '\r\n')).toBe(0);
    expect(findPrefixAtEnd('abcab', 'abcd')).toBe(2);
  });

  it('a negative terminator is a RangeError', () => {
    const c = new AsyncChat(null, newMap());
    expect(() => c.setTerminator(-1)).toThrow(RangeError);
    expect(() => c.setTerminator(1.5)).toThrow(TypeError);
    expect(() => c.setTerminator({} as never)).toThrow(TypeError);
  });

  it('a terminator split across reads is found, and an integer one counts down across reads', () => {
    const map = newMap();
    const [a, b] = socketpair();
    const got: string[] = [];
    let cur = '';
    class Chat extends AsyncChat {
      override collectIncomingData(d: Buffer): void {
        cur += d.toString();
      }
      override foundTerminator(): void {
        got.push(cur);
        cur = '';
        if (got.length === 1) this.setTerminator(5);
      }
    }
    const c = new Chat(a, map);
    c.setTerminator('\r\n');
    for (const piece of ['one\r', '\nab', 'c', 'de', 'rest']) {
      b.sendall(piece);
      c.handleRead();
    }
    expect(got).toEqual(['one', 'abcde']);
    expect(cur).toBe('rest');
    c.close();
    b.close();
  });

  it('push splits by acOutBufferSize; discardBuffers empties both sides', () => {
    const map = newMap();
    const [a, b] = socketpair();
    class Chat extends AsyncChat {
      override collectIncomingData(): void {}
      override foundTerminator(): void {}
    }
    const c = new Chat(a, map);
    c.acOutBufferSize = 4;
    // Fill the socket so nothing is sent at once.
    c.push(Buffer.alloc(10, 1));
    expect(c.producerFifo.length).toBeGreaterThanOrEqual(2);
    c.discardBuffers();
    expect(c.producerFifo.toArray()).toEqual([]);
    expect(c.acInBuffer.length).toBe(0);
    c.close();
    b.close();
  });
});
