// What differs between Linux, macOS and the BSDs, decided once at compile
// time. Each AN_USE_X is 1 where the platform has the atomic or cheaper call
// and 0 where the portable fallback below is compiled instead.
//
// AN_PORTABLE=1 (npm run build:portable) makes every test here take its
// fallback even on Linux, and leaves the Linux-only constants out of the
// table, so the portable CI leg runs on Linux the code that macOS runs. The
// one fallback it cannot reach is SO_NOSIGPIPE, which Linux does not have.
// epoll.cc is chosen by the build files, not here, and stays in that build.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#ifndef AN_PORTABLE
#define AN_PORTABLE 0
#endif

// SOCK_CLOEXEC / SOCK_NONBLOCK in the type of socket(2), socketpair(2) and
// accept4(2): Linux, FreeBSD, NetBSD, OpenBSD; not macOS.
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK) && !AN_PORTABLE
#define AN_USE_SOCK_FLAGS 1
#else
#define AN_USE_SOCK_FLAGS 0
#endif

// accept4(2) and pipe2(2). Some other BSDs have them too; the fallback is
// right everywhere, these two are the ones known to need no feature macro.
#if (defined(__linux__) || defined(__FreeBSD__)) && AN_USE_SOCK_FLAGS
#define AN_USE_ACCEPT4 1
#define AN_USE_PIPE2 1
#else
#define AN_USE_ACCEPT4 0
#define AN_USE_PIPE2 0
#endif

// MSG_NOSIGNAL on every send(2): Linux, the BSDs; not macOS, which has the
// per-socket SO_NOSIGPIPE instead (set by NoSigpipe on every socket the addon
// creates or accepts).
#if defined(MSG_NOSIGNAL) && !AN_PORTABLE
#define AN_USE_MSG_NOSIGNAL 1
#define AN_SEND_FLAGS MSG_NOSIGNAL
#else
#define AN_USE_MSG_NOSIGNAL 0
#define AN_SEND_FLAGS 0
#endif

// gethostbyaddr_r(3) with glibc's (and musl's, FreeBSD's) signature; macOS
// and OpenBSD have none, and getnameinfo(3) stands in (socket.cc).
#if (defined(__linux__) || defined(__FreeBSD__)) && !AN_PORTABLE
#define AN_USE_GETHOSTBYADDR_R 1
#else
#define AN_USE_GETHOSTBYADDR_R 0
#endif

namespace an {

// Without MSG_NOSIGNAL a send to a closed peer raises SIGPIPE unless the
// socket says otherwise. Sockets the addon did not make (wrapped by fileno)
// lack the option there; Node ignores SIGPIPE by default, so they still get
// EPIPE unless the program installed a SIGPIPE handler. Returns 0 or -1.
inline int NoSigpipe(int fd) {
#if !AN_USE_MSG_NOSIGNAL && defined(SO_NOSIGPIPE)
  int on = 1;
  return ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
#else
  (void)fd;
  return 0;
#endif
}

// close(2) that leaves errno as it was, for undoing after a failure.
inline void CloseKeepErrno(int fd) {
  int err = errno;
  ::close(fd);
  errno = err;
}

// Makes a descriptor that the fallbacks just created close-on-exec and sets
// its O_NONBLOCK as asked, closing it when that fails so nothing leaks. A new
// socket or pipe is blocking already; accept(2) on macOS and the BSDs gives
// the new socket the listener's O_NONBLOCK (accept4 and Linux's accept do
// not), so `inherited` says the mode must be set either way. Returns fd, or
// -1 with errno set.
//
// The flag is set a moment after the descriptor exists: a fork(2) on another
// thread in between (a worker's child_process, another addon) gives the child
// a copy that survives its exec. That is the documented limitation of
// platforms without SOCK_CLOEXEC / accept4 / pipe2; libuv and CPython fall
// back the same way there.
inline int Adopt(int fd, bool nonblock, bool isSocket, bool inherited = false) {
  if (fd < 0) return fd;
  bool ok = ::fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
  if (ok && (nonblock || inherited)) {
    int fl = ::fcntl(fd, F_GETFL);
    int want = nonblock ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    ok = fl >= 0 && (want == fl || ::fcntl(fd, F_SETFL, want) == 0);
  }
  if (ok && isSocket) ok = NoSigpipe(fd) == 0;
  if (ok) return fd;
  CloseKeepErrno(fd);
  return -1;
}

// Adopt for both ends of a new pipe or socket pair: 0, or -1 with errno set
// and both closed.
inline int AdoptPair(int fds[2], bool nonblock, bool isSocket) {
  if (Adopt(fds[0], nonblock, isSocket) < 0) {
    CloseKeepErrno(fds[1]);
    return -1;
  }
  if (Adopt(fds[1], nonblock, isSocket) < 0) {
    CloseKeepErrno(fds[0]);
    return -1;
  }
  return 0;
}

// pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)): 0, or -1 with errno.
inline int Pipe2(int fds[2], bool nonblock) {
#if AN_USE_PIPE2
  return ::pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
#else
  if (::pipe(fds) < 0) return -1;
  return AdoptPair(fds, nonblock, false);
#endif
}

}  // namespace an
