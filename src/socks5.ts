/**
 * SOCKS5 on the wire (RFC 1928, and RFC 1929 username/password): reply codes,
 * address types, incremental parsers for each handshake message, the reply
 * encoder, and the errno → reply-code table. No I/O: the asyncore proxy
 * (`asyncore-native socks5`) and the ThreadingTCPServer example both use it.
 * Published as `asyncore-native/socks5`.
 *
 * @module asyncore-native/socks5
 */
import { isIP } from 'node:net';
import * as C from './constants.js';
import { errno as E } from './errors.js';
import type { Address } from './socket.js';

/** RFC 1928 reply codes. */
export const REP = {
  /** 0x00: the connection is made. */
  SUCCEEDED: 0x00,
  /** 0x01: general SOCKS server failure (also a malformed request). */
  GENERAL_FAILURE: 0x01,
  /** 0x02: connection not allowed by ruleset (connect EACCES / EPERM). */
  NOT_ALLOWED: 0x02,
  /** 0x03: network unreachable (ENETUNREACH, ENETDOWN). */
  NETWORK_UNREACHABLE: 0x03,
  /** 0x04: host unreachable (EHOSTUNREACH, EHOSTDOWN, ETIMEDOUT, a name that does not resolve). */
  HOST_UNREACHABLE: 0x04,
  /** 0x05: connection refused (ECONNREFUSED). */
  CONNECTION_REFUSED: 0x05,
  /** 0x06: TTL expired. */
  TTL_EXPIRED: 0x06,
  /** 0x07: command not supported (anything but CONNECT). */
  COMMAND_NOT_SUPPORTED: 0x07,
  /** 0x08: address type not supported (an unknown ATYP; EAFNOSUPPORT). */
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

/** ATYP: an IPv4 address (4 bytes). */
export const ATYP_IPV4 = 0x01;
/** ATYP: a domain name (a length byte, then the name). */
export const ATYP_DOMAIN = 0x03;
/** ATYP: an IPv6 address (16 bytes). */
export const ATYP_IPV6 = 0x04;
/** CMD: CONNECT, the one command this library serves. */
export const CMD_CONNECT = 0x01;
/** Authentication method: none. */
export const METHOD_NONE = 0x00;
/** Authentication method: username / password (RFC 1929). */
export const METHOD_USERPASS = 0x02;
/** Method-selection reply: no acceptable method. */
export const METHOD_REFUSED = 0xff;

/** The reply code for a failed connect(2) (see the table in the module notes). */
export function replyForErrno(errno: number): number {
  switch (errno) {
    case E.ECONNREFUSED:
      return REP.CONNECTION_REFUSED;
    case E.ENETUNREACH:
    case E.ENETDOWN:
      return REP.NETWORK_UNREACHABLE;
    case E.EHOSTUNREACH:
    case E.EHOSTDOWN:
    case E.ETIMEDOUT:
      return REP.HOST_UNREACHABLE;
    case E.EACCES:
    case E.EPERM:
      return REP.NOT_ALLOWED;
    case E.EAFNOSUPPORT:
      return REP.ADDRESS_TYPE_NOT_SUPPORTED;
    default:
      return REP.GENERAL_FAILURE;
  }
}

/** One step of a parser: more bytes needed, a message and its length, or a failure. */
export type Parsed<T> =
  | {
      /** The buffer is too short: at least this many bytes are needed in all (call again with more). */
      need: number;
    }
  | {
      /** The parsed message. */
      value: T;
      /** How many bytes of the buffer it took (what follows belongs to the next message). */
      used: number;
    }
  | {
      /** Malformed: the reply code to send (what 0 means is said by each parser). */
      fail: number;
    };

/** Version identifier / method selection: `fail` 0 means "not SOCKS5: close without reply". */
export function parseGreeting(b: Buffer): Parsed<Buffer> {
  if (b.length < 1) return { need: 1 };
  if (b[0] !== 0x05) return { fail: 0 };
  if (b.length < 2) return { need: 2 };
  const n = b[1]!;
  if (b.length < 2 + n) return { need: 2 + n };
  return { value: b.subarray(2, 2 + n), used: 2 + n };
}

/** RFC 1929 request; `fail` 1: a malformed one (answered with status 0x01). */
export function parseAuth(b: Buffer): Parsed<{
  /** UNAME, as sent (1–255 bytes). */
  user: Buffer;
  /** PASSWD, as sent (0–255 bytes). */
  pass: Buffer;
}> {
  if (b.length < 1) return { need: 1 };
  if (b[0] !== 0x01) return { fail: 1 };
  if (b.length < 2) return { need: 2 };
  const ulen = b[1]!;
  if (ulen === 0) return { fail: 1 };
  if (b.length < 3 + ulen) return { need: 3 + ulen };
  const plen = b[2 + ulen]!;
  const total = 3 + ulen + plen;
  if (b.length < total) return { need: total };
  return { value: { user: b.subarray(2, 2 + ulen), pass: b.subarray(3 + ulen, total) }, used: total };
}

/** A parsed SOCKS5 request (RFC 1928 section 4). */
export interface Socks5Request {
  /** CMD: always CMD_CONNECT once parsed (other commands fail the parse). */
  cmd: number;
  /** ATYP of the destination: ATYP_IPV4, ATYP_DOMAIN or ATYP_IPV6. */
  atyp: number;
  /** An IPv4 / IPv6 literal or a domain name. */
  host: string;
  /** DST.PORT. */
  port: number;
}

/**
 * A CONNECT request. Fails (with the reply code to send) as early as the
 * bytes allow: a wrong VER at the first byte, a CMD other than CONNECT at the
 * second, an unknown ATYP at the fourth.
 */
export function parseRequest(b: Buffer): Parsed<Socks5Request> {
  if (b.length < 1) return { need: 1 };
  if (b[0] !== 0x05) return { fail: REP.GENERAL_FAILURE };
  if (b.length < 2) return { need: 2 };
  const cmd = b[1]!;
  if (cmd !== CMD_CONNECT) return { fail: REP.COMMAND_NOT_SUPPORTED };
  if (b.length < 4) return { need: 4 };
  const atyp = b[3]!;
  let host: string;
  let at: number;
  if (atyp === ATYP_IPV4) {
    if (b.length < 10) return { need: 10 };
    host = `${b[4]}.${b[5]}.${b[6]}.${b[7]}`;
    at = 8;
  } else if (atyp === ATYP_IPV6) {
    if (b.length < 22) return { need: 22 };
    host = ipv6FromBytes(b.subarray(4, 20));
    at = 20;
  } else if (atyp === ATYP_DOMAIN) {
    if (b.length < 5) return { need: 5 };
    const len = b[4]!;
    if (len === 0) return { fail: REP.GENERAL_FAILURE };
    if (b.length < 7 + len) return { need: 7 + len };
    host = b.subarray(5, 5 + len).toString('utf8');
    at = 5 + len;
  } else {
    return { fail: REP.ADDRESS_TYPE_NOT_SUPPORTED };
  }
  return { value: { cmd, atyp, host, port: b.readUInt16BE(at) }, used: at + 2 };
}

/** 16 bytes → the canonical text form (RFC 5952: lower case, longest zero run as '::'). */
export function ipv6FromBytes(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let bestAt = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

/** An IPv6 literal (with '::', an embedded IPv4 tail, a '%scope' suffix) → 16 bytes. */
export function ipv6ToBytes(text: string): Buffer {
  let s = text.split('%')[0]!;
  let v4: number[] = [];
  const m = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (m) {
    v4 = [(Number(m[2]) << 8) | Number(m[3]), (Number(m[4]) << 8) | Number(m[5])];
    s = m[1]!.endsWith('::') ? m[1]! : m[1]!.slice(0, -1);
  }
  const part = (x: string) => (x === '' ? [] : x.split(':').map((h) => parseInt(h, 16)));
  const dbl = s.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    const l = part(s.slice(0, dbl));
    const r = [...part(s.slice(dbl + 2)), ...v4];
    groups = [...l, ...new Array<number>(Math.max(0, 8 - l.length - r.length)).fill(0), ...r];
  } else {
    groups = [...part(s), ...v4];
  }
  const out = Buffer.alloc(16);
  groups.slice(0, 8).forEach((g, i) => out.writeUInt16BE((g || 0) & 0xffff, i * 2));
  return out;
}

/** A reply: VER REP RSV ATYP BND.ADDR BND.PORT (0.0.0.0:0 when there is no bound address). */
export function replyBytes(rep: number, family = C.AF_INET, bound: Address | null = null): Buffer {
  const [host, port] = Array.isArray(bound) ? bound : ['0.0.0.0', 0];
  if (family === C.AF_INET6 && isIP(host.split('%')[0]!) === 6) {
    const b = Buffer.alloc(22);
    b[0] = 5;
    b[1] = rep;
    b[3] = ATYP_IPV6;
    ipv6ToBytes(host).copy(b, 4);
    b.writeUInt16BE(port, 20);
    return b;
  }
  const b = Buffer.alloc(10);
  b[0] = 5;
  b[1] = rep;
  b[3] = ATYP_IPV4;
  const parts = isIP(host) === 4 ? host.split('.').map(Number) : [0, 0, 0, 0];
  parts.forEach((v, i) => (b[4 + i] = v));
  b.writeUInt16BE(port, 8);
  return b;
}
