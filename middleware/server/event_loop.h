// The event loop: where connections are accepted and requests received.
//
// One thread (the one that calls FcgiServer::Serve) runs it with epoll:
// - accepts on the Listener, up to max_connections; past it a new connection
//   closes the longest-idle one, else the one whose request has been
//   arriving longest (the flood eviction: OldestIdle, SlowestArriving);
// - reads records into each Connection (parameters within
//   max_params_bytes, the body within max_body_bytes, spilled past
//   body_memory) and answers management records itself;
// - queues each request that arrived whole (Dispatch, WorkQueue), or
//   answers 503 when queue_size wait already;
// - takes connections back from the workers (GiveBack) to reuse or close;
// - every 250 ms sweeps: requests not received within io_timeout (408),
//   queued past queue_timeout (503), memory given back after a burst, and
//   the housekeeping task;
// - drains once `stop` is set (drain.cc: StartDrain): serves what the
//   kernel accepted before, closes idle connections, and Run() returns when
//   none is left.
// Requests are refused with a status and one log line (Reject); nothing
// here runs a page.
//
// Thread-safety: everything but GiveBack() runs on the loop's thread.
// GiveBack() is for the workers. Run() throws std::runtime_error only when
// epoll itself fails; a connection the kernel will not watch (epoll_ctl
// failing: max_user_watches, memory) is closed, alone, with a log line.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "middleware/server/connection.h"
#include "middleware/server/listener.h"
#include "middleware/server/options.h"
#include "middleware/server/work_queue.h"

namespace sessiond {
namespace fcgi {
struct Record;
}

// The epoll_ctl(2) every loop calls: a seam through which tests make it fail
// as the kernel does past fs.epoll.max_user_watches (ENOSPC) or out of
// memory (ENOMEM). nullptr: the real one.
using EpollCtl = int (*)(int epfd, int op, int fd, epoll_event* event);
void SetEpollCtl(EpollCtl fn);

class EventLoop {
 public:
  // `wake_fd` (an eventfd) is written when `stop` is set and when a worker
  // gives a connection back; `housekeeping` (may be empty) runs at each
  // sweep. All must outlive the loop.
  EventLoop(const ServerOptions& options, Listener& listener, WorkQueue& queue, int wake_fd,
            const std::atomic<bool>& stop, const std::function<void()>& housekeeping);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Serves until `stop` is set and the drain is over.
  void Run();

  // Called by a worker when it is done with `c`: the loop reuses it (keep-
  // alive) or closes it.
  void GiveBack(Connection* c);

 private:
  // False (logged) when the kernel refused: the caller closes that one
  // connection; the loop goes on.
  [[nodiscard]] bool Watch(int fd, int op, std::uint32_t events = EPOLLIN);
  void Unwatch(int fd);
  [[nodiscard]] bool StartWatching(Connection& c);
  void StopWatching(Connection& c);
  void SetListening(bool on);
  void Accept(bool everything);
  Connection* OldestIdle();
  Connection* SlowestArriving();
  void CloseSlowest(Connection& c);
  void Close(Connection& c);
  void Reject(Connection& c, int status, const std::string& why);
  bool Reply(Connection& c, std::string_view out);
  void ProtocolError(Connection& c, const std::string& why);
  void Receive(Connection& c);
  bool Parse(Connection& c);
  bool OnRecord(Connection& c, const fcgi::Record& r);
  bool OnParams(Connection& c, std::string_view content);
  bool OnStdin(Connection& c, std::string_view content);
  bool Dispatch(Connection& c);
  void TakeReturned();
  void Sweep();
  // drain.cc
  void StartDrain();
  void LogDrained();

  const ServerOptions& opts;
  Listener& listener;
  WorkQueue& queue;
  const int wake_fd;
  const std::atomic<bool>& stop;
  const std::function<void()>& housekeeping;
  int epoll_fd = -1;
  std::unordered_map<int, std::unique_ptr<Connection>> conns;
  bool listening = false;  // the listening socket is watched
  bool draining = false;
  bool limit_logged = false;
  bool watch_failing = false;  // epoll_ctl refused the last Watch (logged once)
  std::size_t in_flight = 0;  // queued or with a worker
  bool burst = false;         // requests were served since memory was last given back
  Clock::time_point drain_started;
  std::size_t drained = 0;    // requests finished since the drain started

  std::mutex returned_mutex;
  std::vector<Connection*> returned;  // finished by workers, for the loop to reuse or close
};

}  // namespace sessiond
