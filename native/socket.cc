// socket(2) family: one exported function per syscall, named after it.
// Results are the syscall's value or -errno. Every descriptor the addon
// creates is close-on-exec (children only get what they are handed), and no
// send raises SIGPIPE; portable.h says how on each platform.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "portable.h"
#include "util.h"

namespace an {
namespace {

// BSD and macOS sockaddrs carry their own length (sa_len), and their
// getnameinfo(3) refuses one that disagrees with the length passed.
inline void SetSockaddrLen(sockaddr_storage* ss, socklen_t len) {
#ifdef SIN6_LEN
  ss->ss_len = static_cast<uint8_t>(len);
#else
  (void)ss;
  (void)len;
#endif
}

// Parses a JS address for `family` into `ss`. Throws on misuse.
// AF_INET: [host, port]; AF_INET6: [host, port, flowinfo?, scopeId?] with a
// numeric host (the TS layer resolves names); AF_UNIX: a string or bytes path,
// a leading NUL meaning the abstract namespace.
bool ParseAddress(const Napi::CallbackInfo& info, size_t i, int family,
                  sockaddr_storage* ss, socklen_t* len) {
  Napi::Env env = info.Env();
  std::memset(ss, 0, sizeof(*ss));
  if (i >= info.Length()) {
    Napi::TypeError::New(env, "address is required").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Value v = info[i];
  if (family == AF_UNIX) {
    auto* sun = reinterpret_cast<sockaddr_un*>(ss);
    sun->sun_family = AF_UNIX;
    std::string path;
    if (v.IsString()) {
      path = v.As<Napi::String>().Utf8Value();
    } else if (v.IsTypedArray()) {
      Bytes b;
      if (!GetBytes(info, i, &b)) return false;
      path.assign(reinterpret_cast<const char*>(b.data), b.len);
    } else {
      Napi::TypeError::New(env, "AF_UNIX address must be a string or Buffer").ThrowAsJavaScriptException();
      return false;
    }
    if (path.size() >= sizeof(sun->sun_path)) {
      Napi::RangeError::New(env, "AF_UNIX path too long").ThrowAsJavaScriptException();
      return false;
    }
    std::memcpy(sun->sun_path, path.data(), path.size());
    // Abstract names are exactly their bytes; filesystem paths end with NUL.
    *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                  (!path.empty() && path[0] == '\0' ? 0 : 1));
    return true;
  }
  if (family != AF_INET && family != AF_INET6) {
    Napi::RangeError::New(env, "unsupported address family").ThrowAsJavaScriptException();
    return false;
  }
  if (!v.IsArray()) {
    Napi::TypeError::New(env, family == AF_INET ? "AF_INET address must be [host, port]"
                                                : "AF_INET6 address must be [host, port, flowinfo, scopeId]")
        .ThrowAsJavaScriptException();
    return false;
  }
  Napi::Array a = v.As<Napi::Array>();
  uint32_t n = a.Length();
  if (n < 2 || !a.Get(0u).IsString() || !a.Get(1u).IsNumber()) {
    Napi::TypeError::New(env, "address must be [host: string, port: number, ...]").ThrowAsJavaScriptException();
    return false;
  }
  std::string host = a.Get(0u).As<Napi::String>().Utf8Value();
  double port = a.Get(1u).As<Napi::Number>().DoubleValue();
  if (std::isnan(port) || std::floor(port) != port || port < 0 || port > 65535) {
    Napi::RangeError::New(env, "port must be 0-65535").ThrowAsJavaScriptException();
    return false;
  }
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    if (host.empty()) {
      sin->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (host == "<broadcast>") {
      sin->sin_addr.s_addr = htonl(INADDR_BROADCAST);
    } else if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) {
      Napi::TypeError::New(env, "not a numeric IPv4 address: " + host).ThrowAsJavaScriptException();
      return false;
    }
    *len = sizeof(sockaddr_in);
    SetSockaddrLen(ss, *len);
    return true;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(static_cast<uint16_t>(port));
  double flow = n > 2 && a.Get(2u).IsNumber() ? a.Get(2u).As<Napi::Number>().DoubleValue() : 0;
  double scope = n > 3 && a.Get(3u).IsNumber() ? a.Get(3u).As<Napi::Number>().DoubleValue() : 0;
  if (!(flow >= 0 && flow <= 0xfffff && std::floor(flow) == flow) ||
      !(scope >= 0 && scope <= 0xffffffffu && std::floor(scope) == scope)) {
    Napi::RangeError::New(env, "flowinfo must be 0-1048575 and scopeId 0-4294967295").ThrowAsJavaScriptException();
    return false;
  }
  sin6->sin6_flowinfo = htonl(static_cast<uint32_t>(flow));
  sin6->sin6_scope_id = static_cast<uint32_t>(scope);
  // A "%scope" suffix names the interface, as Python accepts.
  std::string::size_type pct = host.find('%');
  if (pct != std::string::npos) {
    unsigned idx = 0;
    std::string name = host.substr(pct + 1);
    char* end = nullptr;
    unsigned long num = std::strtoul(name.c_str(), &end, 10);
    idx = (end && *end == '\0' && !name.empty()) ? static_cast<unsigned>(num) : 0;
    sin6->sin6_scope_id = idx;
    host = host.substr(0, pct);
  }
  if (host.empty()) {
    sin6->sin6_addr = in6addr_any;
  } else if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) {
    Napi::TypeError::New(env, "not a numeric IPv6 address: " + host).ThrowAsJavaScriptException();
    return false;
  }
  *len = sizeof(sockaddr_in6);
  SetSockaddrLen(ss, *len);
  return true;
}

// Turns a kernel sockaddr into its JS shape (see ParseAddress).
Napi::Value FormatAddress(Napi::Env env, const sockaddr_storage* ss, socklen_t len) {
  char buf[INET6_ADDRSTRLEN];
  switch (ss->ss_family) {
    case AF_INET: {
      auto* sin = reinterpret_cast<const sockaddr_in*>(ss);
      inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
      Napi::Array a = Napi::Array::New(env, 2);
      a.Set(0u, Napi::String::New(env, buf));
      a.Set(1u, Napi::Number::New(env, ntohs(sin->sin_port)));
      return a;
    }
    case AF_INET6: {
      auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ss);
      inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
      Napi::Array a = Napi::Array::New(env, 4);
      a.Set(0u, Napi::String::New(env, buf));
      a.Set(1u, Napi::Number::New(env, ntohs(sin6->sin6_port)));
      a.Set(2u, Napi::Number::New(env, ntohl(sin6->sin6_flowinfo)));
      a.Set(3u, Napi::Number::New(env, sin6->sin6_scope_id));
      return a;
    }
    case AF_UNIX: {
      auto* sun = reinterpret_cast<const sockaddr_un*>(ss);
      size_t off = offsetof(sockaddr_un, sun_path);
      if (len <= off) return Napi::String::New(env, "");  // unnamed
      size_t n = len - off;
      if (sun->sun_path[0] != '\0') n = strnlen(sun->sun_path, n);
      return Napi::String::New(env, sun->sun_path, n);
    }
    default:
      return env.Null();
  }
}

