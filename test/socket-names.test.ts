/**
 * The socket module's name functions — gethostname, getfqdn, gethostbyname,
 * gethostbyaddr, getnameinfo, inetPton, inetNtop — against Python 3.11's
 * answers on this machine: every case below is run through python3.11's
 * socket module and through ours, and the results (a value, or an error
 * class with its errno) must match. The cases stay with /etc/hosts and
 * numeric addresses, apart from one reverse lookup that must fail (it may
 * ask the system's resolver, as the existing "no-such-host.invalid" case does).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';
import { GaiError, HError, OSError, errno as E } from '../src/errors.js';
import {
  AF_INET, AF_INET6, AF_UNIX, EAI_ADDRFAMILY, NI_DGRAM, NI_NAMEREQD, NI_NUMERICHOST, NI_NUMERICSERV,
  getfqdn, gethostbyaddr, gethostbyname, gethostname, getnameinfo, inetNtop, inetPton,
} from '../src/socket.js';
import * as index from '../src/index.js';

trackFds();

type Call =
  | ['gethostname']
  | ['getfqdn', string?]
  | ['gethostbyname', string]
  | ['gethostbyaddr', string]
  | ['getnameinfo', unknown[], number]
  | ['inet_pton', number, string]
  | ['inet_ntop', number, string]; // packed bytes as hex

/** What a call gave: its value, or the error as Python names its class (and errno when Python has one). */
type Outcome = { ok: unknown } | { err: string; errno: number | null };

const PYTHON = spawnSync('python3.11', ['-c', 'import socket'], { encoding: 'utf8' });
const HAVE_PYTHON = PYTHON.status === 0;

const pyHarness = `
import json, socket, sys
out = []
for call in json.load(sys.stdin):
    name, args = call[0], call[1:]
    try:
        if name == 'getnameinfo':
            v = socket.getnameinfo(tuple(args[0]), args[1])
        elif name == 'inet_ntop':
            v = socket.inet_ntop(args[0], bytes.fromhex(args[1]))
        elif name == 'inet_pton':
            v = socket.inet_pton(args[0], args[1]).hex()
        else:
            v = getattr(socket, name)(*args)
        out.append({'ok': v})
    except Exception as e:
        out.append({'err': type(e).__name__, 'errno': getattr(e, 'errno', None)})
print(json.dumps(out))
`;

