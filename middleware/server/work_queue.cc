#include "middleware/server/work_queue.h"

#include "middleware/base/metrics.h"

namespace sessiond {

// Notified under the waiter's lock: the worker cannot return from Pop() (and
// its Waiter, on its stack, cannot end) before the lock is released.
void WorkQueue::Wake(Waiter& w, Connection* c) {
  std::lock_guard lock(w.m);
  w.c = c;
  w.woken = true;
  w.cv.notify_one();
}

bool WorkQueue::Push(Connection* c, std::size_t limit) {
  Waiter* w = nullptr;
  {
    std::lock_guard lock(m_);
    if (q_.size() >= limit) return false;
    if (!idle_.empty()) {  // nothing is queued then: straight to that worker
      w = idle_.back();
      idle_.pop_back();
    } else {
      q_.push_back(c);
    }
  }
  if (w) {
    Wake(*w, c);
    return true;
  }
  ProcessMetrics().Add(Metrics::Gauge::QueueLength, 1);
  return true;
}

Connection* WorkQueue::Pop() {
  Waiter w;
  {
    std::lock_guard lock(m_);
    if (!q_.empty()) {
      Connection* c = q_.front();
      q_.pop_front();
      ProcessMetrics().Add(Metrics::Gauge::QueueLength, -1);
      return c;
    }
    if (closed_) return nullptr;
    idle_.push_back(&w);
  }
  std::unique_lock lock(w.m);
  w.cv.wait(lock, [&] { return w.woken; });
  return w.c;
}

void WorkQueue::Close() {
  std::vector<Waiter*> idle;
  {
    std::lock_guard lock(m_);
    closed_ = true;
    idle.swap(idle_);
  }
  for (Waiter* w : idle) Wake(*w, nullptr);
}

std::vector<Connection*> WorkQueue::TakeQueuedBefore(Clock::time_point cutoff) {
  std::vector<Connection*> late;
  {
    std::lock_guard lock(m_);
    while (!q_.empty() && q_.front()->queued_at < cutoff) {
      late.push_back(q_.front());
      q_.pop_front();
    }
  }
  // They wait no more: the gauge counted them at Push.
  ProcessMetrics().Add(Metrics::Gauge::QueueLength, -static_cast<double>(late.size()));
  return late;
}

}  // namespace sessiond