#if !AN_USE_ACCEPT4
// The fallbacks apply SOCK_NONBLOCK by fcntl where the headers define it (the
// portable build on Linux; macOS has neither flag): it and SOCK_CLOEXEC are
// taken out of `flags`, and the answer is whether nonblocking was asked.
bool TakeSockFlags(int* flags) {
  bool nonblock = false;
#ifdef SOCK_NONBLOCK
  nonblock = (*flags & SOCK_NONBLOCK) != 0;
  *flags &= ~SOCK_NONBLOCK;
#endif
#ifdef SOCK_CLOEXEC
  *flags &= ~SOCK_CLOEXEC;
#endif
  return nonblock;
}
#endif

Napi::Value Socket(const Napi::CallbackInfo& info) {
  int family, type, proto;
  if (!GetI32(info, 0, "family", &family) || !GetI32(info, 1, "type", &type) ||
      !GetI32(info, 2, "proto", &proto))
    return Napi::Value();
#if AN_USE_SOCK_FLAGS
  return Result(info.Env(), ::socket(family, type | SOCK_CLOEXEC, proto));
#else
  bool nonblock = TakeSockFlags(&type);
  return Result(info.Env(), Adopt(::socket(family, type, proto), nonblock, true));
#endif
}

Napi::Value Socketpair(const Napi::CallbackInfo& info) {
  int family, type, proto, sv[2];
  if (!GetI32(info, 0, "family", &family) || !GetI32(info, 1, "type", &type) ||
      !GetI32(info, 2, "proto", &proto))
    return Napi::Value();
#if AN_USE_SOCK_FLAGS
  if (::socketpair(family, type | SOCK_CLOEXEC, proto, sv) < 0)
    return Napi::Number::New(info.Env(), -errno);
#else
  bool nonblock = TakeSockFlags(&type);
  if (::socketpair(family, type, proto, sv) < 0 || AdoptPair(sv, nonblock, true) < 0)
    return Napi::Number::New(info.Env(), -errno);
#endif
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), sv[0]));
  a.Set(1u, Napi::Number::New(info.Env(), sv[1]));
  return a;
}