function python(calls: Call[]): Outcome[] {
  const r = spawnSync('python3.11', ['-c', pyHarness], { input: JSON.stringify(calls), encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`python3.11 failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Outcome[];
}

/** Our error class as the Python class it stands for. */
function pyClass(e: unknown): string {
  if (e instanceof GaiError) return 'gaierror';
  if (e instanceof HError) return 'herror';
  if (e instanceof OSError) return 'OSError';
  if (e instanceof TypeError) return 'TypeError';
  if (e instanceof RangeError) return 'ValueError';
  return `unexpected ${String(e)}`;
}

function ours(call: Call): Outcome {
  const [name, ...args] = call;
  try {
    let v: unknown;
    if (name === 'gethostname') v = gethostname();
    else if (name === 'getfqdn') v = getfqdn(...(args as [string?]));
    else if (name === 'gethostbyname') v = gethostbyname(args[0] as string);
    else if (name === 'gethostbyaddr') v = gethostbyaddr(args[0] as string);
    else if (name === 'getnameinfo') v = getnameinfo(args[0] as [string, number], args[1] as number);
    else if (name === 'inet_pton') v = inetPton(args[0] as number, args[1] as string).toString('hex');
    else v = inetNtop(args[0] as number, Buffer.from(args[1] as string, 'hex'));
    return { ok: v };
  } catch (e) {
    return { err: pyClass(e), errno: (e as { errno?: number }).errno ?? null };
  }
}

/** Python's ValueError, UnicodeError and OverflowError are our RangeError. */
function normalise(o: Outcome): Outcome {
  if ('err' in o && ['UnicodeError', 'OverflowError'].includes(o.err)) return { err: 'ValueError', errno: null };
  return o;
}

const cases: Call[] = [
  ['gethostname'],
  ['getfqdn'],
  ['getfqdn', ''],
  ['getfqdn', 'localhost'],
  ['getfqdn', '127.0.0.1'],
  ['getfqdn', '0.0.0.0'],
  ['getfqdn', '::'],
  ['getfqdn', ' localhost '],
  ['gethostbyname', 'localhost'],
  ['gethostbyname', ''],
  ['gethostbyname', '<broadcast>'],
  ['gethostbyname', '255.255.255.255'],
  ['gethostbyname', '127.1'],
  ['gethostbyname', '0'],
  ['gethostbyname', '10.1.2.3'],
  ['gethostbyname', '::1'],
  ['gethostbyname', 'a..b'],
  ['gethostbyname', `${'x'.repeat(64)}.com`],
  ['gethostbyname', '.'],
  ['gethostbyaddr', '127.0.0.1'],
  ['gethostbyaddr', 'localhost'],
  ['gethostbyaddr', '127.1'],
  ['gethostbyaddr', ''],
  ['gethostbyaddr', 'a..b'],
  ['getnameinfo', ['127.0.0.1', 80], 0],
  ['getnameinfo', ['127.0.0.1', 80], NI_NUMERICHOST | NI_NUMERICSERV],
  ['getnameinfo', ['127.0.0.1', 12345], 0],
  ['getnameinfo', ['127.0.0.1', 70000], 0],
  ['getnameinfo', ['127.0.0.1', -1], 0],
  ['getnameinfo', ['127.0.0.1', 80], NI_DGRAM],
  ['getnameinfo', ['127.0.0.1', 80, 0, 0], 0],
  ['getnameinfo', ['localhost', 80], 0],
  ['getnameinfo', ['', 80], 0],
  ['getnameinfo', ['127.0.0.1', 80], NI_NAMEREQD | NI_NUMERICHOST],
  ['getnameinfo', ['::1', 22, 0, 0], NI_NUMERICHOST],
  ['getnameinfo', ['::1', 80, 0, 1], NI_NUMERICHOST],
  ['getnameinfo', ['::1', 80, 0, -1], NI_NUMERICHOST],
  ['getnameinfo', ['::1', 80, 0, 2 ** 32], NI_NUMERICHOST],
  ['getnameinfo', ['::1', 80, 0x100000, 0], NI_NUMERICHOST],
  ['getnameinfo', ['::1', 80, -1, 0], NI_NUMERICHOST],
  ['getnameinfo', ['fe80::1%lo', 80], NI_NUMERICHOST],
  ['getnameinfo', ['127.0.0.1'], 0],
  ['getnameinfo', ['127.0.0.1', 80], 2 ** 40],
  ['inet_pton', AF_INET, '1.2.3.4'],
  ['inet_pton', AF_INET, '1.2.3'],
  ['inet_pton', AF_INET, '01.2.3.4'],
  ['inet_pton', AF_INET, '256.1.1.1'],
  ['inet_pton', AF_INET, ''],
  ['inet_pton', AF_INET, '1.2.3.4 '],
  ['inet_pton', AF_INET6, '::ffff:1.2.3.4'],
  ['inet_pton', AF_INET6, '2001:db8::1'],
  ['inet_pton', AF_INET6, '1::2::3'],
  ['inet_pton', AF_INET6, 'fe80::1%lo'],
  ['inet_pton', AF_INET6, 'x'],
  ['inet_pton', 999, '1.2.3.4'],
  ['inet_pton', AF_UNIX, '1.2.3.4'],
  ['inet_ntop', AF_INET, '01020304'],
  ['inet_ntop', AF_INET, '0102'],
  ['inet_ntop', AF_INET6, '00'.repeat(16)],
  ['inet_ntop', AF_INET6, '00000000000000000000ffff01020304'],
  ['inet_ntop', AF_INET6, '20010db8000000000000000000000001'],
  ['inet_ntop', AF_INET6, '01020304'],
  ['inet_ntop', 999, '01020304'],
];

describe.skipIf(!HAVE_PYTHON)('name functions match python3.11 on this machine (python3.11 gives the reference answers)', () => {
  const reference = HAVE_PYTHON ? python(cases) : [];
  it.each(cases.map((c, i) => [JSON.stringify(c), i] as const))('%s', (_label, i) => {
    const want = normalise(reference[i]!);
    const got = ours(cases[i]!);
    if ('err' in want && want.errno === null && 'err' in got && got.err === 'OSError') {
      // Python's OSError without an errno (e.g. 'illegal IP address string passed to inet_pton') is EINVAL here.
      expect(got).toEqual({ err: 'OSError', errno: E.EINVAL });
    } else if ('err' in want && want.errno === null) {
      expect(got).toMatchObject({ err: want.err });
    } else {
      expect(got).toEqual(want);
    }
  });

  it('a reverse lookup that finds no name is HError, as Python\'s herror (both through the same resolver)', () => {
    // 127.0.0.2 is on loopback and not in /etc/hosts; the lookup may ask the system's resolver.
    const [want] = python([['gethostbyaddr', '127.0.0.2']]);
    const got = ours(['gethostbyaddr', '127.0.0.2']);
    expect(got).toEqual(want);
    expect(got).toMatchObject({ err: 'herror' });
  });
});

describe('name functions: errors and shapes', () => {
  it('HError has Python\'s herror fields: errno h_errno, code, "[Errno 1] Unknown host"', () => {
    const e = new HError(1, 'Unknown host');
    expect([e.name, e.code, e.errno, e.syscall, e.message]).toEqual(['HError', 'HOST_NOT_FOUND', 1, 'gethostbyaddr', '[Errno 1] Unknown host']);
    expect(new HError(2, 'Host name lookup failure').code).toBe('TRY_AGAIN');
    expect(new HError(-1, 'Resolver internal error').code).toBe('NETDB_INTERNAL');
  });

  it('getnameinfo failures are GaiErrors naming getnameinfo; gethostbyname of an IPv6 literal is EAI_ADDRFAMILY', () => {
    let e: unknown;
    try {
      getnameinfo(['localhost', 80], 0);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(GaiError);
    expect((e as GaiError).syscall).toBe('getnameinfo');
    expect((e as GaiError).code).toBe('EAI_NONAME');
    try {
      gethostbyname('::1');
    } catch (err) {
      e = err;
    }
    expect((e as GaiError).errno).toBe(EAI_ADDRFAMILY);
    expect((e as GaiError).code).toBe('EAI_ADDRFAMILY');
  });

  it('inetPton / inetNtop round-trip every address they print, and refuse wrong types', () => {
    for (const [fam, text] of [[AF_INET, '192.0.2.33'], [AF_INET6, '2001:db8::8:800:200c:417a'], [AF_INET6, '::ffff:10.0.0.1']] as const) {
      const b = inetPton(fam, text);
      expect(b.length).toBe(fam === AF_INET ? 4 : 16);
      expect(inetNtop(fam, b)).toBe(text);
    }
    expect(() => inetPton(AF_INET, Buffer.from('1.2.3.4') as unknown as string)).toThrow(TypeError);
    expect(() => inetNtop(AF_INET, '1234' as unknown as Uint8Array)).toThrow(TypeError);
    expect(inetNtop(AF_INET, new Uint8Array([10, 0, 0, 1]))).toBe('10.0.0.1');
  });

  it('gethostbyname and getfqdn agree with gethostname for this host; getfqdn falls back to its argument', () => {
    const me = gethostname();
    expect(me.length).toBeGreaterThan(0);
    expect(gethostbyname(me)).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(getfqdn()).toBe(getfqdn(me));
    // A malformed name is a RangeError (Python: UnicodeError), not swallowed by getfqdn.
    expect(() => getfqdn('a..b')).toThrow(RangeError);
  });

  it('the functions and the NI_* constants are exported from the package', () => {
    for (const name of ['gethostname', 'getfqdn', 'gethostbyname', 'gethostbyaddr', 'getnameinfo', 'inetPton', 'inetNtop', 'HError'])
      expect(typeof (index as Record<string, unknown>)[name], name).toBe('function');
    expect((index as Record<string, unknown>).NI_NUMERICHOST).toBe(NI_NUMERICHOST);
  });
});
