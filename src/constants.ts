/**
 * The C constants, in their C spelling, read from the addon (so they are the
 * platform's real values). Event masks are unsigned 32-bit numbers. A
 * constant the platform does not have is 0 (an EAI_* code: glibc's value).
 */
import { native } from './native.js';

const c = native.constants;
const u = (name: string): number => (c[name] ?? 0) >>> 0;

/** Address family: any (for getaddrinfo). */
export const AF_UNSPEC = u('AF_UNSPEC');
/** Address family: IPv4; addresses are `[host, port]`. */
export const AF_INET = u('AF_INET');
/** Address family: IPv6; addresses are `[host, port, flowinfo?, scopeId?]`. */
export const AF_INET6 = u('AF_INET6');
/** Address family: Unix domain sockets; addresses are paths (a leading `\0` is the abstract namespace). */
export const AF_UNIX = u('AF_UNIX');
/** Socket type: a byte stream (TCP, Unix stream). */
export const SOCK_STREAM = u('SOCK_STREAM');
/** Socket type: datagrams (UDP, Unix datagram). */
export const SOCK_DGRAM = u('SOCK_DGRAM');
/** Socket type: raw packets (needs privileges). */
export const SOCK_RAW = u('SOCK_RAW');
/** Socket type: sequenced, message-preserving stream (Unix). */
export const SOCK_SEQPACKET = u('SOCK_SEQPACKET');
/** Type flag: create the socket nonblocking (Linux; 0 elsewhere). */
export const SOCK_NONBLOCK = u('SOCK_NONBLOCK');
/** Type flag: create the socket close-on-exec (Linux; 0 elsewhere). Sockets made by this library always are. */
export const SOCK_CLOEXEC = u('SOCK_CLOEXEC');
/** setsockopt / getsockopt level of the socket options `SO_*`. */
export const SOL_SOCKET = u('SOL_SOCKET');
/** Socket option (int): allow binding an address in TIME_WAIT. */
export const SO_REUSEADDR = u('SO_REUSEADDR');
/** Socket option (int): allow several sockets to bind one port (0 where unsupported). */
export const SO_REUSEPORT = u('SO_REUSEPORT');
/** Socket option (int, read only): the pending error, e.g. of a nonblocking connect; reading clears it. */
export const SO_ERROR = u('SO_ERROR');
/** Socket option (int): send buffer size in bytes. */
export const SO_SNDBUF = u('SO_SNDBUF');
/** Socket option (int): receive buffer size in bytes. */
export const SO_RCVBUF = u('SO_RCVBUF');
/** Socket option (int): send TCP keepalive probes. */
export const SO_KEEPALIVE = u('SO_KEEPALIVE');
/** Socket option (struct linger as a Buffer: `{ int onoff; int linger; }`, seconds): how close() treats unsent data. */
export const SO_LINGER = u('SO_LINGER');
/** Socket option (int): allow datagrams to broadcast addresses. */
export const SO_BROADCAST = u('SO_BROADCAST');
/** Socket option (int, read only): the socket type (`SOCK_*`). */
export const SO_TYPE = u('SO_TYPE');
/** Socket option (int, read only): 1 when the socket is listening. */
export const SO_ACCEPTCONN = u('SO_ACCEPTCONN');
/** Socket option (int): bytes needed before input is reported readable. */
export const SO_RCVLOWAT = u('SO_RCVLOWAT');
/** Socket option (int): bytes of room needed before output is reported writable. */
export const SO_SNDLOWAT = u('SO_SNDLOWAT');
/** Socket option (int): urgent data is read in line with normal data. */
export const SO_OOBINLINE = u('SO_OOBINLINE');
/** Socket option (int, read only, Linux): the address family (`AF_*`). */
export const SO_DOMAIN = u('SO_DOMAIN');
/** Socket option (int, read only, Linux): the protocol number. */
export const SO_PROTOCOL = u('SO_PROTOCOL');
/** Protocol / option level: IPv4. */
export const IPPROTO_IP = u('IPPROTO_IP');
/** Protocol / option level: IPv6 (for `IPV6_V6ONLY`). */
export const IPPROTO_IPV6 = u('IPPROTO_IPV6');
/** Protocol / option level: TCP (for `TCP_NODELAY`). */
export const IPPROTO_TCP = u('IPPROTO_TCP');
/** Protocol / option level: UDP. */
export const IPPROTO_UDP = u('IPPROTO_UDP');
/** IPv6 option (int): the socket accepts IPv6 only, no IPv4-mapped addresses. */
export const IPV6_V6ONLY = u('IPV6_V6ONLY');
/** TCP option (int): disable Nagle's algorithm (small writes leave at once). */
export const TCP_NODELAY = u('TCP_NODELAY');
/** The kernel's cap on a listen backlog, as compiled in (Linux reads the live cap from /proc/sys/net/core/somaxconn). */
export const SOMAXCONN = u('SOMAXCONN');
/** shutdown(2): stop receiving. */
export const SHUT_RD = u('SHUT_RD');
/** shutdown(2): stop sending (the peer reads EOF). */
export const SHUT_WR = u('SHUT_WR');
/** shutdown(2): both directions. */
export const SHUT_RDWR = u('SHUT_RDWR');
/** send / recv flag: out-of-band (urgent) data. */
export const MSG_OOB = u('MSG_OOB');
/** recv flag: read without removing the data from the queue. */
export const MSG_PEEK = u('MSG_PEEK');
/** send / recv flag: this call does not block, whatever the socket's mode. */
export const MSG_DONTWAIT = u('MSG_DONTWAIT');
/** recv flag: block until the full amount arrived (or EOF, an error, a signal). */
export const MSG_WAITALL = u('MSG_WAITALL');
/** recv flag (Linux): return the real length of a datagram longer than the buffer. */
export const MSG_TRUNC = u('MSG_TRUNC');
/** send flag: no SIGPIPE for a closed peer (EPIPE only); `send` always adds it. 0 where missing (macOS). */
export const MSG_NOSIGNAL = u('MSG_NOSIGNAL');
/** Socket option (int, macOS): no SIGPIPE on this socket; set on every socket made where MSG_NOSIGNAL is missing, 0 elsewhere. */
export const SO_NOSIGPIPE = u('SO_NOSIGPIPE');
/** getaddrinfo flag: addresses for bind (a null host is the wildcard). */
export const AI_PASSIVE = u('AI_PASSIVE');
/** getaddrinfo flag: fill in the canonical name of the host. */
export const AI_CANONNAME = u('AI_CANONNAME');
/** getaddrinfo flag: the host is a numeric address; never resolve a name. */
export const AI_NUMERICHOST = u('AI_NUMERICHOST');
/** getaddrinfo flag: the port is numeric; never look up a service name. */
export const AI_NUMERICSERV = u('AI_NUMERICSERV');
/** getaddrinfo flag: only families that the machine has an address for. */
export const AI_ADDRCONFIG = u('AI_ADDRCONFIG');
/** getaddrinfo flag: IPv4-mapped IPv6 addresses when no IPv6 one exists (with AF_INET6). */
export const AI_V4MAPPED = u('AI_V4MAPPED');