Napi::Value Pipe(const Napi::CallbackInfo& info) {
  int fds[2];
  if (Pipe2(fds, false) < 0) return Napi::Number::New(info.Env(), -errno);
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  a.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return a;
}

Napi::Value Bind(const Napi::CallbackInfo& info) {
  int fd, family;
  sockaddr_storage ss;
  socklen_t len;
  if (!GetFd(info, 0, &fd) || !GetI32(info, 1, "family", &family) ||
      !ParseAddress(info, 2, family, &ss, &len))
    return Napi::Value();
  return Result(info.Env(), ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len));
}

// connect(2) as connect_ex: 0 or -errno (EINPROGRESS for a nonblocking
// socket). EINTR is not retried: the connection goes on in the background and
// a second connect() would report EALREADY, so the caller waits instead.
Napi::Value Connect(const Napi::CallbackInfo& info) {
  int fd, family;
  sockaddr_storage ss;
  socklen_t len;
  if (!GetFd(info, 0, &fd) || !GetI32(info, 1, "family", &family) ||
      !ParseAddress(info, 2, family, &ss, &len))
    return Napi::Value();
  return Result(info.Env(), ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len));
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  int fd, backlog;
  if (!GetFd(info, 0, &fd) || !GetI32(info, 1, "backlog", &backlog)) return Napi::Value();
  return Result(info.Env(), ::listen(fd, backlog));
}

// accept4(fd, flags) -> [newfd, address] or -errno. SOCK_CLOEXEC is always
// added; SOCK_NONBLOCK is the caller's choice. Where accept4(2) is missing,
// accept(2) and then fcntl, with accept4's EINVAL for a flag it does not know.
Napi::Value Accept4(const Napi::CallbackInfo& info) {
  int fd, flags;
  if (!GetFd(info, 0, &fd) || !GetI32(info, 1, "flags", &flags)) return Napi::Value();
#if !AN_USE_ACCEPT4
  bool nonblock = TakeSockFlags(&flags);
  if (flags != 0) return Napi::Number::New(info.Env(), -EINVAL);
#endif
  sockaddr_storage ss;
  socklen_t len;
  int r;
  do {
    len = sizeof(ss);
#if AN_USE_ACCEPT4
    r = ::accept4(fd, reinterpret_cast<sockaddr*>(&ss), &len, flags | SOCK_CLOEXEC);
#else
    r = ::accept(fd, reinterpret_cast<sockaddr*>(&ss), &len);
#endif
  } while (r < 0 && errno == EINTR);
#if !AN_USE_ACCEPT4
  r = Adopt(r, nonblock, true, true);
#endif
  if (r < 0) return Napi::Number::New(info.Env(), -errno);
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), r));
  a.Set(1u, FormatAddress(info.Env(), &ss, len));
  return a;
}

