// FdWatcher: a uv_poll_t on Node's own loop, so a descriptor (typically an
// epoll fd) can be waited for without blocking the JS thread and without a
// helper thread. new FdWatcher(fd, cb); start(events); stop(); close().
// cb(status, events) runs as a macrotask (nextTicks and promises follow it).
//
// The handle must be closed before its fd: libuv keeps the fd registered in
// its own epoll set, and a reused fd number would make a later uv_poll_init
// fail with UV_EEXIST.
#include <uv.h>

#include "util.h"

namespace an {
namespace {

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {InstanceMethod("start", &FdWatcher::Start), InstanceMethod("stop", &FdWatcher::Stop),
                        InstanceMethod("close", &FdWatcher::Close)});
  }

  explicit FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
    Napi::Env env = info.Env();
    int fd;
    if (!GetFd(info, 0, &fd)) return;
    if (info.Length() < 2 || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "callback must be a function").ThrowAsJavaScriptException();
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "no libuv loop").ThrowAsJavaScriptException();
      return;
    }
    // A descriptor libuv cannot watch (closed: EBADF; a regular file: EPERM)
    // is the kernel's answer, not misuse: it is kept and returned by start(),
    // as every other errno of the addon is returned rather than thrown.
    handle_ = new uv_poll_t;
    int rc = uv_poll_init(loop, handle_, fd);
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      init_error_ = rc;
      return;
    }
    handle_->data = this;
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    env_ = env;
  }

  ~FdWatcher() override { CloseHandle(); }

 private:
  static void OnPoll(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<FdWatcher*>(h->data);
    if (self == nullptr) return;
    Napi::Env env = self->env_;
    Napi::HandleScope scope(env);
    Napi::Object recv = self->Value();
    Napi::AsyncContext ctx(env, "FdWatcher");
    // MakeCallback runs the microtask queue afterwards; an exception thrown by
    // the JS callback surfaces as an uncaught exception, as any I/O callback.
    try {
      self->callback_.MakeCallback(recv, {Napi::Number::New(env, status), Napi::Number::New(env, events)},
                                   ctx);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  static void OnClose(uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); }

  void CloseHandle() {
    if (handle_ == nullptr) return;
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), OnClose);
    handle_ = nullptr;
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    int events;
    if (!GetI32(info, 0, "events", &events)) return Napi::Value();
    if (handle_ == nullptr && init_error_ != 0) return Napi::Number::New(info.Env(), init_error_);
    if (handle_ == nullptr) return ThrowType(info.Env(), "FdWatcher is closed");
    if ((events & ~(UV_READABLE | UV_WRITABLE | UV_DISCONNECT | UV_PRIORITIZED)) != 0)
      return ThrowRange(info.Env(), "events must be a mask of UV_READABLE=1, UV_WRITABLE=2");
    return Napi::Number::New(info.Env(), uv_poll_start(handle_, events, OnPoll));
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ == nullptr) return Napi::Number::New(info.Env(), 0);
    return Napi::Number::New(info.Env(), uv_poll_stop(handle_));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseHandle();
    callback_.Reset();
    init_error_ = 0;
    return info.Env().Undefined();
  }

  uv_poll_t* handle_ = nullptr;
  int init_error_ = 0;  // uv_poll_init's status when it failed (a negative errno)
  Napi::FunctionReference callback_;
  napi_env env_ = nullptr;
};

}  // namespace

void InitWatcher(Napi::Env env, Napi::Object exports) {
  exports.Set("FdWatcher", FdWatcher::Define(env));
}

}  // namespace an