// getnameinfo flags, and its buffer sizes.
/** getnameinfo flag: the host as a numeric address, never a name. */
export const NI_NUMERICHOST = u('NI_NUMERICHOST');
/** getnameinfo flag: the port as a number, never a service name. */
export const NI_NUMERICSERV = u('NI_NUMERICSERV');
/** getnameinfo flag: only the host part of a local name (no domain). */
export const NI_NOFQDN = u('NI_NOFQDN');
/** getnameinfo flag: fail (EAI_NONAME) when the host has no name, instead of returning the address. */
export const NI_NAMEREQD = u('NI_NAMEREQD');
/** getnameinfo flag: the service is a datagram one (UDP port names differ for a few ports). */
export const NI_DGRAM = u('NI_DGRAM');
/** getnameinfo: the largest host name it returns, in bytes (1025 on glibc). */
export const NI_MAXHOST = u('NI_MAXHOST');
/** getnameinfo: the largest service name it returns, in bytes (32 on glibc). */
export const NI_MAXSERV = u('NI_MAXSERV');

/** getaddrinfo error codes (negative on glibc), as in GaiError#errno. */
export const EAI_NONAME = c.EAI_NONAME ?? -2;
/** getaddrinfo: a temporary failure of name resolution; try again. */
export const EAI_AGAIN = c.EAI_AGAIN ?? -3;
/** getaddrinfo: a permanent failure of name resolution. */
export const EAI_FAIL = c.EAI_FAIL ?? -4;
/** getaddrinfo: the address family is not supported. */
export const EAI_FAMILY = c.EAI_FAMILY ?? -6;
/** getaddrinfo: the socket type is not supported. */
export const EAI_SOCKTYPE = c.EAI_SOCKTYPE ?? -7;
/** getaddrinfo: the service is not available for the socket type. */
export const EAI_SERVICE = c.EAI_SERVICE ?? -8;
/** getaddrinfo: a system error; see the GaiError's message. */
export const EAI_SYSTEM = c.EAI_SYSTEM ?? -11;
/** glibc's "address family for hostname not supported" (gethostbyname of an IPv6 literal). */
export const EAI_ADDRFAMILY = c.EAI_ADDRFAMILY ?? -9;