// send(fd, buf, off, len, flags): bytes sent or -errno; always MSG_NOSIGNAL
// (where it exists, else the socket's SO_NOSIGPIPE) so a closed peer is
// EPIPE, never SIGPIPE.
Napi::Value Send(const Napi::CallbackInfo& info) {
  int fd, flags;
  uint8_t* p;
  size_t n;
  if (!GetFd(info, 0, &fd) || !GetWindow(info, 1, &p, &n) || !GetI32(info, 4, "flags", &flags))
    return Napi::Value();
  ssize_t r;
  do r = ::send(fd, p, n, flags | AN_SEND_FLAGS);
  while (r < 0 && errno == EINTR);
  return Result(info.Env(), r);
}

Napi::Value Recv(const Napi::CallbackInfo& info) {
  int fd, flags;
  uint8_t* p;
  size_t n;
  if (!GetFd(info, 0, &fd) || !GetWindow(info, 1, &p, &n) || !GetI32(info, 4, "flags", &flags))
    return Napi::Value();
  ssize_t r;
  do r = ::recv(fd, p, n, flags);
  while (r < 0 && errno == EINTR);
  return Result(info.Env(), r);
}

Napi::Value Sendto(const Napi::CallbackInfo& info) {
  int fd, flags, family;
  uint8_t* p;
  size_t n;
  sockaddr_storage ss;
  socklen_t len;
  if (!GetFd(info, 0, &fd) || !GetWindow(info, 1, &p, &n) || !GetI32(info, 4, "flags", &flags) ||
      !GetI32(info, 5, "family", &family) || !ParseAddress(info, 6, family, &ss, &len))
    return Napi::Value();
  ssize_t r;
  do r = ::sendto(fd, p, n, flags | AN_SEND_FLAGS, reinterpret_cast<sockaddr*>(&ss), len);
  while (r < 0 && errno == EINTR);
  return Result(info.Env(), r);
}

// recvfrom(fd, buf, off, len, flags) -> [nbytes, address] or -errno.
Napi::Value Recvfrom(const Napi::CallbackInfo& info) {
  int fd, flags;
  uint8_t* p;
  size_t n;
  if (!GetFd(info, 0, &fd) || !GetWindow(info, 1, &p, &n) || !GetI32(info, 4, "flags", &flags))
    return Napi::Value();
  sockaddr_storage ss;
  socklen_t len;
  ssize_t r;
  do {
    len = sizeof(ss);
    std::memset(&ss, 0, sizeof(ss));
    r = ::recvfrom(fd, p, n, flags, reinterpret_cast<sockaddr*>(&ss), &len);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Napi::Number::New(info.Env(), -errno);
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(r)));
  a.Set(1u, len == 0 ? static_cast<Napi::Value>(info.Env().Null()) : FormatAddress(info.Env(), &ss, len));
  return a;
}

Napi::Value Read(const Napi::CallbackInfo& info) {
  int fd;
  uint8_t* p;
  size_t n;
  if (!GetFd(info, 0, &fd) || !GetWindow(info, 1, &p, &n)) return Napi::Value();
  ssize_t r;
  do r = ::read(fd, p, n);
  while (r < 0 && errno == EINTR);
  return Result(info.Env(), r);
}

Napi::Value Write(const Napi::CallbackInfo& info) {
  int fd;
  uint8_t* p;
  size_t n;
  if (!GetFd(info, 0, &fd) || !GetWindow(info, 1, &p, &n)) return Napi::Value();
  ssize_t r;
  do r = ::write(fd, p, n);
  while (r < 0 && errno == EINTR);
  return Result(info.Env(), r);
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  int fd, how;
  if (!GetFd(info, 0, &fd) || !GetI32(info, 1, "how", &how)) return Napi::Value();
  return Result(info.Env(), ::shutdown(fd, how));
}

