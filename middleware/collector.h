// Deletes expired sessions in the background, in small batches, on a
// connection of its own, so requests never wait for a sweep to finish.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <memory>

#include "store/open.h"

namespace sessiond {

class Collector {
 public:
  // Starts the thread: a sweep every `interval_seconds`, `batch` sessions per
  // transaction, on a store connection of its own opened at the first sweep
  // (and again at the next one when that fails: logged, never fatal).
  Collector(const StoreOptions& options, std::int64_t interval_seconds, std::size_t batch);
  ~Collector();  // stops the thread, finishing the batch under way

 private:
  void Run();

  StoreOptions options_;
  std::unique_ptr<SessionStore> store_;  // the thread's own; null until opened
  std::int64_t interval_;
  std::size_t batch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};  // set under mutex_, so the wait cannot miss it
  std::thread thread_;
};

}  // namespace sessiond
