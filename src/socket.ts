/**
 * Python's `socket` module over raw descriptors.
 *
 * A `Socket` is blocking, nonblocking or has a timeout, as in Python:
 * - `settimeout(null)` (the default): calls block the JS thread until done;
 * - `settimeout(0)` / `setblocking(false)`: calls never wait and throw
 *   `OSError(EAGAIN)` where Python raises BlockingIOError;
 * - `settimeout(s)`: the descriptor is nonblocking and each call waits up to
 *   `s` seconds, then throws `SocketTimeout`.
 *
 * Addresses: `[host, port]` (AF_INET), `[host, port, flowinfo?, scopeId?]`
 * (AF_INET6), a path string (AF_UNIX; a leading '\0' is the abstract namespace).
 * Host names resolve with getaddrinfo as Python's do ('' is the wildcard).
 * Data: any Uint8Array; a string is sent as UTF-8.
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { native, type NativeAddress } from './native.js';
import * as C from './constants.js';
import { OSError, GaiError, HError, SocketTimeout, check, closedError, errno as E } from './errors.js';

export * from './constants.js';

/** An address in Python's shape (see the module's notes). */
export type Address = [string, number] | [string, number, number, number] | [string, number, number?, number?] | string;

/** Bytes accepted by every sending call: a string is UTF-8. */
export type BytesLike = Uint8Array | string;

const disposeSymbol: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');

/** Converts data to bytes (a string is UTF-8); throws TypeError for anything else. */
export function toBytes(data: BytesLike | ArrayBufferView, what = 'data'): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`${what} must be a Buffer, Uint8Array or string, not ${typeName(data)}`);
}

/** A short name for a value's type, for error messages. */
function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
}

let defaultTimeout: number | null = null;

/** Python's `socket.getdefaulttimeout()`: seconds or null (blocking). */
export function getdefaulttimeout(): number | null {
  return defaultTimeout;
}

/** Python's `socket.setdefaulttimeout(s)`: seconds or null; applies to sockets created afterwards. */
export function setdefaulttimeout(timeout: number | null): void {
  defaultTimeout = checkTimeout(timeout);
}

function checkTimeout(timeout: unknown): number | null {
  if (timeout === null || timeout === undefined) return null;
  if (typeof timeout !== 'number' || Number.isNaN(timeout)) throw new TypeError('timeout must be a number of seconds or null');
  if (timeout < 0) throw new RangeError('Timeout value out of range');
  return timeout;
}

/**
 * Python's `socket.getaddrinfo`: `[family, type, proto, canonname, address][]`.
 * Blocks while the resolver works, as Python's does. Throws `GaiError`.
 */
export function getaddrinfo(
  host: string | null,
  port: number | string | null,
  family = 0,
  type = 0,
  proto = 0,
  flags = 0,
): Array<[number, number, number, string, Address]> {
  if (host !== null && typeof host !== 'string') throw new TypeError('host must be a string or null');
  const p = port === null || port === undefined ? null : String(port);
  const r = native.getaddrinfo(host, p, family, type, proto, flags);
  if (!Array.isArray(r)) throw gaiFailure(r, 'getaddrinfo', host ?? undefined);
  return r as Array<[number, number, number, string, Address]>;
}

/**
 * The address family of the open socket `fd`: SO_DOMAIN, or where the
 * platform lacks it (macOS, the portable build) the family of getsockname's
 * address, as CPython does there; `fallback` for a family the addon does not
 * format. A negative errno when `fd` is not an open socket (EBADF, ENOTSOCK).
 */
function socketFamily(fd: number, fallback: number): number {
  if (C.SO_DOMAIN !== 0) return native.getsockopt(fd, C.SOL_SOCKET, C.SO_DOMAIN) as number;
  const a = native.getsockname(fd);
  if (typeof a === 'number') return a;
  if (typeof a === 'string') return C.AF_UNIX;
  if (Array.isArray(a)) return a.length === 2 ? C.AF_INET : C.AF_INET6;
  return fallback;
}

/** The error for a failed getaddrinfo / getnameinfo: OSError for EAI_SYSTEM, else GaiError. */
function gaiFailure(r: { eai: number; errno: number; message: string }, syscall: string, host?: string): Error {
  if (r.eai === C.EAI_SYSTEM && r.errno) return new OSError(r.errno, syscall);
  return new GaiError(r.eai, r.message, host, syscall);
}

