#include "middleware/collector.h"

#include <ctime>

#include "log/log.h"
#include "middleware/base/metrics.h"

namespace sessiond {

Collector::Collector(const StoreOptions& options, std::int64_t interval_seconds, std::size_t batch)
    : options_(options), interval_(interval_seconds), batch_(batch), thread_([this] { Run(); }) {}

Collector::~Collector() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Collector::Run() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, std::chrono::seconds(interval_), [this] { return stopping_.load(); })) {
    lock.unlock();
    try {
      // Opened here rather than at start-up: the database out of reach for a
      // moment as sessiond starts costs a sweep, not the server.
      if (!store_) store_ = OpenStore(options_);
      std::size_t total = 0, n;
      do {
        n = store_->CollectGarbage(static_cast<std::int64_t>(std::time(nullptr)), batch_);
        total += n;
        ProcessMetrics().CountCollected(n);
      } while (n == batch_ && !stopping_);
      if (total) LogLine("gc: deleted " + std::to_string(total) + " expired sessions");
    } catch (const StoreError& e) {
      ProcessMetrics().CountStoreError(e.busy());
      if (!e.reported()) LogLine(std::string("gc: ") + e.what());  // tried again at the next sweep
    } catch (const std::exception& e) {
      LogLine(std::string("gc: ") + e.what());
    }
    lock.lock();
  }
}

}  // namespace sessiond
