// Signal traps: sigaction(2) with a self-pipe. A trap catches a set of
// signals; its handler records which arrived and writes one byte to the
// trap's nonblocking pipe, whose read end a poller (or libuv) watches. When
// the last trap on a signal closes, the sigaction that was in place before
// the first one (libuv's handler, Node's own, SIG_DFL, SIG_IGN) is put back
// exactly, field for field.
//
//   signalTrapOpen(signums) -> [slot, readFd] or -errno
//   signalTrapTake(slot)    -> the first signal since the last take, or 0; drains the pipe
//   signalTrapClose(slot)   -> 0 or -errno (EBADF: not open)
//
// take and close answer EPERM for a slot another environment (a worker) opened.
//
// Dispositions are process-wide, and so is a trap: the handler runs on
// whichever thread the kernel picks and feeds every open trap on that signal,
// whichever thread (main or worker) opened it. A trap left open by a worker
// is closed when the worker's environment is torn down.
//
// If some other code replaces our sigaction while a trap is open (libuv does
// when JS calls process.on() for a trapped signal), the trap stops seeing the
// signal, and closing it leaves that newer handler in place rather than
// restoring an older one over it.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

#include "portable.h"
#include "util.h"

namespace an {
namespace {

// Signals 1..64 fit one 64-bit mask (Linux's _NSIG is 65).
constexpr int kMaxSignal = 64;
constexpr int kSlots = 64;

static_assert(std::atomic<int>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "the handler needs lock-free atomics");

struct Slot {
  // Read by the handler (lock-free); written under gMutex.
  std::atomic<uint64_t> mask{0};
  std::atomic<int> wfd{-1};
  // Written by the handler, read and cleared by take().
  std::atomic<uint64_t> pending{0};
  std::atomic<int> first{0};
  // Handlers currently looking at this slot: close waits for 0 before closing wfd.
  std::atomic<int> busy{0};
  // Owned by gMutex.
  bool open = false;
  int rfd = -1;
  napi_env env = nullptr;
};

Slot gSlots[kSlots];
std::mutex gMutex;
// Per signal, under gMutex: how many open traps catch it, and what was in place before the first.
int gRefs[kMaxSignal + 1];
struct sigaction gSaved[kMaxSignal + 1];

inline uint64_t Bit(int signo) { return uint64_t{1} << (signo - 1); }

void OnSignal(int signo) {
  // Only async-signal-safe work: atomics and write(2). errno is preserved
  // for the code the signal interrupted.
  int savedErrno = errno;
  if (signo >= 1 && signo <= kMaxSignal) {
    uint64_t bit = Bit(signo);
    for (Slot& s : gSlots) {
      s.busy.fetch_add(1);
      if (s.mask.load() & bit) {
        int fd = s.wfd.load();
        if (fd >= 0) {
          s.pending.fetch_or(bit);
          int none = 0;
          s.first.compare_exchange_strong(none, signo);
          char b = static_cast<char>(signo);
          // A full pipe (EAGAIN) is fine: it is readable already.
          ssize_t w = ::write(fd, &b, 1);
          (void)w;
        }
      }
      s.busy.fetch_sub(1);
    }
  }
  errno = savedErrno;
}

bool IsOurs(const struct sigaction& sa) {
  return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == OnSignal;
}

// Puts back what was there before the first trap on `signo`, unless someone
// replaced our handler since (then theirs stays). Called under gMutex.
void Release(int signo) {
  if (--gRefs[signo] > 0) return;
  struct sigaction cur;
  if (::sigaction(signo, nullptr, &cur) == 0 && IsOurs(cur)) ::sigaction(signo, &gSaved[signo], nullptr);
}

// Closes slot `i`. Called under gMutex with the slot open.
void CloseSlot(int i) {
  Slot& s = gSlots[i];
  uint64_t mask = s.mask.load();
  // The previous dispositions go back first, so a signal arriving meanwhile
  // reaches them instead of vanishing into a trap that is going away.
  for (int signo = 1; signo <= kMaxSignal; signo++)
    if (mask & Bit(signo)) Release(signo);
  s.mask.store(0);
  int wfd = s.wfd.exchange(-1);
  // A handler (on another thread) may have loaded the old fd just before:
  // the descriptor is closed only once none is inside, so its number cannot
  // be reused under a pending write. A handler never waits, so this ends.
  while (s.busy.load() != 0) {
  }
  ::close(wfd);
  ::close(s.rfd);
  s.rfd = -1;
  s.pending.store(0);
  s.first.store(0);
  s.open = false;
  s.env = nullptr;
}

void OnEnvCleanup(void* arg) {
  std::lock_guard<std::mutex> lock(gMutex);
  int i = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  if (gSlots[i].open) CloseSlot(i);
}

// Signals that cannot be caught, and the fault signals: a handler that
// returns from a real SIGSEGV re-runs the faulting instruction forever, and
// V8 relies on its own SIGSEGV handler (WebAssembly bounds checks).
const char* Refused(int signo) {
  switch (signo) {
    case SIGKILL: case SIGSTOP:
      return "SIGKILL and SIGSTOP cannot be caught";
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP: case SIGSYS:
      return "fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) cannot be trapped";
    default:
      return nullptr;
  }
}

bool GetSlot(const Napi::CallbackInfo& info, int* slot) {
  int64_t v;
  if (!GetInt(info, 0, "slot", 0, kSlots - 1, &v)) return false;
  *slot = static_cast<int>(v);
  return true;
}

Napi::Value SignalTrapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) return ThrowType(env, "signals must be an array of signal numbers");
  Napi::Array arr = info[0].As<Napi::Array>();
  uint32_t n = arr.Length();
  if (n == 0) return ThrowRange(env, "signals must not be empty");
  uint64_t mask = 0;
  for (uint32_t k = 0; k < n; k++) {
    Napi::Value v = arr.Get(k);
    if (!v.IsNumber()) return ThrowType(env, "a signal number must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::isnan(d) || std::floor(d) != d) return ThrowType(env, "a signal number must be an integer");
    if (d < 1 || d > kMaxSignal) return ThrowRange(env, "signal number out of range [1, 64]");
    int signo = static_cast<int>(d);
    if (const char* why = Refused(signo)) return ThrowRange(env, why);
    mask |= Bit(signo);
  }

  std::lock_guard<std::mutex> lock(gMutex);
  int i = 0;
  while (i < kSlots && gSlots[i].open) i++;
  if (i == kSlots) return Napi::Number::New(env, -EMFILE);
  int fds[2];
  if (Pipe2(fds, true) < 0) return Napi::Number::New(env, -errno);
  Slot& s = gSlots[i];
  s.pending.store(0);
  s.first.store(0);
  s.wfd.store(fds[1]);
  s.mask.store(mask);

  struct sigaction ours;
  std::memset(&ours, 0, sizeof ours);
  ours.sa_handler = OnSignal;
  // SA_RESTART: other threads' plain reads and writes go on undisturbed. The
  // addon's waits get EINTR regardless (signal(7)) and retry; the pipe,
  // watched beside the channels, is what ends them.
  ours.sa_flags = SA_RESTART;
  sigfillset(&ours.sa_mask);
  for (int signo = 1; signo <= kMaxSignal; signo++) {
    if (!(mask & Bit(signo))) continue;
    if (gRefs[signo] == 0 && ::sigaction(signo, &ours, &gSaved[signo]) < 0) {
      int err = errno;
      // Undo the signals taken so far in this call (EINVAL: glibc keeps 32 and 33 for itself).
      for (int u = 1; u < signo; u++)
        if (mask & Bit(u)) Release(u);
      s.mask.store(0);
      s.wfd.store(-1);
      while (s.busy.load() != 0) {
      }
      ::close(fds[0]);
      ::close(fds[1]);
      return Napi::Number::New(env, -err);
    }
    gRefs[signo]++;
  }
  s.rfd = fds[0];
  s.open = true;
  s.env = env;
  napi_add_env_cleanup_hook(env, OnEnvCleanup, reinterpret_cast<void*>(static_cast<intptr_t>(i)));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::Number::New(env, i));
  out.Set(uint32_t{1}, Napi::Number::New(env, fds[0]));
  return out;
}