// ------------------------------------------------------------ host names
//
// Python's name functions, with its semantics: the same special names ('' is
// the wildcard, '<broadcast>'), numeric addresses taken as they are, names
// IDNA-encoded, then the blocking libc resolver (getaddrinfo(3),
// gethostbyaddr_r(3), getnameinfo(3)), which reads /etc/hosts and DNS as
// nsswitch.conf says. Where Python raises an OSError without an errno, the
// OSError here has errno EINVAL and Python's message.

/**
 * Python's `socket.gethostname()`: this machine's host name, from
 * gethostname(2). Throws OSError.
 */
export function gethostname(): string {
  return check(native.gethostname(), 'gethostname');
}

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * A host name as Python's 'idna' codec encodes it for the resolver: ASCII
 * labels as they are, others punycoded (node:url's UTS #46 domainToASCII;
 * Python uses IDNA 2003, which differs only for rare characters such as ß).
 * Every label but the last must be 1-63 characters, the last at most 63
 * (a trailing dot is allowed): RangeError otherwise (Python: UnicodeError).
 */
function idnaName(name: string): string {
  let ascii = name;
  if (NON_ASCII.test(name)) {
    ascii = name
      .split('.')
      .map((label) => {
        if (!NON_ASCII.test(label)) return label;
        const a = domainToASCII(label);
        if (a === '') throw new RangeError(`encoding with 'idna' codec failed: ${JSON.stringify(label)}`);
        return a;
      })
      .join('.');
  }
  if (ascii === '') return ascii;
  const labels = ascii.split('.');
  for (let i = 0; i < labels.length; i++) {
    const n = labels[i]!.length;
    if (n > 63 || (n === 0 && i < labels.length - 1))
      throw new RangeError("encoding with 'idna' codec failed (UnicodeError: label empty or too long)");
  }
  return ascii;
}

function hostString(name: unknown, what: string): string {
  if (typeof name !== 'string') throw new TypeError(`${what} must be a string, not ${typeName(name)}`);
  return idnaName(name);
}

/**
 * Python's `setipaddr`: the address `name` stands for, as [family, packed
 * bytes]. '' is the wildcard (for AF_UNSPEC it must resolve to one address);
 * '<broadcast>' and '255.255.255.255' are INADDR_BROADCAST; a numeric
 * address is taken as it is; anything else is the first getaddrinfo answer.
 */
function hostAddress(name: string, family: number, syscall: string): [number, Buffer] {
  if (name === '') {
    const r = native.getaddrinfo(null, '0', family, C.SOCK_DGRAM, 0, C.AI_PASSIVE);
    if (!Array.isArray(r)) throw gaiFailure(r, syscall);
    if (r.length > 1) throw new OSError(E.EINVAL!, syscall, 'wildcard resolved to multiple address');
    if (r.length === 0) throw new OSError(E.EAFNOSUPPORT!, syscall, 'unsupported address family');
    return [r[0]![0], packed(r[0]![0], (r[0]![4] as [string, number])[0])];
  }
  if (name === '255.255.255.255' || name === '<broadcast>') return [C.AF_INET, Buffer.from([255, 255, 255, 255])];
  if (family === C.AF_UNSPEC || family === C.AF_INET) {
    const v4 = native.inetPton(C.AF_INET, name);
    if (typeof v4 !== 'number') return [C.AF_INET, v4];
  }
  // An IPv6 address with a scope ("fe80::1%lo") goes to getaddrinfo, which knows interface names.
  if ((family === C.AF_UNSPEC || family === C.AF_INET6) && !name.includes('%')) {
    const v6 = native.inetPton(C.AF_INET6, name);
    if (typeof v6 !== 'number') return [C.AF_INET6, v6];
  }
  const r = native.getaddrinfo(name, null, family, 0, 0, 0);
  if (!Array.isArray(r)) throw gaiFailure(r, syscall);
  if (r.length === 0) throw new OSError(E.EAFNOSUPPORT!, syscall, 'unknown address family');
  const [fam, , , , addr] = r[0]!;
  return [fam, packed(fam, (addr as [string, number])[0])];
}

function packed(family: number, text: string): Buffer {
  return native.inetPton(family, text) as Buffer;
}

/**
 * Python's `socket.gethostbyname(hostname)`: the IPv4 address of `hostname`
 * as text. Numeric addresses come back as they are ('127.1' as getaddrinfo
 * reads it), '' is '0.0.0.0', '<broadcast>' '255.255.255.255'. Blocks while
 * the resolver works. Throws GaiError (no such name: EAI_NONAME; an IPv6
 * literal: EAI_ADDRFAMILY), RangeError for a malformed name, TypeError.
 */
