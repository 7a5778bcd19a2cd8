/**
 * SOCKS5 client pieces shared by the SOCKS5 tests: request builders, an exact
 * reader, curl, a closed port, and starting a proxy program (the CLI or the
 * ThreadingTCPServer example) as a child process that prints "listening on ADDR".
 */
import { execFile } from 'node:child_process';
import net from 'node:net';

/** A CONNECT (or `cmd`) request: VER CMD RSV ATYP ADDR PORT. */
export const connectReq = (atyp: number, addr: Buffer, port: number, cmd = 1): Buffer => {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  return Buffer.concat([Buffer.from([5, cmd, 0, atyp]), addr, p]);
};
export const ipv4 = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
/** A length byte, then the name (also an RFC 1929 field). */
export const domain = (s: string): Buffer => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);

/** Reads exactly `n` bytes from `s` (rejects on EOF / timeout); the rest stays readable. */
export function readN(s: net.Socket, n: number, ms = 5000): Promise<Buffer> {
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

/** A port nothing listens on. */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/**
 * The environment for a program that is not ours (curl): without the
 * sanitizer preload of `npm run test:asan`, which only our addon needs
 * (curl with libasan preloaded hangs).
 */
export function foreignEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.ASAN_OPTIONS;
  delete env.LSAN_OPTIONS;
  delete env.UBSAN_OPTIONS;
  return env;
}

/** Runs curl; resolves with its exit code and output (bounded by curl's own --max-time). */
export function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], { timeout: 15_000, env: foreignEnv() }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export { startProgram, killAll as killPrograms } from './cli.js';
