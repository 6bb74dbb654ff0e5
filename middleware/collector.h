// The store's upkeep in the background, on a connection of its own: deletes
// expired sessions in small batches, so requests never wait for a sweep to
// finish; and keeps this sessiond's record among the store's members (a
// heartbeat every kHeartbeat, removed when it stops), which rolling upgrades
// go by (sessiond stats, sessiond migrate --finish); and, with --max-sessions,
// counts the store's live sessions for the cap (request_path/new_sessions.h).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <memory>

#include "middleware/request_path/new_sessions.h"
#include "store/open.h"

namespace sessiond {

// This process as a member of the store's farm: "host:pid:tag", the tag
// random per call (per start), so two sessionds whose host name and pid
// agree (containers on the host's network, each its own pid 1) are two
// members, never one row that each overwrites and either removes.
Member ThisMember(std::string release);

class Collector {
 public:
  // Starts the thread: `self` recorded at once, then a heartbeat every
  // kHeartbeat and a sweep every `interval_seconds`, `batch` sessions per
  // transaction, on a store connection of its own opened at the first of
  // them (and again at the next one when that fails: logged, never fatal).
  // `count_for`: when set, the store's live sessions are counted at once and
  // every NewSessionLimits::kCountEvery, and handed to it (it must outlive
  // the collector).
  Collector(const StoreOptions& options, std::int64_t interval_seconds, std::size_t batch, Member self = {},
            NewSessionLimits* count_for = nullptr);
  ~Collector();  // stops the thread, finishing the batch under way, and removes `self`

 private:
  void Run();
  void Heartbeat();
  void Sweep();
  void CountLive();

  StoreOptions options_;
  std::unique_ptr<SessionStore> store_;  // the thread's own; null until opened
  std::int64_t interval_;
  std::size_t batch_;
  Member self_;                 // empty name: not recorded (tests)
  NewSessionLimits* count_for_;  // null: no count
  bool heartbeat_failing_ = false;  // logged once per spell
  bool count_failing_ = false;      // likewise
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};  // set under mutex_, so the wait cannot miss it
  std::thread thread_;
};

}  // namespace sessiond