// close(2) is never retried on EINTR: on Linux the fd is gone either way and
// a retry could close a descriptor another thread just received.
Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  int r = ::close(fd);
  if (r < 0 && errno == EINTR) return Napi::Number::New(info.Env(), 0);
  return Result(info.Env(), r);
}

Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  return Result(info.Env(), ::fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

// setsockopt(fd, level, opt, value): value is an int or the option's bytes.
Napi::Value Setsockopt(const Napi::CallbackInfo& info) {
  int fd, level, opt;
  if (!GetFd(info, 0, &fd) || !GetI32(info, 1, "level", &level) || !GetI32(info, 2, "option", &opt))
    return Napi::Value();
  if (info.Length() > 3 && (info[3].IsTypedArray() || info[3].IsDataView())) {
    Bytes b;
    if (!GetBytes(info, 3, &b)) return Napi::Value();
    return Result(info.Env(), ::setsockopt(fd, level, opt, b.data, static_cast<socklen_t>(b.len)));
  }
  int v;
  if (info.Length() > 3 && info[3].IsBoolean()) {
    v = info[3].As<Napi::Boolean>().Value() ? 1 : 0;
  } else if (!GetI32(info, 3, "value", &v)) {
    return Napi::Value();
  }
  return Result(info.Env(), ::setsockopt(fd, level, opt, &v, sizeof(v)));
}

// getsockopt(fd, level, opt, buflen?): an int, or a Buffer of up to buflen
// bytes when buflen is given; -errno on failure.
Napi::Value Getsockopt(const Napi::CallbackInfo& info) {
  int fd, level, opt;
  if (!GetFd(info, 0, &fd) || !GetI32(info, 1, "level", &level) || !GetI32(info, 2, "option", &opt))
    return Napi::Value();
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    int64_t buflen;
    if (!GetInt(info, 3, "buflen", 0, 1024, &buflen)) return Napi::Value();
    uint8_t tmp[1024];
    socklen_t len = static_cast<socklen_t>(buflen);
    if (::getsockopt(fd, level, opt, tmp, &len) < 0) return Napi::Number::New(info.Env(), -errno);
    return Napi::Buffer<uint8_t>::Copy(info.Env(), tmp, len);
  }
  int v = 0;
  socklen_t len = sizeof(v);
  if (::getsockopt(fd, level, opt, &v, &len) < 0) return Napi::Number::New(info.Env(), -errno);
  return Napi::Number::New(info.Env(), v);
}

template <int (*Fn)(int, sockaddr*, socklen_t*)>
Napi::Value GetName(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, 0, &fd)) return Napi::Value();
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof(ss));
  socklen_t len = sizeof(ss);
  if (Fn(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return Napi::Number::New(info.Env(), -errno);
  return FormatAddress(info.Env(), &ss, len);
}

int SysGetsockname(int fd, sockaddr* a, socklen_t* l) { return ::getsockname(fd, a, l); }
int SysGetpeername(int fd, sockaddr* a, socklen_t* l) { return ::getpeername(fd, a, l); }

// setFlag(fd, which, on): which 0 = O_NONBLOCK, 1 = FD_CLOEXEC.
Napi::Value SetFlag(const Napi::CallbackInfo& info) {
  int fd, which;
  if (!GetFd(info, 0, &fd) || !GetI32(info, 1, "which", &which)) return Napi::Value();
  if (info.Length() < 3 || !info[2].IsBoolean()) return ThrowType(info.Env(), "on must be a boolean");
  bool on = info[2].As<Napi::Boolean>().Value();
  if (which == 0) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) return Napi::Number::New(info.Env(), -errno);
    int nf = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return Result(info.Env(), nf == fl ? 0 : ::fcntl(fd, F_SETFL, nf));
  }
  if (which == 1) {
    int fl = ::fcntl(fd, F_GETFD);
    if (fl < 0) return Napi::Number::New(info.Env(), -errno);
    int nf = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
    return Result(info.Env(), nf == fl ? 0 : ::fcntl(fd, F_SETFD, nf));
  }
  return ThrowRange(info.Env(), "which must be 0 (O_NONBLOCK) or 1 (FD_CLOEXEC)");
}

// getFlag(fd, which) -> 1 / 0, or -errno (EBADF for a closed fd).
Napi::Value GetFlag(const Napi::CallbackInfo& info) {
  int fd, which;
  if (!GetFd(info, 0, &fd) || !GetI32(info, 1, "which", &which)) return Napi::Value();
  if (which == 0) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) return Napi::Number::New(info.Env(), -errno);
    return Napi::Number::New(info.Env(), (fl & O_NONBLOCK) ? 1 : 0);
  }
  if (which == 1) {
    int fl = ::fcntl(fd, F_GETFD);
    if (fl < 0) return Napi::Number::New(info.Env(), -errno);
    return Napi::Number::New(info.Env(), (fl & FD_CLOEXEC) ? 1 : 0);
  }
  return ThrowRange(info.Env(), "which must be 0 (O_NONBLOCK) or 1 (FD_CLOEXEC)");
}