Napi::Value SignalTrapTake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int i;
  if (!GetSlot(info, &i)) return Napi::Value();
  std::lock_guard<std::mutex> lock(gMutex);
  Slot& s = gSlots[i];
  if (!s.open) return Napi::Number::New(env, -EBADF);
  if (s.env != env) return Napi::Number::New(env, -EPERM);
  // Drain first, then read the record: a signal landing in between leaves a
  // byte behind (a spurious wake-up that takes nothing), never a record
  // without a byte (a signal nobody is woken for).
  char buf[256];
  while (::read(s.rfd, buf, sizeof buf) > 0) {
  }
  int signo = s.first.exchange(0);
  if (signo != 0) {
    s.pending.fetch_and(~Bit(signo));
    return Napi::Number::New(env, signo);
  }
  // Others that arrived after the first: lowest number first.
  uint64_t p = s.pending.load();
  while (p != 0) {
    int lowest = __builtin_ctzll(p) + 1;
    uint64_t bit = Bit(lowest);
    if (s.pending.fetch_and(~bit) & bit) return Napi::Number::New(env, lowest);
    p = s.pending.load();
  }
  return Napi::Number::New(env, 0);
}

Napi::Value SignalTrapClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int i;
  if (!GetSlot(info, &i)) return Napi::Value();
  std::lock_guard<std::mutex> lock(gMutex);
  Slot& s = gSlots[i];
  if (!s.open) return Napi::Number::New(env, -EBADF);
  // Only the environment that opened a trap uses or closes it (its cleanup hook is registered there).
  if (s.env != env) return Napi::Number::New(env, -EPERM);
  napi_remove_env_cleanup_hook(env, OnEnvCleanup, reinterpret_cast<void*>(static_cast<intptr_t>(i)));
  CloseSlot(i);
  return Napi::Number::New(env, 0);
}

}  // namespace

void InitSignals(Napi::Env env, Napi::Object exports) {
  exports.Set("signalTrapOpen", Napi::Function::New(env, SignalTrapOpen, "signalTrapOpen"));
  exports.Set("signalTrapTake", Napi::Function::New(env, SignalTrapTake, "signalTrapTake"));
  exports.Set("signalTrapClose", Napi::Function::New(env, SignalTrapClose, "signalTrapClose"));
}

}  // namespace an