/** poll(2) event: data to read (or a connection to accept, or EOF). */
export const POLLIN = u('POLLIN');
/** poll(2) event: urgent (out-of-band) data to read. */
export const POLLPRI = u('POLLPRI');
/** poll(2) event: writing will not block. */
export const POLLOUT = u('POLLOUT');
/** poll(2) result: an error is pending on the descriptor (always reported). */
export const POLLERR = u('POLLERR');
/** poll(2) result: the peer hung up (always reported). */
export const POLLHUP = u('POLLHUP');
/** poll(2) result: the descriptor is not open (always reported). */
export const POLLNVAL = u('POLLNVAL');
/** poll(2) event: normal data to read (as POLLIN on Linux). */
export const POLLRDNORM = u('POLLRDNORM');
/** poll(2) event: priority-band data to read. */
export const POLLRDBAND = u('POLLRDBAND');
/** poll(2) event: normal data may be written (as POLLOUT on Linux). */
export const POLLWRNORM = u('POLLWRNORM');
/** poll(2) event: priority-band data may be written. */
export const POLLWRBAND = u('POLLWRBAND');
/** poll(2) event (Linux): the peer shut down writing; 0 elsewhere. */
export const POLLRDHUP = u('POLLRDHUP');
/** select(2) refuses descriptors >= this (1024 on Linux). */
export const FD_SETSIZE = u('FD_SETSIZE');

/** True where the platform has epoll(7) (Linux). */
export const HAVE_EPOLL = typeof native.epollCreate === 'function';
/** epoll(7) event: data to read (or a connection to accept, or EOF). */
export const EPOLLIN = u('EPOLLIN');
/** epoll(7) event: urgent (out-of-band) data to read. */
export const EPOLLPRI = u('EPOLLPRI');
/** epoll(7) event: writing will not block. */
export const EPOLLOUT = u('EPOLLOUT');
/** epoll(7) result: an error is pending (always reported). */
export const EPOLLERR = u('EPOLLERR');
/** epoll(7) result: the peer hung up (always reported). */
export const EPOLLHUP = u('EPOLLHUP');
/** epoll(7) event: the peer shut down writing. */
export const EPOLLRDHUP = u('EPOLLRDHUP');
/** epoll(7) event: normal data to read. */
export const EPOLLRDNORM = u('EPOLLRDNORM');
/** epoll(7) event: priority-band data to read. */
export const EPOLLRDBAND = u('EPOLLRDBAND');
/** epoll(7) event: normal data may be written. */
export const EPOLLWRNORM = u('EPOLLWRNORM');
/** epoll(7) event: priority-band data may be written. */
export const EPOLLWRBAND = u('EPOLLWRBAND');
/** epoll(7) event: unused by Linux (kept for completeness). */
export const EPOLLMSG = u('EPOLLMSG');
/** epoll(7) flag: edge-triggered (report changes, not states). 0x80000000: unsigned, never negative. */
export const EPOLLET = u('EPOLLET');
/** epoll(7) flag: report the descriptor once, then disable it until the next `modify`. */
export const EPOLLONESHOT = u('EPOLLONESHOT');
/** epoll(7) flag (Linux 4.5+): wake only one of several epoll sets waiting on the same descriptor. */
export const EPOLLEXCLUSIVE = u('EPOLLEXCLUSIVE');
/** epoll_create1(2) flag: the epoll descriptor is close-on-exec (Epoll always sets it). */
export const EPOLL_CLOEXEC = u('EPOLL_CLOEXEC');
/** epoll_ctl(2) operation: add a descriptor. */
export const EPOLL_CTL_ADD = u('EPOLL_CTL_ADD');
/** epoll_ctl(2) operation: change a descriptor's events. */
export const EPOLL_CTL_MOD = u('EPOLL_CTL_MOD');
/** epoll_ctl(2) operation: remove a descriptor. */
export const EPOLL_CTL_DEL = u('EPOLL_CTL_DEL');