export function gethostbyname(hostname: string): string {
  const [, addr] = hostAddress(hostString(hostname, 'hostname'), C.AF_INET, 'gethostbyname');
  return native.inetNtop(C.AF_INET, addr) as string;
}

/**
 * Python's `socket.gethostbyaddr(ipAddress)`: `[hostname, aliases,
 * addresses]` for an address (a name is resolved first, as Python does),
 * from gethostbyaddr_r(3) (/etc/hosts, then DNS). Blocks while the resolver
 * works. Throws HError when no name is found (errno 1, 'Unknown host'),
 * GaiError when a name does not resolve, OSError for '' (the wildcard has
 * several addresses), RangeError for a malformed name, TypeError.
 */
export function gethostbyaddr(ipAddress: string): [string, string[], string[]] {
  const [family, addr] = hostAddress(hostString(ipAddress, 'ipAddress'), C.AF_UNSPEC, 'gethostbyaddr');
  const r = native.gethostbyaddr(family, addr);
  if (!Array.isArray(r)) throw new HError(r.herrno, r.message);
  const [name, aliases, addrtype, addresses] = r;
  if (addrtype !== family) throw new OSError(E.EAFNOSUPPORT!, 'gethostbyaddr');
  return [name, aliases, addresses];
}

/**
 * Python's `socket.getfqdn(name = '')`: a fully qualified name for `name`
 * (default, '0.0.0.0' and '::': this host). The first of gethostbyaddr's
 * name and aliases that contains a dot, else its name; `name` itself
 * (trimmed) when the lookup fails. Blocks while the resolver works.
 * RangeError for a malformed name.
 */
export function getfqdn(name = ''): string {
  if (typeof name !== 'string') throw new TypeError(`name must be a string, not ${typeName(name)}`);
  let n = name.trim();
  if (n === '' || n === '0.0.0.0' || n === '::') n = gethostname();
  let found: [string, string[], string[]];
  try {
    found = gethostbyaddr(n);
  } catch (err) {
    if (err instanceof OSError || err instanceof GaiError || err instanceof HError) return n;
    throw err;
  }
  const [hostname, aliases] = found;
  return [hostname, ...aliases].find((a) => a.includes('.')) ?? hostname;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const INT32_MIN = -0x80000000, INT32_MAX = 0x7fffffff;

/**
 * Python's `socket.getnameinfo(sockaddr, flags)`: `[host, service]` for
 * `[host, port]` or `[host, port, flowinfo, scopeId]`, where host is a
 * numeric address (no name is resolved on the way in). `flags`: NI_*
 * (NI_NUMERICHOST, NI_NUMERICSERV, NI_NAMEREQD, NI_NOFQDN, NI_DGRAM). The
 * port goes to the resolver as text, as in Python (70000 is port 4464).
 * Blocks while the resolver works. Throws GaiError (a host that is not
 * numeric, NI_NAMEREQD without a name: EAI_NONAME), OSError for an IPv4
 * address with four fields, TypeError for a malformed sockaddr, RangeError
 * for a flowinfo outside 0-1048575 or numbers outside 32 bits (Python:
 * OverflowError). The scope id is taken modulo 2^32, as Python's.
 */
export function getnameinfo(
  sockaddr: [string, number] | [string, number, number, number] | [string, number, number?, number?],
  flags: number,
): [string, string] {
  if (!Array.isArray(sockaddr)) throw new TypeError('getnameinfo() argument 1 must be an array [host, port, flowinfo?, scopeId?]');
  const [host, port, flowinfo = 0, scopeId = 0] = sockaddr as unknown[];
  if (sockaddr.length < 2 || sockaddr.length > 4 || typeof host !== 'string' || !isInt(port) || !isInt(flowinfo) || !isInt(scopeId))
    throw new TypeError('getnameinfo(): illegal sockaddr argument');
  if (!isInt(flags)) throw new TypeError('flags must be an integer');
  if (flags < INT32_MIN || flags > INT32_MAX || port < INT32_MIN || port > INT32_MAX) throw new RangeError('signed integer is greater than maximum');
  const flow = Number(BigInt.asUintN(32, BigInt(flowinfo)));
  if (flow > 0xfffff) throw new RangeError('getnameinfo(): flowinfo must be 0-1048575.');
  const scope = Number(BigInt.asUintN(32, BigInt(scopeId)));
  const r = native.getaddrinfo(host, String(port), C.AF_UNSPEC, C.SOCK_DGRAM, 0, C.AI_NUMERICHOST);
  if (!Array.isArray(r)) throw gaiFailure(r, 'getnameinfo');
  if (r.length !== 1) throw new OSError(E.EINVAL!, 'getnameinfo', 'sockaddr resolved to multiple addresses');
  const [family, , , , addr] = r[0]!;
  const [h, p] = addr as [string, number];
  if (family === C.AF_INET && sockaddr.length !== 2) throw new OSError(E.EINVAL!, 'getnameinfo', 'IPv4 sockaddr must be 2 tuple');
  const out = native.getnameinfo(family, family === C.AF_INET6 ? [h, p, flow, scope] : [h, p], flags);
  if (!Array.isArray(out)) throw gaiFailure(out, 'getnameinfo');
  return out;
}

/**
 * Python's `socket.inet_pton(family, ipString)`: the packed address (4 bytes
 * for AF_INET, 16 for AF_INET6). Throws OSError EINVAL ('illegal IP address
 * string passed to inet_pton'; Python's OSError has no errno) for text that
 * is not an address of that family, OSError EAFNOSUPPORT for another family,
 * TypeError for a non-string.
 */
export function inetPton(family: number, ipString: string): Buffer {
  if (!isInt(family)) throw new TypeError('family must be an integer');
  if (typeof ipString !== 'string') throw new TypeError(`inet_pton() argument 2 must be a string, not ${typeName(ipString)}`);
  const r = native.inetPton(family, ipString);
  if (r === 0) throw new OSError(E.EINVAL!, 'inet_pton', 'illegal IP address string passed to inet_pton');
  return check(r, 'inet_pton');
}

/**
 * Python's `socket.inet_ntop(family, packedIp)`: the text form of a packed
 * address (4 bytes for AF_INET, 16 for AF_INET6). RangeError for another
 * length ('invalid length of packed IP address string') or another family
 * ('unknown address family'; Python: ValueError), TypeError for a
 * non-bytes argument.
 */
export function inetNtop(family: number, packedIp: Uint8Array): string {
  if (!isInt(family)) throw new TypeError('family must be an integer');
  if (!ArrayBuffer.isView(packedIp)) throw new TypeError(`a bytes-like object is required, not ${typeName(packedIp)}`);
  const b = toBytes(packedIp);
  if (family !== C.AF_INET && family !== C.AF_INET6) throw new RangeError(`unknown address family ${family}`);
  if (b.byteLength !== (family === C.AF_INET ? 4 : 16)) throw new RangeError('invalid length of packed IP address string');
  return check(native.inetNtop(family, b), 'inet_ntop');
}

function checkPort(port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port)) throw new TypeError('port must be an integer');
  if (port < 0 || port > 65535) throw new RangeError('port must be 0-65535');
  return port;
}

