// select(2) over caller-owned Int32Arrays. The ready descriptors of each set
// are compacted to the front of its array and the three counts written to
// `counts`, so a wait allocates nothing.
#include <sys/select.h>

#include <cstring>

#include "util.h"

namespace an {
namespace {

bool GetFdArray(const Napi::CallbackInfo& info, size_t i, int32_t** data, uint32_t* n) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    Napi::TypeError::New(info.Env(), "fd set must be an Int32Array").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Int32Array a = info[i].As<Napi::Int32Array>();
  int64_t len;
  if (!GetInt(info, i + 1, "count", 0, static_cast<int64_t>(a.ElementLength()), &len)) return false;
  *data = len == 0 ? nullptr : a.Data();
  *n = static_cast<uint32_t>(len);
  return true;
}

// Fills `set` and raises `maxfd`; refuses descriptors FD_SET cannot hold.
bool Fill(Napi::Env env, fd_set* set, const int32_t* fds, uint32_t n, int* maxfd) {
  FD_ZERO(set);
  for (uint32_t k = 0; k < n; k++) {
    int fd = fds[k];
    if (fd < 0 || fd >= FD_SETSIZE) {
      std::string m = "filedescriptor out of range in select(): fd " + std::to_string(fd) +
                      " is not in [0, FD_SETSIZE=" + std::to_string(FD_SETSIZE) +
                      "); use poll or epoll for higher descriptors";
      Napi::RangeError::New(env, m).ThrowAsJavaScriptException();
      return false;
    }
    FD_SET(fd, set);
    if (fd > *maxfd) *maxfd = fd;
  }
  return true;
}

// Keeps the ready entries in input order; a descriptor listed twice stays
// listed twice (Python's select reports each listed object, duplicates too).
uint32_t Compact(const fd_set* set, int32_t* fds, uint32_t n) {
  uint32_t w = 0;
  for (uint32_t k = 0; k < n; k++) {
    if (FD_ISSET(fds[k], set)) fds[w++] = fds[k];
  }
  return w;
}

// select(r, nr, w, nw, x, nx, timeoutMs, counts) -> ready total or -errno.
Napi::Value Select(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t *r, *w, *x;
  uint32_t nr, nw, nx;
  double timeout;
  if (!GetFdArray(info, 0, &r, &nr) || !GetFdArray(info, 2, &w, &nw) ||
      !GetFdArray(info, 4, &x, &nx) || !GetTimeoutMs(info, 6, &timeout))
    return Napi::Value();
  if (info.Length() < 8 || !info[7].IsTypedArray() ||
      info[7].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      info[7].As<Napi::Int32Array>().ElementLength() < 3)
    return ThrowType(env, "counts must be an Int32Array of length >= 3");
  int32_t* counts = info[7].As<Napi::Int32Array>().Data();
  int64_t deadline = DeadlineFromMs(timeout);
  fd_set rs, ws, xs;
  int rc;
  for (;;) {
    int maxfd = -1;
    if (!Fill(env, &rs, r, nr, &maxfd) || !Fill(env, &ws, w, nw, &maxfd) || !Fill(env, &xs, x, nx, &maxfd))
      return Napi::Value();
    timeval tv, *tvp = nullptr;
    if (deadline >= 0) {
      int64_t left = deadline - MonotonicNs();
      if (left < 0) left = 0;
      int64_t us = (left + 999) / 1000;
      tv.tv_sec = static_cast<time_t>(us / 1000000);
      tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
      tvp = &tv;
    }
    rc = ::select(maxfd + 1, &rs, &ws, &xs, tvp);
    if (rc >= 0 || errno != EINTR) break;
  }
  if (rc < 0) return Napi::Number::New(env, -errno);
  counts[0] = static_cast<int32_t>(rc == 0 ? 0 : Compact(&rs, r, nr));
  counts[1] = static_cast<int32_t>(rc == 0 ? 0 : Compact(&ws, w, nw));
  counts[2] = static_cast<int32_t>(rc == 0 ? 0 : Compact(&xs, x, nx));
  return Napi::Number::New(env, counts[0] + counts[1] + counts[2]);
}

}  // namespace

void InitSelect(Napi::Env env, Napi::Object exports) {
  exports.Set("select", Napi::Function::New(env, Select, "select"));
}

}  // namespace an
