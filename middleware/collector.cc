#include "middleware/collector.h"

#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <system_error>

#include <sys/random.h>
#include <unistd.h>
#include <utility>

#include "log/log.h"
#include "middleware/base/metrics.h"

namespace sessiond {

Member ThisMember(std::string release) {
  char host[256] = "";
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  std::uint8_t tag[4] = {};
  if (::getrandom(tag, sizeof tag, 0) != static_cast<ssize_t>(sizeof tag))
    throw std::system_error(errno, std::generic_category(), "getrandom");
  char hex[9];
  std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", tag[0], tag[1], tag[2], tag[3]);
  Member m;
  m.name = std::string(host) + ":" + std::to_string(::getpid()) + ":" + hex;
  m.release = std::move(release);
  m.started = static_cast<std::int64_t>(std::time(nullptr));
  return m;
}

Collector::Collector(const StoreOptions& options, std::int64_t interval_seconds, std::size_t batch, Member self,
                     NewSessionLimits* count_for)
    : options_([&] {
        StoreOptions o = options;
        o.background = true;
        return o;
      }()),
      interval_(interval_seconds), batch_(batch), self_(std::move(self)), count_for_(count_for),
      thread_([this] { Run(); }) {}

Collector::~Collector() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Collector::Run() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point next_sweep = Clock::now() + std::chrono::seconds(interval_);
  // The member is recorded at once (a migrate --finish must see it from the
  // start), then at each heartbeat; the live sessions are counted at once
  // too, then every kCountEvery; without either, only sweeps wake.
  Clock::time_point next_count = Clock::now();
  Clock::time_point wake = self_.name.empty() && !count_for_ ? next_sweep : Clock::now();
  std::unique_lock lock(mutex_);
  while (!wake_.wait_until(lock, wake, [this] { return stopping_.load(); })) {
    lock.unlock();
    // What is due is scheduled again before it is tried: a store that cannot
    // be opened now, or fails, is tried again at the next sweep, count or
    // heartbeat, not at once (it spun on a database out of reach, reconnecting
    // hundreds of times a second).
    const bool count_due = count_for_ && Clock::now() >= next_count;
    if (count_due) next_count = Clock::now() + NewSessionLimits::kCountEvery;
    const bool sweep_due = Clock::now() >= next_sweep;
    if (sweep_due) next_sweep = Clock::now() + std::chrono::seconds(interval_);
    try {
      // Opened here rather than at start-up: the database out of reach for a
      // moment as sessiond starts costs a sweep, not the server.
      if (!store_) store_ = OpenStore(options_);
      if (!self_.name.empty()) Heartbeat();
      if (count_due) CountLive();  // before the sweep, which may take a while
      if (sweep_due) Sweep();
    } catch (const StoreError& e) {
      ProcessMetrics().CountStoreError(e.busy());
      if (!e.reported()) LogLine(std::string("gc: ") + e.what());  // tried again at the next sweep
    } catch (const std::exception& e) {
      LogLine(std::string("gc: ") + e.what());
    }
    wake = self_.name.empty() ? next_sweep : std::min(next_sweep, Clock::now() + std::chrono::seconds(kHeartbeat));
    if (count_for_) wake = std::min(wake, next_count);
    lock.lock();
  }
  lock.unlock();
  // Stopping: the member leaves the store's list, so that `migrate --finish`
  // need not wait for its record to age. Best effort: one that cannot be
  // removed ages out after kSeenWithin.
  if (!self_.name.empty() && store_) try {
      store_->ForgetMember(self_.name);
    } catch (const std::exception&) {
    }
}

void Collector::Heartbeat() {
  try {
    store_->RecordMember(self_, static_cast<std::int64_t>(std::time(nullptr)));
    heartbeat_failing_ = false;
  } catch (const StoreError& e) {
    // The store's own outage is counted and logged by the sweep; this line
    // says once what the member record adds to it.
    if (!heartbeat_failing_ && !e.reported())
      LogLine(std::string("member heartbeat: ") + e.what() + " (sessiond stats and migrate --finish may miss this sessiond)");
    heartbeat_failing_ = true;
    if (e.busy() || e.reported()) throw;
  }
}

// The live sessions, for --max-sessions: what the handlers admitted before
// the count began is in it; what they admit from then on is added to it.
void Collector::CountLive() {
  try {
    const std::uint64_t mark = count_for_->Mark();
    if (std::optional<std::int64_t> live = store_->CountLive(static_cast<std::int64_t>(std::time(nullptr))))
      count_for_->Counted(*live, mark);
    count_failing_ = false;
  } catch (const StoreError& e) {
    // Until a count succeeds, the cap goes by the last one and what was
    // admitted since (more and more cautious, never less).
    if (!count_failing_ && !e.reported())
      LogLine(std::string("live session count: ") + e.what() + " (--max-sessions goes by the last count)");
    count_failing_ = true;
    if (e.busy() || e.reported()) throw;
  }
}

void Collector::Sweep() {
  std::size_t total = 0, n;
  do {
    n = store_->CollectGarbage(static_cast<std::int64_t>(std::time(nullptr)), batch_);
    total += n;
    ProcessMetrics().CountCollected(n);
  } while (n == batch_ && !stopping_);
  if (total) LogLine("gc: deleted " + std::to_string(total) + " expired sessions");
}

}  // namespace sessiond