/**
 * Turns a user address into the addon's form for `family`, resolving host
 * names as Python does ('' is the wildcard, 'localhost' resolves).
 */
export function resolveAddress(family: number, address: unknown): NativeAddress | Uint8Array {
  if (family === C.AF_UNIX) {
    if (typeof address === 'string' || address instanceof Uint8Array) return address;
    throw new TypeError(`AF_UNIX address must be a string or Buffer path, not ${typeName(address)}`);
  }
  if (family !== C.AF_INET && family !== C.AF_INET6) throw new RangeError(`unsupported address family ${family}`);
  const want = family === C.AF_INET ? 'AF_INET address must be [host, port]' : 'AF_INET6 address must be [host, port, flowinfo?, scopeId?]';
  if (!Array.isArray(address) || address.length < 2 || address.length > (family === C.AF_INET ? 2 : 4)) throw new TypeError(want);
  const [host, port, flowinfo = 0, scopeId = 0] = address as [unknown, unknown, unknown, unknown];
  if (typeof host !== 'string') throw new TypeError(`${want}: host must be a string`);
  checkPort(port);
  if (family === C.AF_INET6) {
    if (typeof flowinfo !== 'number' || !Number.isInteger(flowinfo) || flowinfo < 0 || flowinfo > 0xfffff)
      throw new RangeError('flowinfo must be 0-1048575');
    if (typeof scopeId !== 'number' || !Number.isInteger(scopeId) || scopeId < 0 || scopeId > 0xffffffff)
      throw new RangeError('scopeId must be 0-4294967295');
  }
  let numeric = host;
  const bare = host.split('%')[0]!;
  const kind = isIP(bare);
  if (host === '' || (host === '<broadcast>' && family === C.AF_INET)) {
    numeric = host;
  } else if (!(kind === 4 && family === C.AF_INET) && !(kind === 6 && family === C.AF_INET6)) {
    const found = getaddrinfo(host, null, family, C.SOCK_STREAM);
    if (found.length === 0) throw new GaiError(-2, 'Name or service not known', host);
    numeric = (found[0]![4] as [string, number])[0];
  }
  return family === C.AF_INET ? [numeric, port as number] : [numeric, port as number, flowinfo as number, scopeId as number];
}

