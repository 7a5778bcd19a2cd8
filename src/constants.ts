/**
 * The C constants, in their C spelling, read from the addon (so they are the
 * platform's real values). Event masks are unsigned 32-bit numbers.
 */
import { native } from './native.js';

const c = native.constants;
const u = (name: string): number => (c[name] ?? 0) >>> 0;

export const AF_UNSPEC = u('AF_UNSPEC');
export const AF_INET = u('AF_INET');
export const AF_INET6 = u('AF_INET6');
export const AF_UNIX = u('AF_UNIX');
export const SOCK_STREAM = u('SOCK_STREAM');
export const SOCK_DGRAM = u('SOCK_DGRAM');
export const SOCK_RAW = u('SOCK_RAW');
export const SOCK_SEQPACKET = u('SOCK_SEQPACKET');
export const SOCK_NONBLOCK = u('SOCK_NONBLOCK');
export const SOCK_CLOEXEC = u('SOCK_CLOEXEC');
export const SOL_SOCKET = u('SOL_SOCKET');
export const SO_REUSEADDR = u('SO_REUSEADDR');
export const SO_REUSEPORT = u('SO_REUSEPORT');
export const SO_ERROR = u('SO_ERROR');
export const SO_SNDBUF = u('SO_SNDBUF');
export const SO_RCVBUF = u('SO_RCVBUF');
export const SO_KEEPALIVE = u('SO_KEEPALIVE');
export const SO_LINGER = u('SO_LINGER');
export const SO_BROADCAST = u('SO_BROADCAST');
export const SO_TYPE = u('SO_TYPE');
export const SO_ACCEPTCONN = u('SO_ACCEPTCONN');
export const SO_RCVLOWAT = u('SO_RCVLOWAT');
export const SO_SNDLOWAT = u('SO_SNDLOWAT');
export const SO_OOBINLINE = u('SO_OOBINLINE');
export const SO_DOMAIN = u('SO_DOMAIN');
export const SO_PROTOCOL = u('SO_PROTOCOL');
export const IPPROTO_IP = u('IPPROTO_IP');
export const IPPROTO_IPV6 = u('IPPROTO_IPV6');
export const IPPROTO_TCP = u('IPPROTO_TCP');
export const IPPROTO_UDP = u('IPPROTO_UDP');
export const IPV6_V6ONLY = u('IPV6_V6ONLY');
export const TCP_NODELAY = u('TCP_NODELAY');
export const SOMAXCONN = u('SOMAXCONN');
export const SHUT_RD = u('SHUT_RD');
export const SHUT_WR = u('SHUT_WR');
export const SHUT_RDWR = u('SHUT_RDWR');
export const MSG_OOB = u('MSG_OOB');
export const MSG_PEEK = u('MSG_PEEK');
export const MSG_DONTWAIT = u('MSG_DONTWAIT');
export const MSG_WAITALL = u('MSG_WAITALL');
export const MSG_TRUNC = u('MSG_TRUNC');
export const AI_PASSIVE = u('AI_PASSIVE');
export const AI_CANONNAME = u('AI_CANONNAME');
export const AI_NUMERICHOST = u('AI_NUMERICHOST');
export const AI_NUMERICSERV = u('AI_NUMERICSERV');
export const AI_ADDRCONFIG = u('AI_ADDRCONFIG');
export const AI_V4MAPPED = u('AI_V4MAPPED');

/** getnameinfo flags, and its buffer sizes (NI_MAXHOST, NI_MAXSERV). */
export const NI_NUMERICHOST = u('NI_NUMERICHOST');
export const NI_NUMERICSERV = u('NI_NUMERICSERV');
export const NI_NOFQDN = u('NI_NOFQDN');
export const NI_NAMEREQD = u('NI_NAMEREQD');
export const NI_DGRAM = u('NI_DGRAM');
export const NI_MAXHOST = u('NI_MAXHOST');
export const NI_MAXSERV = u('NI_MAXSERV');

/** getaddrinfo error codes (negative on glibc), as in GaiError#errno. */
export const EAI_NONAME = c.EAI_NONAME ?? -2;
export const EAI_AGAIN = c.EAI_AGAIN ?? -3;
export const EAI_FAIL = c.EAI_FAIL ?? -4;
export const EAI_FAMILY = c.EAI_FAMILY ?? -6;
export const EAI_SOCKTYPE = c.EAI_SOCKTYPE ?? -7;
export const EAI_SERVICE = c.EAI_SERVICE ?? -8;
export const EAI_SYSTEM = c.EAI_SYSTEM ?? -11;
/** glibc's "address family for hostname not supported" (gethostbyname of an IPv6 literal). */
export const EAI_ADDRFAMILY = c.EAI_ADDRFAMILY ?? -9;

export const POLLIN = u('POLLIN');
export const POLLPRI = u('POLLPRI');
export const POLLOUT = u('POLLOUT');
export const POLLERR = u('POLLERR');
export const POLLHUP = u('POLLHUP');
export const POLLNVAL = u('POLLNVAL');
export const POLLRDNORM = u('POLLRDNORM');
export const POLLRDBAND = u('POLLRDBAND');
export const POLLWRNORM = u('POLLWRNORM');
export const POLLWRBAND = u('POLLWRBAND');
export const POLLRDHUP = u('POLLRDHUP');
/** select(2) refuses descriptors >= this (1024 on Linux). */
export const FD_SETSIZE = u('FD_SETSIZE');

/** True where the platform has epoll(7) (Linux). */
export const HAVE_EPOLL = typeof native.epollCreate === 'function';
export const EPOLLIN = u('EPOLLIN');
export const EPOLLPRI = u('EPOLLPRI');
export const EPOLLOUT = u('EPOLLOUT');
export const EPOLLERR = u('EPOLLERR');
export const EPOLLHUP = u('EPOLLHUP');
export const EPOLLRDHUP = u('EPOLLRDHUP');
export const EPOLLRDNORM = u('EPOLLRDNORM');
export const EPOLLRDBAND = u('EPOLLRDBAND');
export const EPOLLWRNORM = u('EPOLLWRNORM');
export const EPOLLWRBAND = u('EPOLLWRBAND');
export const EPOLLMSG = u('EPOLLMSG');
/** 0x80000000: unsigned, never negative. */
export const EPOLLET = u('EPOLLET');
export const EPOLLONESHOT = u('EPOLLONESHOT');
export const EPOLLEXCLUSIVE = u('EPOLLEXCLUSIVE');
export const EPOLL_CLOEXEC = u('EPOLL_CLOEXEC');
export const EPOLL_CTL_ADD = u('EPOLL_CTL_ADD');
export const EPOLL_CTL_MOD = u('EPOLL_CTL_MOD');
export const EPOLL_CTL_DEL = u('EPOLL_CTL_DEL');
