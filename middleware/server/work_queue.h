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

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

#include "middleware/server/connection.h"

namespace sessiond {

class WorkQueue {
 public:
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
  // A worker waiting in Pop(): Push() hands it a request directly.
  struct Waiter {
    std::mutex m;
    std::condition_variable cv;
    Connection* c = nullptr;
    bool woken = false;  // c is set (nullptr: the queue closed)
  };
  static void Wake(Waiter& w, Connection* c);

  std::mutex m_;
  std::deque<Connection*> q_;
  std::vector<Waiter*> idle_;  // the workers waiting in Pop(), the last to wait last
  bool closed_ = false;
};

}  // namespace sessiond