// One pollfd for the timeout waits of all sockets of this thread.
const waitSet = new Int32Array(2);

/** Waits until `fd` is ready for `events` (POLLIN/POLLOUT) or the deadline (ms, performance.now()) passes. */
function waitReady(fd: number, events: number, deadline: number | null, syscall: string): void {
  waitSet[0] = fd;
  waitSet[1] = events;
  const timeout = deadline === null ? -1 : Math.max(0, deadline - performance.now());
  const r = native.poll(waitSet, 1, timeout);
  if (r < 0) throw new OSError(-r, syscall);
  if (r === 0) throw new SocketTimeout(syscall);
}

// Receive scratch: small reads land here and are copied into a right-sized
// Buffer (from Node's pool), so a 64-byte read does not allocate 8 KiB.
const scratch = Buffer.allocUnsafeSlow(65536);

/** Python's socket object. */
export class Socket {
  private fd: number;
  /**
   * The address family (AF_INET, AF_INET6, AF_UNIX, …): as given, or, for a
   * wrapped `fileno` with no family argument, the kernel's (SO_DOMAIN).
   */
  readonly family: number;
  /**
   * The socket type (SOCK_STREAM, SOCK_DGRAM, …) without the SOCK_NONBLOCK
   * / SOCK_CLOEXEC flags (as Python's since 3.7); for a wrapped `fileno`
   * with no type argument, the kernel's (SO_TYPE).
   */
  readonly type: number;
  /** The protocol number (0: the family's default): as given, or, for a wrapped `fileno` with no proto argument, the kernel's (SO_PROTOCOL). */
  readonly proto: number;
  private timeout: number | null;

