// The graceful stop: the thread that takes the signals (drain.h), and the
// event loop's side of the drain once FcgiServer::Stop() was called.
#include "middleware/server/drain.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "log/log.h"
#include "middleware/server/event_loop.h"
#include "middleware/server/fcgi_server.h"
#include "middleware/server/systemd.h"

namespace sessiond {
namespace {

sigset_t OwnedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&set, sig);
  return set;
}

}  // namespace

void BlockOwnedSignals() {
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) ::signal(sig, SIG_DFL);
  sigset_t owned = OwnedSignals();
  pthread_sigmask(SIG_BLOCK, &owned, nullptr);
}

SignalThread::SignalThread(FcgiServer& server, std::function<void()> on_hup) {
  thread_ = std::thread([this, &server, on_hup = std::move(on_hup)] {
    sigset_t owned = OwnedSignals();
    for (;;) {
      int sig = 0;
      sigwait(&owned, &sig);
      if (done_) return;
      if (sig == SIGTERM || sig == SIGINT) {
        LogLine(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                ": no new connections, finishing the ones accepted");
        NotifyStopping();
        server.Stop();
      } else if (sig == SIGHUP) {
        on_hup();
      } else {
        LogLine(std::string("received ") + (sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2") + ": ignored");
      }
    }
  });
}

void SignalThread::Join() {
  if (!thread_.joinable()) return;
  done_ = true;
  ::kill(::getpid(), SIGTERM);  // wakes the sigwait()
  thread_.join();
}

// Serves what the kernel accepted before the stop, and nothing after.
void EventLoop::StartDrain() {
  draining = true;
  drain_started = Clock::now();
  if (listener.fd() >= 0) {
    Accept(true);  // the backlog: connections the kernel accepted already
    SetListening(false);
    listener.Close();
  }
  std::vector<Connection*> idle;
  auto grace = Clock::now() + std::chrono::seconds(1);
  for (auto& [fd, c] : conns) {
    if (c->busy || c->id != 0 || !c->in.empty()) continue;
    if (c->served) idle.push_back(c.get());
    // Accepted but silent: its request, if any, is in the kernel already.
    else c->deadline = std::min(c->deadline, grace);
  }
  for (Connection* c : idle) Close(*c);
  LogLine("stopping: finishing " + std::to_string(conns.size()) + " connections");
}

// What the drain did, for an operator following a restart.
void EventLoop::LogDrained() {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - drain_started).count();
  char took[32];
  std::snprintf(took, sizeof took, "%lld.%03lld s", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  LogLine("drained: served " + std::to_string(drained) + (drained == 1 ? " request" : " requests") +
          " after the stop, in " + took);
}
}  // namespace sessiond
