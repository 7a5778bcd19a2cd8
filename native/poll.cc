// poll(2) over a caller-owned array of struct pollfd (an Int32Array, two
// int32 per entry: fd, then events | revents << 16 as the kernel lays out the
// two shorts on a little-endian machine). The registration persists in that
// array between calls; the kernel writes revents into it.
#include <poll.h>

#include "util.h"

namespace an {
namespace {

static_assert(sizeof(pollfd) == 8, "struct pollfd is expected to be 8 bytes");

// poll(pollfds, nfds, timeoutMs, outFds?, outEvents?) -> ready count or
// -errno. With the out arrays, the ready entries' fds and revents are copied
// into them (up to their length) and that number is returned.
Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    return ThrowType(env, "pollfds must be an Int32Array");
  Napi::Int32Array arr = info[0].As<Napi::Int32Array>();
  int64_t nfds;
  if (!GetInt(info, 1, "nfds", 0, static_cast<int64_t>(arr.ElementLength() / 2), &nfds)) return Napi::Value();
  double timeout;
  if (!GetTimeoutMs(info, 2, &timeout)) return Napi::Value();
  int32_t* outFds = nullptr;
  uint32_t* outEv = nullptr;
  size_t outLen = 0;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
        info.Length() < 5 || !info[4].IsTypedArray() ||
        info[4].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      return ThrowType(env, "outFds must be an Int32Array and outEvents a Uint32Array");
    Napi::Int32Array of = info[3].As<Napi::Int32Array>();
    Napi::Uint32Array oe = info[4].As<Napi::Uint32Array>();
    outLen = of.ElementLength() < oe.ElementLength() ? of.ElementLength() : oe.ElementLength();
    outFds = of.Data();
    outEv = oe.Data();
  }
  pollfd* fds = nfds == 0 ? nullptr : reinterpret_cast<pollfd*>(arr.Data());
  int64_t deadline = DeadlineFromMs(timeout);
  int rc;
  do rc = ::poll(fds, static_cast<nfds_t>(nfds), RemainingMs(deadline));
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return Napi::Number::New(env, -errno);
  if (outFds == nullptr || rc == 0) return Napi::Number::New(env, rc);
  size_t w = 0;
  for (int64_t k = 0; k < nfds && w < outLen; k++) {
    if (fds[k].revents != 0) {
      outFds[w] = fds[k].fd;
      outEv[w] = static_cast<uint16_t>(fds[k].revents);
      w++;
    }
  }
  return Napi::Number::New(env, static_cast<double>(w));
}

}  // namespace

void InitPoll(Napi::Env env, Napi::Object exports) {
  exports.Set("poll", Napi::Function::New(env, Poll, "poll"));
}

}  // namespace an