  /**
   * Creates a socket (`socket(2)`, close-on-exec), or wraps `fileno` without
   * duplicating it (family/type/proto then default to the kernel's).
   * Throws OSError (EAFNOSUPPORT, EMFILE, …), TypeError on a wrong argument.
   */
  constructor(family: number = C.AF_INET, type: number = C.SOCK_STREAM, proto = 0, fileno?: number) {
    for (const [name, v] of [['family', family], ['type', type], ['proto', proto]] as const) {
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${name} must be an integer`);
    }
    const baseType = type & ~(C.SOCK_NONBLOCK | C.SOCK_CLOEXEC);
    if (fileno !== undefined) {
      if (typeof fileno !== 'number' || !Number.isInteger(fileno) || fileno < 0) throw new TypeError('fileno must be a non-negative integer');
      const dom = socketFamily(fileno, family);
      check(dom, C.SO_DOMAIN !== 0 ? 'getsockopt' : 'getsockname');
      this.fd = fileno;
      this.family = family === C.AF_INET && arguments[0] === undefined ? dom : family;
      const ty = native.getsockopt(fileno, C.SOL_SOCKET, C.SO_TYPE) as number;
      this.type = arguments[1] === undefined && ty >= 0 ? ty : baseType;
      // Without SO_PROTOCOL (macOS) the protocol is the argument, as in CPython there.
      const pr = C.SO_PROTOCOL !== 0 ? (native.getsockopt(fileno, C.SOL_SOCKET, C.SO_PROTOCOL) as number) : -1;
      this.proto = arguments[2] === undefined && pr >= 0 ? pr : proto;
      const nb = native.getFlag(fileno, 0);
      this.timeout = nb === 1 ? 0 : defaultTimeout;
      if (this.timeout !== null && this.timeout > 0) native.setFlag(fileno, 0, true);
      return;
    }
    this.fd = check(native.socket(family, type, proto), 'socket');
    this.family = family;
    this.type = baseType;
    this.proto = proto;
    this.timeout = type & C.SOCK_NONBLOCK ? 0 : defaultTimeout;
    if (this.timeout !== null) native.setFlag(this.fd, 0, true);
  }

  /** Python's `socket.fromfd`: duplicates `fd` (close-on-exec) and wraps the copy. */
  static fromFd(fd: number, family?: number, type?: number, proto?: number): Socket {
    const copy = check(native.dup(fd), 'dup');
    try {
      // Left-out arguments stay undefined so the constructor reads them from the kernel.
      return new Socket(family, type, proto, copy);
    } catch (e) {
      native.close(copy);
      throw e;
    }
  }

  /** The descriptor, or -1 once closed or detached. */
  fileno(): number {
    return this.fd;
  }

  /** True once `close()` or `detach()` ran. */
  get closed(): boolean {
    return this.fd < 0;
  }

  private live(syscall: string): number {
    if (this.fd < 0) throw closedError('socket', syscall);
    return this.fd;
  }

  private deadline(): number | null {
    return this.timeout !== null && this.timeout > 0 ? performance.now() + this.timeout * 1000 : null;
  }

  /** `setblocking(false)` is `settimeout(0)`; `setblocking(true)` is `settimeout(null)`. */
  setblocking(flag: boolean): void {
    this.settimeout(flag ? null : 0);
  }

  /** False only when the timeout is 0 (nonblocking). */
  getblocking(): boolean {
    this.live('getblocking');
    return this.timeout !== 0;
  }

  /** Seconds (a float), 0 for nonblocking, null for blocking. RangeError for a negative value. */
  settimeout(timeout: number | null): void {
    const fd = this.live('settimeout');
    const t = checkTimeout(timeout);
    check(native.setFlag(fd, 0, t !== null), 'fcntl');
    this.timeout = t;
  }

  /** Seconds, 0 or null (see settimeout). */
  gettimeout(): number | null {
    return this.timeout;
  }

  /** Binds to `address`. OSError EADDRINUSE, EACCES, …; GaiError for an unknown host. */
  bind(address: Address): void {
    const fd = this.live('bind');
    const a = resolveAddress(this.family, address);
    check(native.bind(fd, this.family, a), 'bind', typeof address === 'string' ? address : undefined);
  }

  /** Listens with `backlog` (default min(SOMAXCONN, 128), as Python). */
  listen(backlog?: number): void {
    const fd = this.live('listen');
    let b = backlog ?? Math.min(C.SOMAXCONN, 128);
    if (typeof b !== 'number' || !Number.isInteger(b)) throw new TypeError('backlog must be an integer');
    if (b < 0) b = 0;
    check(native.listen(fd, Math.min(b, 0x7fffffff)), 'listen');
  }

  /**
   * Accepts a connection: `[socket, address]`. The new socket is blocking
   * (or has the default timeout). A nonblocking listener with nothing
   * pending throws OSError EAGAIN; a timeout throws SocketTimeout.
   */
  accept(): [Socket, Address] {
    const fd = this.live('accept');
    const deadline = this.deadline();
    for (;;) {
      const r = native.accept4(fd, 0);
      if (typeof r !== 'number') {
        const s = new Socket(this.family, this.type, this.proto, r[0]);
        return [s, r[1] ?? ''];
      }
      if ((-r !== E.EAGAIN && -r !== E.EWOULDBLOCK) || this.timeout === 0) throw new OSError(-r, 'accept');
      waitReady(fd, C.POLLIN, deadline, 'accept');
    }
  }

  /** The errno of a connect attempt (0 on success), as Python's `connect_ex`; a timeout gives EAGAIN. */
  connectEx(address: Address): number {
    const fd = this.live('connect');
    const a = resolveAddress(this.family, address);
    const r = native.connect(fd, this.family, a);
    if (r === 0) return 0;
    const err = -r;
    if (this.timeout === 0) return err;
    if (err !== E.EINPROGRESS && err !== E.EINTR) return err;
    // Blocking or timeout mode: the connection goes on; wait for it and read its outcome.
    try {
      waitReady(fd, C.POLLOUT, this.deadline(), 'connect');
    } catch (e) {
      if (e instanceof SocketTimeout) return E.EAGAIN;
      throw e;
    }
    return check(native.getsockopt(fd, C.SOL_SOCKET, C.SO_ERROR) as number, 'getsockopt');
  }

  /**
   * Connects to `address`. OSError ECONNREFUSED, …; on a nonblocking socket
   * OSError EINPROGRESS (wait for writability, then read SO_ERROR);
   * SocketTimeout when a timeout runs out.
   */
  connect(address: Address): void {
    const err = this.connectEx(address);
    if (err === E.EAGAIN && this.timeout !== null && this.timeout > 0) throw new SocketTimeout('connect');
    if (err !== 0) throw new OSError(err, 'connect');
  }

  /** Sends bytes (MSG_NOSIGNAL); returns how many were sent. `flags`: MSG_OOB, MSG_DONTWAIT, … */
  send(data: BytesLike, flags = 0): number {
    const fd = this.live('send');
    const b = toBytes(data);
    const deadline = this.deadline();
    for (;;) {
      const r = native.send(fd, b, 0, b.byteLength, flags);
      if (r >= 0) return r;
      if ((-r !== E.EAGAIN && -r !== E.EWOULDBLOCK) || this.timeout === 0 || this.timeout === null) throw new OSError(-r, 'send');
      waitReady(fd, C.POLLOUT, deadline, 'send');
    }
  }

  /** Sends all of `data`, waiting for room as the socket's mode allows. */
  sendall(data: BytesLike, flags = 0): void {
    const fd = this.live('sendall');
    const b = toBytes(data);
    const deadline = this.deadline();
    let off = 0;
    while (off < b.byteLength) {
      const r = native.send(fd, b, off, b.byteLength - off, flags);
      if (r >= 0) {
        off += r;
        continue;
      }
      if ((-r !== E.EAGAIN && -r !== E.EWOULDBLOCK) || this.timeout === 0) throw new OSError(-r, 'sendall');
      waitReady(fd, C.POLLOUT, deadline, 'sendall');
    }
  }

  /** `sendto(data, address)` or `sendto(data, flags, address)`; returns bytes sent. */
  sendto(data: BytesLike, flagsOrAddress: number | Address, address?: Address): number {
    const fd = this.live('sendto');
    const b = toBytes(data);
    const flags = address === undefined ? 0 : (flagsOrAddress as number);
    const a = resolveAddress(this.family, address === undefined ? flagsOrAddress : address);
    const deadline = this.deadline();
    for (;;) {
      const r = native.sendto(fd, b, 0, b.byteLength, flags, this.family, a);
      if (r >= 0) return r;
      if ((-r !== E.EAGAIN && -r !== E.EWOULDBLOCK) || !this.timeout) throw new OSError(-r, 'sendto');
      waitReady(fd, C.POLLOUT, deadline, 'sendto');
    }
  }

  /** Receives up to `bufsize` bytes; an empty Buffer means the peer closed. `flags`: MSG_PEEK, MSG_OOB, … */
  recv(bufsize: number, flags = 0): Buffer {
    if (typeof bufsize !== 'number' || !Number.isInteger(bufsize)) throw new TypeError('bufsize must be an integer');
    if (bufsize < 0) throw new RangeError('negative buffersize in recv');
    const target = bufsize <= scratch.length ? scratch : Buffer.allocUnsafe(bufsize);
    const n = this.recvInto(target, bufsize, flags);
    if (target !== scratch) return target.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    scratch.copy(out, 0, 0, n);
    return out;
  }

  /** Receives into `buffer` (up to `nbytes`, default its length); returns the count. */
  recvInto(buffer: Uint8Array, nbytes = 0, flags = 0): number {
    const fd = this.live('recv');
    if (!(buffer instanceof Uint8Array)) throw new TypeError('buffer must be a Buffer or Uint8Array');
    if (typeof nbytes !== 'number' || !Number.isInteger(nbytes) || nbytes < 0) throw new RangeError('negative buffersize in recv_into');
    const n = nbytes === 0 ? buffer.byteLength : nbytes;
    if (n > buffer.byteLength) throw new RangeError('buffer too small for requested bytes');
    const deadline = this.deadline();
    for (;;) {
      const r = native.recv(fd, buffer, 0, n, flags);
      if (r >= 0) return r;
      if ((-r !== E.EAGAIN && -r !== E.EWOULDBLOCK) || !this.timeout) throw new OSError(-r, 'recv');
      waitReady(fd, C.POLLIN, deadline, 'recv');
    }
  }

  /** `[data, address]`; the address is null for a connected peer that has none. */
  recvfrom(bufsize: number, flags = 0): [Buffer, Address | null] {
    const fd = this.live('recvfrom');
    if (typeof bufsize !== 'number' || !Number.isInteger(bufsize)) throw new TypeError('bufsize must be an integer');
    if (bufsize < 0) throw new RangeError('negative buffersize in recvfrom');
    const buf = Buffer.allocUnsafe(bufsize);
    const deadline = this.deadline();
    for (;;) {
      const r = native.recvfrom(fd, buf, 0, bufsize, flags);
      if (typeof r !== 'number') return [buf.subarray(0, r[0]), r[1] as Address | null];
      if ((-r !== E.EAGAIN && -r !== E.EWOULDBLOCK) || !this.timeout) throw new OSError(-r, 'recvfrom');
      waitReady(fd, C.POLLIN, deadline, 'recvfrom');
    }
  }

  /** shutdown(2): SHUT_RD, SHUT_WR or SHUT_RDWR. */
  shutdown(how: number): void {
    const fd = this.live('shutdown');
    check(native.shutdown(fd, how), 'shutdown');
  }

  /** Closes the descriptor; a second close does nothing. ECONNRESET from close is ignored, as Python. */
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    const r = native.close(fd);
    if (r < 0 && -r !== E.ECONNRESET) throw new OSError(-r, 'close');
  }

  /** Gives up the descriptor without closing it; returns it. */
  detach(): number {
    const fd = this.fd;
    this.fd = -1;
    return fd;
  }

  /** An int option, a boolean, or a Buffer for struct options (SO_LINGER). */
  setsockopt(level: number, option: number, value: number | boolean | Uint8Array): void {
    const fd = this.live('setsockopt');
    check(native.setsockopt(fd, level, option, value), 'setsockopt');
  }

  /** An int option, or a Buffer of up to `buflen` bytes when `buflen` is given. */
  getsockopt(level: number, option: number): number;
  getsockopt(level: number, option: number, buflen: number): Buffer;
  getsockopt(level: number, option: number, buflen?: number): number | Buffer {
    const fd = this.live('getsockopt');
    return check(native.getsockopt(fd, level, option, buflen), 'getsockopt');
  }

  /**
   * The socket's own address: `[host, port]` (AF_INET; port 0 before bind),
   * `[host, port, flowinfo, scopeId]` (AF_INET6), or a path (AF_UNIX; ''
   * when unbound, a leading '\0' for the abstract namespace). OSError EBADF
   * once closed.
   */
  getsockname(): Address {
    const fd = this.live('getsockname');
    return check(native.getsockname(fd), 'getsockname') as Address;
  }

  /** The peer's address; OSError ENOTCONN when there is none. An unnamed Unix peer is ''. */
  getpeername(): Address {
    const fd = this.live('getpeername');
    return check(native.getpeername(fd), 'getpeername') as Address;
  }

  /** Whether the descriptor survives exec (it does not, by default). */
  getInheritable(): boolean {
    return check(native.getFlag(this.live('getInheritable'), 1), 'fcntl') === 0;
  }

  /**
   * Whether the descriptor survives exec: true clears FD_CLOEXEC, false sets
   * it (sockets start non-inheritable). OSError EBADF once closed.
   */
  setInheritable(inheritable: boolean): void {
    check(native.setFlag(this.live('setInheritable'), 1, !inheritable), 'fcntl');
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `<Socket fd=${this.fd} family=${this.family} type=${this.type} proto=${this.proto}>`;
  }
}

(Socket.prototype as unknown as Record<symbol, unknown>)[disposeSymbol] = function (this: Socket) {
  this.close();
};

export interface Socket {
  /** `close()`, for `using` declarations (`Symbol.dispose`, or `Symbol.for('nodejs.dispose')` where the runtime lacks it). */
  [Symbol.dispose](): void;
}

/** A connected pair (AF_UNIX, SOCK_STREAM by default), both blocking. */
export function socketpair(family: number = C.AF_UNIX, type: number = C.SOCK_STREAM, proto = 0): [Socket, Socket] {
  const r = check(native.socketpair(family, type, proto), 'socketpair');
  return [new Socket(family, type, proto, r[0]), new Socket(family, type, proto, r[1])];
}

/**
 * Python's `socket.create_connection`: tries each address of `host` in turn;
 * `timeout` in seconds (undefined: the default timeout). Throws the last error.
 */
export function createConnection(address: [string, number], timeout?: number | null, sourceAddress?: [string, number]): Socket {
  const [host, port] = address;
  let last: unknown = new OSError(E.EHOSTUNREACH, 'connect');
  for (const [family, type, proto, , sa] of getaddrinfo(host, port, 0, C.SOCK_STREAM)) {
    let s: Socket | undefined;
    try {
      s = new Socket(family, type, proto);
      if (timeout !== undefined) s.settimeout(timeout);
      if (sourceAddress) s.bind(sourceAddress);
      s.connect(sa);
      return s;
    } catch (e) {
      last = e;
      s?.close();
    }
  }
  throw last;
}

/** A pipe (both ends close-on-exec): `[readFd, writeFd]`. */
export function pipe(): [number, number] {
  return check(native.pipe(), 'pipe');
}

/** Closes a raw descriptor (never retried on EINTR). */
export function closeFd(fd: number): void {
  check(native.close(fd), 'close');
}
