// sessiond's metrics: what the request path, the server and the collector
// count, and their text in Prometheus's exposition format, which sessiond
// serves at --status-path. Only metrics.cc includes prometheus-cpp: callers
// see plain member functions.
//
// Thread-safety: every member function may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace sessiond {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // A request answered with this HTTP status, by a page or by sessiond itself
  // (its own 4xx/5xx, a 503 from a full queue). The status path's own
  // requests are not counted. sessiond_requests_total{status="NNN"}.
  void CountRequest(int status);

  // Durations in seconds: a page's run (start to exit, whatever the outcome);
  // a store Load; a store Commit that wrote, or tried to (a read that had
  // nothing to write and no last-access time to refresh is not one).
  void ObservePageRun(double seconds);
  void ObserveStoreLoad(double seconds);
  void ObserveStoreCommit(double seconds);

  // The store failed: `busy` when another writer held it past the busy
  // timeout (the request got 503), else any other failure (500).
  void CountStoreError(bool busy);

  // An exclusive-mode request waited for its session's lock (held by
  // another request): `got` it within --lock-wait, or not (503).
  // sessiond_session_lock_waits_total{outcome="got"|"timed_out"}.
  void CountLockWait(bool got);

  // A degrade route (SESSION_ON_STORE_ERROR) ran its page without the
  // session, the store out of reach. sessiond_degraded_requests_total.
  void CountDegraded();

  enum class SessionEvent {
    Created,        // a new session was stored (a new visitor's first write)
    Regenerated,    // a session moved to a new id
    Abandoned,      // a session was deleted at a page's request (logout)
    ExpiredOnRead,  // a request's cookie named a session that had expired, not yet collected
    Forwarded,      // a request's regenerated id, within its grace, led to the session's new id
  };
  void CountSession(SessionEvent event);
  // Expired sessions the background sweep deleted.
  void CountCollected(std::size_t sessions);

  enum class Gauge {
    PagesRunning,  // pages started and not yet ended
    WorkersBusy,   // workers serving a request
    QueueLength,   // complete requests waiting for a worker
  };
  void Add(Gauge gauge, double delta);

  // The configured limits the gauges above are measured against
  // (--workers, --queue-size).
  void SetLimits(int workers, std::size_t queue_size);

  // Every metric, in the text exposition format (version 0.0.4), with
  // `live_sessions` as sessiond_sessions_live when it is known (LiveCount).
  std::string Render(std::optional<std::int64_t> live_sessions) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// This process's metrics: what the handler, the server and the collector
// count, and what --status-path serves.
Metrics& ProcessMetrics();

// The live session count a scrape reports, counted at most once per
// `interval` in the whole process: a count reads the store's whole expiry
// index (30-40 ms on PostgreSQL with 200k sessions), which scrapes from
// several scrapers, each one a worker's query, must not repeat. A scrape
// within the interval gets the last count; one after it counts, while those
// arriving meanwhile get the last count (or wait for the first one ever).
//
// Thread-safety: every member function may be called from any thread.
class LiveCount {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kInterval{5};

  explicit LiveCount(Clock::duration interval = kInterval) : interval_(interval) {}

  // The last count when it is younger than the interval at `now`, else what
  // `count` returns now. `count` may throw (a store error): the exception
  // reaches this caller, the last count stays, and the next call counts.
  std::optional<std::int64_t> Get(const std::function<std::optional<std::int64_t>()>& count,
                                  Clock::time_point now = Clock::now());

 private:
  const Clock::duration interval_;
  std::mutex m_;
  std::condition_variable done_;
  bool counting_ = false;
  bool have_ = false;
  std::optional<std::int64_t> value_;
  Clock::time_point at_;
};

// This process's live count, shared by every worker's handler.
LiveCount& ProcessLiveCount();

// Adds 1 to a gauge of ProcessMetrics() for its lifetime.
class GaugeScope {
 public:
  explicit GaugeScope(Metrics::Gauge gauge) : gauge_(gauge) { ProcessMetrics().Add(gauge_, 1); }
  ~GaugeScope() { ProcessMetrics().Add(gauge_, -1); }
  GaugeScope(const GaugeScope&) = delete;
  GaugeScope& operator=(const GaugeScope&) = delete;

 private:
  Metrics::Gauge gauge_;
};

// Seconds since `start` on the steady clock, for the Observe* functions.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace sessiond
