#include "middleware/server/work_queue.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "middleware/base/metrics.h"

namespace sessiond {

namespace {
std::atomic<std::uint64_t> queues{0};
}  // namespace

WorkQueue::WorkQueue() : id_(++queues) {}

// The worker may have taken `c` and moved on before the wake-up reaches it:
// its Waiter outlives this call (see Waiter), and a wake-up nobody waits for
// is lost harmlessly.
void WorkQueue::Wake(Waiter& w, Connection* c) {
  w.c = c;
  w.woken.store(1, std::memory_order_release);
  ::syscall(SYS_futex, &w.woken, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

WorkQueue::Waiter& WorkQueue::Mine() {
  thread_local std::uint64_t queue = 0;
  thread_local Waiter* mine = nullptr;
  if (queue != id_) {
    waiters_.push_back(std::make_unique<Waiter>());
    mine = waiters_.back().get();
    queue = id_;
  }
  return *mine;
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
  Waiter* w;
  {
    std::lock_guard lock(m_);
    if (!q_.empty()) {
      Connection* c = q_.front();
      q_.pop_front();
      ProcessMetrics().Add(Metrics::Gauge::QueueLength, -1);
      return c;
    }
    if (closed_) return nullptr;
    w = &Mine();
    w->c = nullptr;
    w->woken.store(0, std::memory_order_relaxed);
    idle_.push_back(w);
  }
  // Sleeps only while nothing was handed over (FUTEX_WAIT returns at once
  // when `woken` is no longer 0); a wake-up meant for an earlier wait
  // finds `woken` still 0 here and waits again.
  while (w->woken.load(std::memory_order_acquire) == 0)
    ::syscall(SYS_futex, &w->woken, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
  return w->c;
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
