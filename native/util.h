// Argument validation shared by every native file. Misuse from JS (a wrong
// type, a negative fd, a short buffer) throws TypeError / RangeError; errnos
// from the kernel are returned as negative numbers and never thrown.
#pragma once

#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <ctime>

namespace an {

// Throws a JS exception and returns an empty value; callers `return` it.
inline Napi::Value ThrowType(Napi::Env env, const char* msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return Napi::Value();
}
inline Napi::Value ThrowRange(Napi::Env env, const char* msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return Napi::Value();
}

// Reads info[i] as an integer in [lo, hi]. On failure throws and returns false.
inline bool GetInt(const Napi::CallbackInfo& info, size_t i, const char* name,
                   int64_t lo, int64_t hi, int64_t* out) {
  Napi::Env env = info.Env();
  // One N-API call on the hot path: napi_get_value_double itself refuses a
  // non-number (napi_number_expected, no exception pending).
  double d;
  if (i >= info.Length() || napi_get_value_double(env, info[i], &d) != napi_ok) {
    std::string m = std::string(name) + " must be a number";
    Napi::TypeError::New(env, m).ThrowAsJavaScriptException();
    return false;
  }
  if (std::isnan(d) || std::floor(d) != d) {
    std::string m = std::string(name) + " must be an integer";
    Napi::TypeError::New(env, m).ThrowAsJavaScriptException();
    return false;
  }
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    std::string m = std::string(name) + " out of range [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "]";
    Napi::RangeError::New(env, m).ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

inline bool GetFd(const Napi::CallbackInfo& info, size_t i, int* fd) {
  int64_t v;
  if (!GetInt(info, i, "fd", 0, INT32_MAX, &v)) return false;
  *fd = static_cast<int>(v);
  return true;
}

inline bool GetI32(const Napi::CallbackInfo& info, size_t i, const char* name, int* out) {
  int64_t v;
  if (!GetInt(info, i, name, INT32_MIN, INT32_MAX, &v)) return false;
  *out = static_cast<int>(v);
  return true;
}

// An event mask: accepts the signed and unsigned spellings of a 32-bit mask
// (EPOLLET | x is negative in JS until `>>> 0`).
inline bool GetMask(const Napi::CallbackInfo& info, size_t i, uint32_t* out) {
  int64_t v;
  if (!GetInt(info, i, "events", INT32_MIN, UINT32_MAX, &v)) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

// A byte window [off, off+len) inside a Uint8Array / Buffer (any TypedArray or
// DataView is accepted by its bytes). A detached buffer reads as length 0.
struct Bytes {
  uint8_t* data;
  size_t len;
};

inline bool GetBytes(const Napi::CallbackInfo& info, size_t i, Bytes* out) {
  Napi::Env env = info.Env();
  // napi_get_typedarray_info works for every backing store: a
  // SharedArrayBuffer (which Napi::ArrayBuffer refuses with "Invalid
  // argument") and a detached buffer (length 0, data null). It is tried
  // first: on the hot path (send/recv) it is the only call.
  napi_typedarray_type type;
  size_t length;
  void* data;
  bool isTyped = i < info.Length() &&
                 napi_get_typedarray_info(env, info[i], &type, &length, &data, nullptr, nullptr) == napi_ok;
  if (!isTyped) {
    if (i < info.Length() && info[i].IsDataView()) {
      Napi::DataView dv = info[i].As<Napi::DataView>();
      out->data = static_cast<uint8_t*>(dv.Data());
      out->len = dv.ByteLength();
      return true;
    }
    Napi::TypeError::New(env, "buffer must be a Buffer or TypedArray").ThrowAsJavaScriptException();
    return false;
  }

  size_t size = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: size = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: size = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: size = 8; break;
    default: break;
  }
  out->data = static_cast<uint8_t*>(data);
  out->len = data == nullptr ? 0 : length * size;
  return true;
}

// Reads (buffer, offset, length) at i, i+1, i+2 and checks the window fits.
inline bool GetWindow(const Napi::CallbackInfo& info, size_t i, uint8_t** data, size_t* len) {
  Bytes b;
  if (!GetBytes(info, i, &b)) return false;
  int64_t off, n;
  if (!GetInt(info, i + 1, "offset", 0, INT32_MAX, &off)) return false;
  if (!GetInt(info, i + 2, "length", 0, INT32_MAX, &n)) return false;
  if (static_cast<uint64_t>(off) + static_cast<uint64_t>(n) > b.len) {
    Napi::RangeError::New(info.Env(), "offset + length exceeds the buffer").ThrowAsJavaScriptException();
    return false;
  }
  *data = b.data == nullptr ? nullptr : b.data + off;
  *len = static_cast<size_t>(n);
  return true;
}

inline Napi::Value Result(Napi::Env env, long r) {
  return Napi::Number::New(env, static_cast<double>(r < 0 ? -errno : r));
}

inline int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// Timeouts for waits arrive as milliseconds (a double; negative = forever).
// They are rounded up so a wait lasts at least what was asked.
inline bool GetTimeoutMs(const Napi::CallbackInfo& info, size_t i, double* out) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), "timeout must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (std::isnan(d)) {
    Napi::TypeError::New(info.Env(), "timeout must not be NaN").ThrowAsJavaScriptException();
    return false;
  }
  *out = d < 0 ? -1 : d;
  return true;
}

// Remaining milliseconds (rounded up, capped to INT32_MAX) before a deadline
// in monotonic ns; -1 when there is none.
inline int RemainingMs(int64_t deadline_ns) {
  if (deadline_ns < 0) return -1;
  int64_t left = deadline_ns - MonotonicNs();
  if (left <= 0) return 0;
  int64_t ms = (left + 999999) / 1000000;
  return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

inline int64_t DeadlineFromMs(double ms) {
  if (ms < 0) return -1;
  double ns = std::ceil(ms * 1e6);
  if (ns > 9.0e18) return INT64_MAX / 2;
  return MonotonicNs() + static_cast<int64_t>(ns);
}

void InitSocket(Napi::Env env, Napi::Object exports);
void InitSelect(Napi::Env env, Napi::Object exports);
void InitPoll(Napi::Env env, Napi::Object exports);
void InitEpoll(Napi::Env env, Napi::Object exports);
void InitConstants(Napi::Env env, Napi::Object exports);
void InitWatcher(Napi::Env env, Napi::Object exports);
void InitSignals(Napi::Env env, Napi::Object exports);

}  // namespace an
