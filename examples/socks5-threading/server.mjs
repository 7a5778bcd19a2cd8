#!/usr/bin/env node
// A SOCKS5 proxy on ThreadingTCPServer: one worker thread per client, each
// running Socks5Handler (handler.mjs) with plain blocking code.
//
//   node examples/socks5-threading/server.mjs --listen HOST:PORT [--auth USER:PASS]
//        [--connect-timeout SECONDS] [--handshake-timeout SECONDS]
//
// ADDR is HOST:PORT, [V6]:PORT or unix:PATH; port 0 picks a free port. Once
// listening it prints `listening on ADDR` (the real port). SIGINT or SIGTERM
// stops it: the listener closes, every relay ends, and it exits with 0.
//
// Why two threads: serveForever() blocks its thread, and Node runs signal
// listeners only on a free event loop. So the server is served from a worker
// thread, and the main thread only waits for signals. On one it
// - closes the write end of a "stop" pipe whose read end every handler polls
//   (a closed pipe stays readable, so one close reaches every handler), and
// - calls requestShutdown() on the server's wake-up descriptor, which wakes
//   serveForever() at once;
// the serving thread then closes the server (waiting for the handlers) and ends.
import { rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import {
  AF_INET, AF_INET6, SOCK_STREAM, ThreadingTCPServer, ThreadingUnixStreamServer, closeFd, getaddrinfo, pipe,
  requestShutdown,
} from 'asyncore-native';

const USAGE = 'usage: server.mjs --listen HOST:PORT|[V6]:PORT|unix:PATH [--auth USER:PASS] [--connect-timeout SECONDS] [--handshake-timeout SECONDS]';

/**
 * The command line → options; throws a message for a wrong one.
 * @param {string[]} argv
 * @returns {{ listen: string, auth?: { user: string, pass: string }, connectTimeout?: number, handshakeTimeout?: number }}
 */
export function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--listen') opts.listen = value();
    else if (arg === '--auth') {
      const text = value();
      const colon = text.indexOf(':');
      if (colon <= 0 || Buffer.byteLength(text.slice(0, colon)) > 255 || Buffer.byteLength(text.slice(colon + 1)) > 255)
        throw new Error('--auth must be USER:PASS (user 1-255 bytes, password 0-255 bytes)');
      opts.auth = { user: text.slice(0, colon), pass: text.slice(colon + 1) };
    } else if (arg === '--connect-timeout' || arg === '--handshake-timeout') {
      const n = Number(value());
      if (!(n > 0)) throw new Error(`${arg} must be a positive number of seconds`);
      opts[arg === '--connect-timeout' ? 'connectTimeout' : 'handshakeTimeout'] = n;
    } else throw new Error(`unknown option ${arg}`);
  }
  if (!opts.listen) throw new Error('--listen ADDR is required');
  return opts;
}

/**
 * `HOST:PORT`, `[V6]:PORT` or `unix:PATH` → the server's family and address.
 * A host name is resolved (its first address).
 * @param {string} text
 * @returns {{ unix: true, address: string } | { unix: false, family: number, address: [string, number] }}
 */
export function parseListen(text) {
  if (text.startsWith('unix:')) return { unix: true, address: text.slice(5) };
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text);
  if (!m || Number(m[3]) > 65535) throw new Error(`--listen must be HOST:PORT, [V6]:PORT or unix:PATH, not ${text}`);
  const port = Number(m[3]);
  if (m[1] !== undefined) return { unix: false, family: AF_INET6, address: [m[1], port] };
  const host = m[2] || '0.0.0.0';
  if (isIP(host) === 4) return { unix: false, family: AF_INET, address: [host, port] };
  const [family, , , , sa] = getaddrinfo(host, port, 0, SOCK_STREAM)[0];
  return { unix: false, family, address: [sa[0], port] };
}

/**
 * A bound address as the start-up line shows it.
 * @param {boolean} unix
 * @param {string | [string, number]} address
 */
function formatAddress(unix, address) {
  if (unix) return `unix:${address}`;
  return address[0].includes(':') ? `[${address[0]}]:${address[1]}` : `${address[0]}:${address[1]}`;
}

/** The serving thread: builds the server, reports where it listens, serves until asked to stop. */
async function serve() {
  const { listen, auth, connectTimeout, handshakeTimeout, stopFd } = workerData;
  const where = parseListen(listen);
  const handler = {
    module: new URL('./handler.mjs', import.meta.url).href,
    export: 'Socks5Handler',
    data: { auth, stopFd, connectTimeout, handshakeTimeout },
  };
  const server = where.unix
    ? new ThreadingUnixStreamServer(where.address, handler)
    : new ThreadingTCPServer(where.address, handler, { addressFamily: where.family, allowReuseAddress: true, requestQueueSize: 128 });
  try {
    parentPort.postMessage({ listening: formatAddress(where.unix, server.serverAddress), shutdownFd: server.shutdownFd() });
    server.serveForever(0.5);
  } finally {
    server.serverClose(); // waits for the handlers; the stop pipe has told them to end
    if (where.unix) rmSync(where.address, { force: true });
  }
  await server.settled();
}

/** The main thread: arguments, the start-up line, signals. */
function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
    parseListen(opts.listen);
  } catch (e) {
    console.error(`${e.message}\n${USAGE}`);
    process.exit(2);
  }
  const [stopR, stopW] = pipe();
  let stopWOpen = true;
  let shutdownFd = -1;
  let stopping = false;
  const worker = new Worker(new URL(import.meta.url), { workerData: { ...opts, stopFd: stopR } });

  const stop = (signal) => {
    if (signal) console.error(`socks5: ${signal}: closing every connection`);
    stopping = true;
    if (stopWOpen) {
      stopWOpen = false;
      closeFd(stopW);
    }
    if (shutdownFd >= 0) requestShutdown(shutdownFd);
  };
  worker.on('message', (msg) => {
    if (msg.listening === undefined) return;
    shutdownFd = msg.shutdownFd;
    process.stdout.write(`listening on ${msg.listening}\n`);
    if (stopping) stop();
  });
  worker.on('error', (err) => {
    console.error(`socks5: ${err.message}`);
    process.exitCode = 1;
  });
  worker.on('exit', (code) => {
    if (stopWOpen) closeFd(stopW);
    closeFd(stopR);
    if (shutdownFd >= 0) closeFd(shutdownFd);
    if (code !== 0) process.exitCode = 1;
    else if (stopping) console.error('socks5: stopped');
  });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

if (isMainThread) main();
else await serve();
