#include "middleware/server/work_queue.h"

#include "middleware/base/metrics.h"

namespace sessiond {

bool WorkQueue::Push(Connection* c, std::size_t limit) {
  {
    std::lock_guard lock(m_);
    if (q_.size() >= limit) return false;
    q_.push_back(c);
  }
  ProcessMetrics().Add(Metrics::Gauge::QueueLength, 1);
  cv_.notify_one();
  return true;
}

Connection* WorkQueue::Pop() {
  std::unique_lock lock(m_);
  cv_.wait(lock, [&] { return !q_.empty() || closed_; });
  if (q_.empty()) return nullptr;
  Connection* c = q_.front();
  q_.pop_front();
  ProcessMetrics().Add(Metrics::Gauge::QueueLength, -1);
  return c;
}

void WorkQueue::Close() {
  {
    std::lock_guard lock(m_);
    closed_ = true;
  }
  cv_.notify_all();
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
