// The graceful stop and the reload: which signals sessiond serve takes, and
// what each does.
//
// - SIGTERM, SIGINT: the drain. FcgiServer::Stop() (systemd is told
//   STOPPING=1): the event loop stops accepting, serves every connection
//   the kernel accepted before the signal, closes idle keep-alive ones,
//   gives silent ones a second, and FcgiServer::Serve() returns once none
//   is left; the log says "stopping: finishing N connections", then
//   "drained: served N requests after the stop, in S s". The loop's side is
//   drain.cc (EventLoop::StartDrain, LogDrained).
// - SIGHUP: the reload, `on_hup` (serve reopens its --log-file); every
//   other setting takes a restart.
// - SIGUSR1, SIGUSR2: logged and ignored.
//
// Thread-safety: BlockOwnedSignals() before any thread is started; one
// SignalThread per process. Nothing here throws but std::system_error when
// the thread cannot be started.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace sessiond {

class FcgiServer;

// Restores the default action of the signals above (a shell starts
// background commands with SIGINT ignored, and an ignored signal never
// reaches sigwait()) and blocks them in the calling thread, so that every
// thread started after inherits the mask and only a SignalThread takes them.
void BlockOwnedSignals();

// Takes the signals above with sigwait() on a thread of its own.
class SignalThread {
 public:
  SignalThread(FcgiServer& server, std::function<void()> on_hup);
  ~SignalThread() { Join(); }
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

  // Ends the thread (a signal is sent to wake it); idempotent.
  void Join();

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace sessiond