// An EAI_* failure as the TS layer reads it (see Getaddrinfo).
Napi::Value GaiFailure(Napi::Env env, int rc) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("eai", Napi::Number::New(env, rc));
  o.Set("errno", Napi::Number::New(env, rc == EAI_SYSTEM ? errno : 0));
  o.Set("message", Napi::String::New(env, gai_strerror(rc)));
  return o;
}

// getaddrinfo(host|null, port|null, family, type, proto, flags) ->
// [[family, type, proto, canonname, address], ...] or a negative EAI_* code
// (returned as {eai: code, message}). Blocking, as Python's.
Napi::Value Getaddrinfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2) return ThrowType(env, "getaddrinfo(host, port, family, type, proto, flags)");
  std::string host, port;
  bool hasHost = info[0].IsString(), hasPort = info[1].IsString();
  if (!hasHost && !info[0].IsNull()) return ThrowType(env, "host must be a string or null");
  if (!hasPort && !info[1].IsNull()) return ThrowType(env, "port must be a string or null");
  if (hasHost) host = info[0].As<Napi::String>().Utf8Value();
  if (hasPort) port = info[1].As<Napi::String>().Utf8Value();
  int family, type, proto, flags;
  if (!GetI32(info, 2, "family", &family) || !GetI32(info, 3, "type", &type) ||
      !GetI32(info, 4, "proto", &proto) || !GetI32(info, 5, "flags", &flags))
    return Napi::Value();
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = family;
  hints.ai_socktype = type;
  hints.ai_protocol = proto;
  hints.ai_flags = flags;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(hasHost ? host.c_str() : nullptr, hasPort ? port.c_str() : nullptr, &hints, &res);
  if (rc != 0) return GaiFailure(env, rc);
  Napi::Array out = Napi::Array::New(env);
  uint32_t k = 0;
  for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
    if (p->ai_family != AF_INET && p->ai_family != AF_INET6) continue;
    Napi::Array e = Napi::Array::New(env, 5);
    e.Set(0u, Napi::Number::New(env, p->ai_family));
    e.Set(1u, Napi::Number::New(env, p->ai_socktype));
    e.Set(2u, Napi::Number::New(env, p->ai_protocol));
    e.Set(3u, Napi::String::New(env, p->ai_canonname ? p->ai_canonname : ""));
    sockaddr_storage ss;
    std::memset(&ss, 0, sizeof(ss));
    std::memcpy(&ss, p->ai_addr, p->ai_addrlen);
    e.Set(4u, FormatAddress(env, &ss, p->ai_addrlen));
    out.Set(k++, e);
  }
  freeaddrinfo(res);
  return out;
}

// gethostname(2) -> the name, or -errno.
Napi::Value Gethostname(const Napi::CallbackInfo& info) {
  char buf[1024];
  if (::gethostname(buf, sizeof(buf) - 1) < 0) return Napi::Number::New(info.Env(), -errno);
  buf[sizeof(buf) - 1] = '\0';
  return Napi::String::New(info.Env(), buf);
}

// getnameinfo(family, address, flags) -> [host, service], or {eai, errno,
// message} (see Getaddrinfo). The address is numeric (ParseAddress).
// Blocking, as Python's: it may ask the resolver.
Napi::Value Getnameinfo(const Napi::CallbackInfo& info) {
  int family, flags;
  sockaddr_storage ss;
  socklen_t len;
  if (!GetI32(info, 0, "family", &family) || !ParseAddress(info, 1, family, &ss, &len) ||
      !GetI32(info, 2, "flags", &flags))
    return Napi::Value();
  Napi::Env env = info.Env();
  if (family != AF_INET && family != AF_INET6) return ThrowRange(env, "getnameinfo needs AF_INET or AF_INET6");
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  int rc = ::getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof(host), serv, sizeof(serv), flags);
  if (rc != 0) return GaiFailure(env, rc);
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::String::New(env, host));
  a.Set(1u, Napi::String::New(env, serv));
  return a;
}

