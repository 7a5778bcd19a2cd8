// epoll(7): create, ctl and a wait that writes (fd, events) pairs into
// caller-owned typed arrays. Built on Linux only (binding.gyp / CMake pick
// this file); the TS layer leaves Epoll out where `epollCreate` is missing.
#include <sys/epoll.h>

#include <memory>
#include <new>

#include "util.h"

namespace an {
namespace {

Napi::Value EpollCreate(const Napi::CallbackInfo& info) {
  int flags = 0;
  if (info.Length() > 0 && !info[0].IsUndefined() && !GetI32(info, 0, "flags", &flags)) return Napi::Value();
  return Result(info.Env(), ::epoll_create1(flags | EPOLL_CLOEXEC));
}

// epollCtl(epfd, op, fd, events) -> 0 or -errno. The event's data is the fd.
Napi::Value EpollCtl(const Napi::CallbackInfo& info) {
  int epfd, op, fd;
  uint32_t events = 0;
  if (!GetFd(info, 0, &epfd) || !GetI32(info, 1, "op", &op) || !GetFd(info, 2, &fd)) return Napi::Value();
  if (op != EPOLL_CTL_DEL && !GetMask(info, 3, &events)) return Napi::Value();
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  return Result(info.Env(), ::epoll_ctl(epfd, op, fd, &ev));
}

// epollWait(epfd, outFds, outEvents, maxevents, timeoutMs) -> count or -errno.
Napi::Value EpollWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int epfd;
  if (!GetFd(info, 0, &epfd)) return Napi::Value();
  if (info.Length() < 3 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    return ThrowType(env, "outFds must be an Int32Array and outEvents a Uint32Array");
  Napi::Int32Array of = info[1].As<Napi::Int32Array>();
  Napi::Uint32Array oe = info[2].As<Napi::Uint32Array>();
  size_t cap = of.ElementLength() < oe.ElementLength() ? of.ElementLength() : oe.ElementLength();
  int64_t maxevents;
  if (!GetInt(info, 3, "maxevents", 1, static_cast<int64_t>(cap), &maxevents)) {
    return Napi::Value();
  }
  double timeout;
  if (!GetTimeoutMs(info, 4, &timeout)) return Napi::Value();
  // The kernel refuses more than EP_MAX_EVENTS (INT_MAX / sizeof(epoll_event))
  // with EINVAL; answer the same before allocating for it.
  if (maxevents > static_cast<int64_t>(INT32_MAX / sizeof(epoll_event))) return Napi::Number::New(env, -EINVAL);
  // One scratch array per thread (workers have their own), grown on demand.
  // Left uninitialised (the kernel writes it) and allocated without throwing:
  // a size the machine cannot give is ENOMEM, as Python's MemoryError.
  thread_local std::unique_ptr<epoll_event[]> scratch;
  thread_local size_t scratchLen = 0;
  if (scratchLen < static_cast<size_t>(maxevents)) {
    scratch.reset(new (std::nothrow) epoll_event[static_cast<size_t>(maxevents)]);
    scratchLen = scratch ? static_cast<size_t>(maxevents) : 0;
    if (!scratch) return Napi::Number::New(env, -ENOMEM);
  }
  int64_t deadline = DeadlineFromMs(timeout);
  int rc;
  do rc = ::epoll_wait(epfd, scratch.get(), static_cast<int>(maxevents), RemainingMs(deadline));
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return Napi::Number::New(env, -errno);
  int32_t* fds = of.Data();
  uint32_t* evs = oe.Data();
  for (int k = 0; k < rc; k++) {
    fds[k] = scratch[k].data.fd;
    evs[k] = scratch[k].events;
  }
  return Napi::Number::New(env, rc);
}

}  // namespace

void InitEpoll(Napi::Env env, Napi::Object exports) {
  exports.Set("epollCreate", Napi::Function::New(env, EpollCreate, "epollCreate"));
  exports.Set("epollCtl", Napi::Function::New(env, EpollCtl, "epollCtl"));
  exports.Set("epollWait", Napi::Function::New(env, EpollWait, "epollWait"));
}

}  // namespace an
