// Entry point: registers each syscall family. No logic lives here.
#include "util.h"

namespace an {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitConstants(env, exports);
  InitSocket(env, exports);
  InitSelect(env, exports);
  InitPoll(env, exports);
#ifdef AN_HAVE_EPOLL
  InitEpoll(env, exports);
#endif
  InitWatcher(env, exports);
  InitSignals(env, exports);
  return exports;
}

}  // namespace an

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return an::Init(env, exports); }

NODE_API_MODULE(asyncore_native, InitAll)