#if !AN_USE_GETHOSTBYADDR_R
// The reverse lookup where gethostbyaddr_r is missing: getnameinfo(3) with
// NI_NAMEREQD, thread-safe everywhere, asks the same sources (glibc's own
// getnameinfo is built on gethostbyaddr_r). It finds the name only, so the
// aliases come back empty. Returns 0, or the h_errno gethostbyaddr sets for
// the same failure (glibc folds HOST_NOT_FOUND and NO_DATA into EAI_NONAME),
// so the TS layer raises the same HError.
int ReverseLookup(int family, const unsigned char* a, char* name, size_t size) {
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof(ss));
  socklen_t len;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, a, 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, a, 16);
    len = sizeof(sockaddr_in6);
  }
  SetSockaddrLen(&ss, len);
  int rc = ::getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, name, size, nullptr, 0, NI_NAMEREQD);
  switch (rc) {
    case 0: return 0;
    case EAI_NONAME: return HOST_NOT_FOUND;
    case EAI_AGAIN: return TRY_AGAIN;
    case EAI_FAIL: return NO_RECOVERY;
    default: return NETDB_INTERNAL;
  }
}
#endif

// gethostbyaddr(family, addrBytes) -> [name, aliases, addrtype, addresses]
// (addresses as text), or {herrno, message} (h_errno, hstrerror). Uses
// gethostbyaddr_r with a buffer grown on ERANGE, or ReverseLookup where that
// is missing. Blocking, as Python's.
Napi::Value Gethostbyaddr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family;
  Bytes addr;
  if (!GetI32(info, 0, "family", &family) || !GetBytes(info, 1, &addr)) return Napi::Value();
  if (!((family == AF_INET && addr.len == 4) || (family == AF_INET6 && addr.len == 16)))
    return ThrowRange(env, "address must be 4 bytes for AF_INET, 16 for AF_INET6");
  unsigned char a[16];
  std::memcpy(a, addr.data, addr.len);
  hostent he, *h = nullptr;
  int herr = 0;
#if AN_USE_GETHOSTBYADDR_R
  std::string buf(16384, '\0');
  for (;;) {
    int rc = ::gethostbyaddr_r(a, static_cast<socklen_t>(addr.len), family, &he, &buf[0], buf.size(), &h, &herr);
    if (rc == ERANGE && buf.size() < (1u << 22)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    break;
  }
#else
  // The entry gethostbyaddr would give: the name, no aliases, the address asked.
  char name[NI_MAXHOST];
  char* noAliases[1] = {nullptr};
  char* addrList[2] = {reinterpret_cast<char*>(a), nullptr};
  herr = ReverseLookup(family, a, name, sizeof(name));
  if (herr == 0) {
    he.h_name = name;
    he.h_aliases = noAliases;
    he.h_addrtype = family;
    he.h_length = static_cast<int>(addr.len);
    he.h_addr_list = addrList;
    h = &he;
  }
#endif
  if (h == nullptr) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("herrno", Napi::Number::New(env, herr));
    o.Set("message", Napi::String::New(env, hstrerror(herr)));
    return o;
  }
  Napi::Array aliases = Napi::Array::New(env);
  uint32_t k = 0;
  for (char** p = h->h_aliases; p != nullptr && *p != nullptr; p++) aliases.Set(k++, Napi::String::New(env, *p));
  Napi::Array addrs = Napi::Array::New(env);
  k = 0;
  char text[INET6_ADDRSTRLEN];
  for (char** p = h->h_addr_list; p != nullptr && *p != nullptr; p++) {
    if (inet_ntop(h->h_addrtype, *p, text, sizeof(text)) != nullptr) addrs.Set(k++, Napi::String::New(env, text));
  }
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, Napi::String::New(env, h->h_name ? h->h_name : ""));
  out.Set(1u, aliases);
  out.Set(2u, Napi::Number::New(env, h->h_addrtype));
  out.Set(3u, addrs);
  return out;
}

