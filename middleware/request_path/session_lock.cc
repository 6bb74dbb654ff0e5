#include "middleware/request_path/session_lock.h"

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <mutex>

#include "log/log.h"
#include "middleware/base/http.h"
#include "middleware/base/metrics.h"
#include "store/session_id.h"

namespace sessiond {
namespace {

// Releases by this process's requests: a waiter of this process wakes at
// once, without waiting out its pause (waiters in other processes poll).
struct Releases {
  std::mutex mutex;
  std::condition_variable changed;
  std::uint64_t count = 0;
};

Releases& ProcessReleases() {
  static Releases releases;
  return releases;
}

void Announce() {
  Releases& r = ProcessReleases();
  {
    std::lock_guard lock(r.mutex);
    ++r.count;
  }
  r.changed.notify_all();
}

}  // namespace

SessionLock SessionLock::Take(SessionStore& store, const SiteScope& site, const std::vector<std::string_view>& ids,
                              std::int64_t lease, std::chrono::milliseconds wait) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + wait;
  std::chrono::milliseconds pause{2};
  bool waited = false;
  SessionLock lock;
  lock.owner_ = NewSessionId();  // random: no other request anywhere has it
  Releases& releases = ProcessReleases();
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard guard(releases.mutex);
      seen = releases.count;
    }
    bool held = false;
    for (std::string_view id : ids) {
      auto outcome = store.TryLock(id, site, lock.owner_, lease, static_cast<std::int64_t>(std::time(nullptr)));
      if (outcome == SessionStore::LockOutcome::NoSession) continue;
      if (outcome == SessionStore::LockOutcome::Taken) {
        if (waited) ProcessMetrics().CountLockWait(true);
        lock.store_ = &store;
        lock.site_ = site;
        lock.id_ = std::string(id);
        return lock;
      }
      held = true;  // the session the load would take: no later id counts
      break;
    }
    if (!held) return lock;  // no live session: nothing to lock
    waited = true;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      ProcessMetrics().CountLockWait(false);
      throw HttpError(503, "the session's exclusive lock (SESSION_MODE exclusive) was held by another request for "
                           "longer than --lock-wait (" + std::to_string(wait.count()) + " ms)");
    }
    std::unique_lock guard(releases.mutex);
    releases.changed.wait_for(guard, std::min<Clock::duration>(pause, deadline - now),
                              [&] { return releases.count != seen; });
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
}

SessionLock::SessionLock(SessionLock&& other) noexcept
    : store_(other.store_), site_(std::move(other.site_)), id_(std::move(other.id_)), owner_(std::move(other.owner_)) {
  other.store_ = nullptr;
}

void SessionLock::Released() {
  if (!store_) return;
  store_ = nullptr;
  Announce();
}

SessionLock::~SessionLock() {
  if (!store_) return;
  try {
    store_->Unlock(id_, site_, owner_);
  } catch (const StoreError& e) {
    if (!e.reported()) LogLine(std::string("store: session lock not released (its lease ends it): ") + e.what());
  }
  Announce();
}

}  // namespace sessiond
