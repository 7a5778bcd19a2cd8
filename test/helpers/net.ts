/** Small helpers for tests over real sockets. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AF_INET, AF_INET6, AF_UNIX, SOCK_STREAM, Socket, type Address } from '../../src/socket.js';

export const HAVE_IPV6 = (() => {
  try {
    const s = new Socket(AF_INET6, SOCK_STREAM);
    try {
      s.bind(['::1', 0]);
      return true;
    } finally {
      s.close();
    }
  } catch {
    return false;
  }
})();

let unixDir: string | undefined;
let unixSeq = 0;

/** A fresh Unix socket path in a private temp folder (removed at exit). */
export function unixPath(): string {
  if (!unixDir) {
    unixDir = mkdtempSync(path.join(tmpdir(), 'an-'));
    process.on('exit', () => rmSync(unixDir!, { recursive: true, force: true }));
  }
  const p = path.join(unixDir, `s${process.pid}-${unixSeq++}`);
  if (existsSync(p)) rmSync(p);
  return p;
}

export interface FamilyCase {
  name: string;
  family: number;
  /** An address to bind a listener to (port 0 / a fresh path). */
  bindAddr(): Address;
}

export const families: FamilyCase[] = [
  { name: 'IPv4', family: AF_INET, bindAddr: () => ['127.0.0.1', 0] },
  ...(HAVE_IPV6 ? [{ name: 'IPv6', family: AF_INET6, bindAddr: (): Address => ['::1', 0] }] : []),
  { name: 'Unix', family: AF_UNIX, bindAddr: () => unixPath() },
];

/** A listening socket on loopback for `family`, with its address. */
export function listener(fc: FamilyCase = families[0]!, backlog = 16): [Socket, Address] {
  const s = new Socket(fc.family, SOCK_STREAM);
  s.bind(fc.bindAddr());
  s.listen(backlog);
  return [s, s.getsockname()];
}

/** Sleeps `ms` milliseconds without blocking the event loop. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A port on 127.0.0.1 that nothing listens on (bound once, then released). */
export function closedPort(): number {
  const s = new Socket(AF_INET, SOCK_STREAM);
  try {
    s.bind(['127.0.0.1', 0]);
    return (s.getsockname() as [string, number])[1];
  } finally {
    s.close();
  }
}

/** Runs `f` and returns what it threw (fails the test when it returns). */
export function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the call to throw');
}