// inetPton(family, text) -> a Buffer (4 or 16 bytes), 0 when the text is not
// an address of that family, or -errno (EAFNOSUPPORT).
Napi::Value InetPton(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family;
  if (!GetI32(info, 0, "family", &family)) return Napi::Value();
  if (info.Length() < 2 || !info[1].IsString()) return ThrowType(env, "address must be a string");
  std::string text = info[1].As<Napi::String>().Utf8Value();
  unsigned char out[16];
  // A NUL inside the text would end it early for inet_pton: not an address.
  if (text.find('\0') != std::string::npos) return Napi::Number::New(env, 0);
  int rc = ::inet_pton(family, text.c_str(), out);
  if (rc < 0) return Napi::Number::New(env, -errno);
  if (rc == 0) return Napi::Number::New(env, 0);
  return Napi::Buffer<uint8_t>::Copy(env, out, family == AF_INET ? 4 : 16);
}

// inetNtop(family, bytes) -> the text, or -errno (EAFNOSUPPORT). The bytes
// must be 4 (AF_INET) or 16 (AF_INET6) long.
Napi::Value InetNtop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family;
  Bytes b;
  if (!GetI32(info, 0, "family", &family) || !GetBytes(info, 1, &b)) return Napi::Value();
  if (family != AF_INET && family != AF_INET6) return Napi::Number::New(env, -EAFNOSUPPORT);
  if (b.len != (family == AF_INET ? 4u : 16u)) return ThrowRange(env, "invalid length of packed IP address string");
  unsigned char in[16];
  std::memcpy(in, b.data, b.len);
  char text[INET6_ADDRSTRLEN];
  if (::inet_ntop(family, in, text, sizeof(text)) == nullptr) return Napi::Number::New(env, -errno);
  return Napi::String::New(env, text);
}

Napi::Value Strerror(const Napi::CallbackInfo& info) {
  int e;
  if (!GetI32(info, 0, "errno", &e)) return Napi::Value();
  // INT_MIN has no positive counterpart; strerror reports it as unknown anyway.
  return Napi::String::New(info.Env(), std::strerror(e == INT32_MIN ? e : (e < 0 ? -e : e)));
}


}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New(env, Socket, "socket"));
  exports.Set("socketpair", Napi::Function::New(env, Socketpair, "socketpair"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("accept4", Napi::Function::New(env, Accept4, "accept4"));
  exports.Set("send", Napi::Function::New(env, Send, "send"));
  exports.Set("recv", Napi::Function::New(env, Recv, "recv"));
  exports.Set("sendto", Napi::Function::New(env, Sendto, "sendto"));
  exports.Set("recvfrom", Napi::Function::New(env, Recvfrom, "recvfrom"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("dup", Napi::Function::New(env, Dup, "dup"));
  exports.Set("setsockopt", Napi::Function::New(env, Setsockopt, "setsockopt"));
  exports.Set("getsockopt", Napi::Function::New(env, Getsockopt, "getsockopt"));
  exports.Set("getsockname", Napi::Function::New(env, GetName<SysGetsockname>, "getsockname"));
  exports.Set("getpeername", Napi::Function::New(env, GetName<SysGetpeername>, "getpeername"));
  exports.Set("setFlag", Napi::Function::New(env, SetFlag, "setFlag"));
  exports.Set("getFlag", Napi::Function::New(env, GetFlag, "getFlag"));
  exports.Set("getaddrinfo", Napi::Function::New(env, Getaddrinfo, "getaddrinfo"));
  exports.Set("gethostname", Napi::Function::New(env, Gethostname, "gethostname"));
  exports.Set("getnameinfo", Napi::Function::New(env, Getnameinfo, "getnameinfo"));
  exports.Set("gethostbyaddr", Napi::Function::New(env, Gethostbyaddr, "gethostbyaddr"));
  exports.Set("inetPton", Napi::Function::New(env, InetPton, "inetPton"));
  exports.Set("inetNtop", Napi::Function::New(env, InetNtop, "inetNtop"));
  exports.Set("strerror", Napi::Function::New(env, Strerror, "strerror"));
}

}  // namespace an
