// The queue between the event loop and the workers: where a whole request
// waits for a worker.
//
// The loop pushes a connection whose request arrived whole (at most
// queue_size wait: past it the loop answers 503 at once); a worker pops the
// oldest; the loop's sweep takes out those that waited past queue_timeout
// and answers them 503 itself, so a busy pool does not hold them. The
// queue_length gauge of the metrics follows it.
//
// A request pushed while a worker is idle goes straight to the worker that
// became idle last (its caches are the warmest), woken alone: the hand-off
// costs one wake-up, and no other worker contends for the queue's lock. So
// requests wait in the queue only while every worker is busy.
//
// Thread-safety: every member is safe from any thread (one mutex). It does
// not own the connections it holds, and throws nothing of its own.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "middleware/server/connection.h"

namespace sessiond {

class WorkQueue {
 public:
  WorkQueue();
  // False when `limit` requests are waiting already.
  bool Push(Connection* c, std::size_t limit);
  // The next request (the oldest), waiting for one; nullptr once Close() was
  // called and none is left.
  Connection* Pop();
  // Wakes every Pop(): the workers end once the queue is empty.
  void Close();
  // Takes out the requests queued before `cutoff` (the oldest are first).
  std::vector<Connection*> TakeQueuedBefore(Clock::time_point cutoff);

 private:
  // A worker waiting in Pop(): Push() hands it a request directly. Each
  // thread that pops has one, kept as long as the queue (so a wake may still
  // be on its way to it when the worker has taken the request and moved on).
  // A futex rather than a condition variable: glibc's condition variable
  // makes the woken worker's next unlock a system call of its own, on every
  // hand-off.
  struct Waiter {
    std::atomic<std::uint32_t> woken{0};  // 1: c is set (nullptr: the queue closed)
    Connection* c = nullptr;
  };
  static void Wake(Waiter& w, Connection* c);
  Waiter& Mine();  // the calling thread's; under m_

  const std::uint64_t id_;  // tells this queue from one that had its address before
  std::mutex m_;
  std::deque<Connection*> q_;
  std::vector<std::unique_ptr<Waiter>> waiters_;
  std::vector<Waiter*> idle_;  // the workers waiting in Pop(), the last to wait last
  bool closed_ = false;
};

}  // namespace sessiond
