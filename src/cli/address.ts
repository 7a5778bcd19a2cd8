/**
 * Endpoints as a person types them on the command line, and as the CLI
 * prints them:
 *
 * - `HOST:PORT` — an IPv4 address or a host name (`127.0.0.1:1080`, `localhost:80`);
 * - `[V6]:PORT` — an IPv6 address in brackets (`[::1]:1080`);
 * - `unix:PATH` — a Unix stream socket path (`unix:/tmp/echo.sock`).
 *
 * Host names are resolved without blocking the event loop (node:dns `lookup`,
 * which runs getaddrinfo on libuv's thread pool), or by an injected resolver.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import * as C from '../constants.js';
import type { Address } from '../socket.js';

/** A parsed endpoint: an Internet host (name or literal) and port, or a Unix path. */
export type Endpoint = { kind: 'inet'; host: string; port: number } | { kind: 'unix'; path: string };

/** A resolved address: the socket family and the address in the library's shape. */
export interface SocketAddress {
  family: number;
  address: Address;
}

/** One answer of a resolver (the shape of node:dns `lookup(…, { all: true })`). */
export interface LookupAddress {
  address: string;
  family: number;
}

/**
 * Turns a host name into addresses, in the order to try them. Must not block:
 * the default is node:dns `lookup` with `all: true`. Rejecting (or resolving
 * to an empty list) means the name does not resolve.
 */
export type Resolver = (host: string) => Promise<LookupAddress[]>;

/** The default resolver: getaddrinfo on libuv's thread pool, every address, in the system's order. */
export const defaultResolver: Resolver = (host) => lookup(host, { all: true, verbatim: true });

/** A bad endpoint string; the message says what is wrong, for a person. */
export class EndpointError extends Error {
  override name = 'EndpointError';
  readonly code = 'ERR_ENDPOINT';
}

/**
 * Parses `HOST:PORT`, `[V6]:PORT` or `unix:PATH`. `allowUnix: false` refuses
 * the Unix form. Throws EndpointError with a message naming the problem.
 */
export function parseEndpoint(text: string, allowUnix = true): Endpoint {
  if (typeof text !== 'string' || text === '') throw new EndpointError('empty address');
  if (text.startsWith('unix:')) {
    if (!allowUnix) throw new EndpointError(`a Unix socket path is not allowed here: ${text}`);
    const path = text.slice(5);
    if (path === '') throw new EndpointError('unix: needs a path, e.g. unix:/tmp/x.sock');
    if (path.includes('\0')) throw new EndpointError('a Unix socket path cannot contain NUL');
    return { kind: 'unix', path };
  }
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0 || text[end + 1] !== ':') throw new EndpointError(`expected [IPV6]:PORT, got ${text}`);
    host = text.slice(1, end);
    portText = text.slice(end + 2);
    if (isIP(host.split('%')[0]!) !== 6) throw new EndpointError(`not an IPv6 address: [${host}]`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw new EndpointError(`expected HOST:PORT, [IPV6]:PORT or unix:PATH, got ${text}`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) throw new EndpointError(`an IPv6 address needs brackets: [${host}]:${portText}`);
    if (host === '') throw new EndpointError(`missing host in ${text} (use 0.0.0.0:PORT for every interface)`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new EndpointError(`bad port ${JSON.stringify(portText)} in ${text} (0-65535)`);
  return { kind: 'inet', host, port: Number(portText) };
}

/** `127.0.0.1:80`, `[::1]:80`, `unix:/path` — the form `parseEndpoint` reads. */
export function formatEndpoint(e: Endpoint): string {
  if (e.kind === 'unix') return `unix:${e.path}`;
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** Formats a socket address of `family` (from getsockname / accept) the same way. */
export function formatAddress(family: number, addr: Address | null | undefined): string {
  if (family === C.AF_UNIX) return `unix:${typeof addr === 'string' && addr !== '' ? addr : '(unnamed)'}`;
  if (!Array.isArray(addr)) return String(addr);
  const [host, port] = addr;
  return family === C.AF_INET6 || host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The addresses to try for `e`, in order. A literal needs no lookup; a name
 * goes to `resolver`. Rejects with the resolver's error (an Error whose `code`
 * is e.g. 'ENOTFOUND'), or with an ENOTFOUND error when nothing came back.
 */
export async function resolveEndpoint(e: Endpoint, resolver: Resolver = defaultResolver): Promise<SocketAddress[]> {
  if (e.kind === 'unix') return [{ family: C.AF_UNIX, address: e.path }];
  return (await resolveHost(e.host, resolver)).map((a) => toSocketAddress(a, e.port));
}

/** Resolves `host` (a literal is returned as is). */
export async function resolveHost(host: string, resolver: Resolver = defaultResolver): Promise<LookupAddress[]> {
  const kind = isIP(host.split('%')[0]!);
  if (kind !== 0) return [{ address: host, family: kind }];
  const found = await resolver(host);
  if (!Array.isArray(found) || found.length === 0) {
    throw Object.assign(new Error(`${host}: no addresses`), { code: 'ENOTFOUND', hostname: host });
  }
  return found;
}

/** A resolver answer plus a port as a family and library address. */
export function toSocketAddress(a: LookupAddress, port: number): SocketAddress {
  if (a.family === 6) {
    const [host, scope] = a.address.split('%');
    const scopeId = scope !== undefined && /^\d+$/.test(scope) ? Number(scope) : 0;
    return { family: C.AF_INET6, address: [host!, port, 0, scopeId] };
  }
  return { family: C.AF_INET, address: [a.address, port] };
}
