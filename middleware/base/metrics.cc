#include "middleware/base/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <ctime>

namespace sessiond {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// Pages: from a few milliseconds (a compiled page) to the default 30 s
// page timeout and beyond.
const Histogram::BucketBoundaries kPageBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,    1,     2.5,  5,     10,   30};
// The store: a load takes microseconds, a commit one fsync (about 200 µs
// with FULL), and a commit that waits for another writer up to the 5 s busy
// timeout.
const Histogram::BucketBoundaries kStoreBuckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                   0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1,
                                                   2.5,     5};

}  // namespace

struct Metrics::Impl {
  prometheus::Registry registry;

  prometheus::Family<prometheus::Counter>& requests =
      BuildCounter()
          .Name("sessiond_requests_total")
          .Help("Requests answered, by HTTP status (pages and sessiond's own errors; not the status path)")
          .Register(registry);
  Histogram& page_run = BuildHistogram()
                            .Name("sessiond_page_duration_seconds")
                            .Help("Run time of pages, from start to exit, whatever the outcome")
                            .Register(registry)
                            .Add({}, kPageBuckets);
  Histogram& store_load = BuildHistogram()
                              .Name("sessiond_store_load_duration_seconds")
                              .Help("Time to load a request's session from the store")
                              .Register(registry)
                              .Add({}, kStoreBuckets);
  Histogram& store_commit = BuildHistogram()
                                .Name("sessiond_store_commit_duration_seconds")
                                .Help("Time to commit a request's session changes (commits that wrote or tried to)")
                                .Register(registry)
                                .Add({}, kStoreBuckets);
  prometheus::Family<prometheus::Counter>& store_errors =
      BuildCounter()
          .Name("sessiond_store_errors_total")
          .Help("Store failures: kind=busy, another writer held the database past --busy-timeout (503); "
                "kind=failed, any other (500)")
          .Register(registry);
  prometheus::Counter& store_busy = store_errors.Add({{"kind", "busy"}});
  prometheus::Counter& store_failed = store_errors.Add({{"kind", "failed"}});
  prometheus::Family<prometheus::Counter>& lock_waits =
      BuildCounter()
          .Name("sessiond_session_lock_waits_total")
          .Help("Exclusive-mode requests that found their session's lock held: outcome=got, they got it "
                "within --lock-wait; outcome=timed_out, they did not (503)")
          .Register(registry);
  prometheus::Counter& lock_got = lock_waits.Add({{"outcome", "got"}});
  prometheus::Counter& lock_timed_out = lock_waits.Add({{"outcome", "timed_out"}});
  prometheus::Counter& degraded =
      BuildCounter()
          .Name("sessiond_degraded_requests_total")
          .Help("Requests a SESSION_ON_STORE_ERROR degrade route ran without their session, the store out of "
                "reach (SESSION_STATUS=unavailable); those whose page asked for a change got 503")
          .Register(registry)
          .Add({});

  prometheus::Counter& created = BuildCounter()
                                     .Name("sessiond_sessions_created_total")
                                     .Help("Sessions created (a new visitor's first write)")
                                     .Register(registry)
                                     .Add({});
  prometheus::Counter& regenerated = BuildCounter()
                                         .Name("sessiond_sessions_regenerated_total")
                                         .Help("Sessions moved to a new id (X-Session-Regenerate)")
                                         .Register(registry)
                                         .Add({});
  prometheus::Counter& abandoned = BuildCounter()
                                       .Name("sessiond_sessions_abandoned_total")
                                       .Help("Sessions deleted at a page's request (X-Session-Abandon)")
                                       .Register(registry)
                                       .Add({});
  prometheus::Counter& forwarded = BuildCounter()
                                       .Name("sessiond_sessions_forwarded_total")
                                       .Help("Requests whose regenerated id, within --regenerate-grace, "
                                             "was served the session under its new id")
                                       .Register(registry)
                                       .Add({});
  prometheus::Family<prometheus::Counter>& expired =
      BuildCounter()
          .Name("sessiond_sessions_expired_total")
          .Help("Expired sessions: found_by=read, a request's cookie named one not yet deleted; "
                "found_by=gc, deleted by the background sweep")
          .Register(registry);
  prometheus::Counter& expired_read = expired.Add({{"found_by", "read"}});
  prometheus::Counter& expired_gc = expired.Add({{"found_by", "gc"}});

  prometheus::Gauge& pages_running = BuildGauge()
                                         .Name("sessiond_pages_running")
                                         .Help("Pages running now")
                                         .Register(registry)
                                         .Add({});
  prometheus::Gauge& workers_busy = BuildGauge()
                                        .Name("sessiond_workers_busy")
                                        .Help("Workers serving a request now (the status request's own included)")
                                        .Register(registry)
                                        .Add({});
  prometheus::Gauge& workers_max = BuildGauge()
                                       .Name("sessiond_workers_max")
                                       .Help("Workers (--workers)")
                                       .Register(registry)
                                       .Add({});
  prometheus::Gauge& queue_length = BuildGauge()
                                        .Name("sessiond_queue_length")
                                        .Help("Complete requests waiting for a worker now")
                                        .Register(registry)
                                        .Add({});
  prometheus::Gauge& queue_max = BuildGauge()
                                     .Name("sessiond_queue_max")
                                     .Help("Requests that may wait for a worker (--queue-size); more get 503")
                                     .Register(registry)
                                     .Add({});
  prometheus::Gauge& start_time = BuildGauge()
                                      .Name("sessiond_start_time_seconds")
                                      .Help("When this sessiond started, in unix seconds (counters start at 0 then)")
                                      .Register(registry)
                                      .Add({});
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {
  impl_->start_time.Set(static_cast<double>(std::time(nullptr)));
}
Metrics::~Metrics() = default;

void Metrics::CountRequest(int status) { impl_->requests.Add({{"status", std::to_string(status)}}).Increment(); }

void Metrics::ObservePageRun(double seconds) { impl_->page_run.Observe(seconds); }
void Metrics::ObserveStoreLoad(double seconds) { impl_->store_load.Observe(seconds); }
void Metrics::ObserveStoreCommit(double seconds) { impl_->store_commit.Observe(seconds); }

void Metrics::CountStoreError(bool busy) { (busy ? impl_->store_busy : impl_->store_failed).Increment(); }
void Metrics::CountLockWait(bool got) { (got ? impl_->lock_got : impl_->lock_timed_out).Increment(); }
void Metrics::CountDegraded() { impl_->degraded.Increment(); }

void Metrics::CountSession(SessionEvent event) {
  switch (event) {
    case SessionEvent::Created: impl_->created.Increment(); break;
    case SessionEvent::Regenerated: impl_->regenerated.Increment(); break;
    case SessionEvent::Abandoned: impl_->abandoned.Increment(); break;
    case SessionEvent::ExpiredOnRead: impl_->expired_read.Increment(); break;
    case SessionEvent::Forwarded: impl_->forwarded.Increment(); break;
  }
}

void Metrics::CountCollected(std::size_t sessions) { impl_->expired_gc.Increment(static_cast<double>(sessions)); }

void Metrics::Add(Gauge gauge, double delta) {
  switch (gauge) {
    case Gauge::PagesRunning: impl_->pages_running.Increment(delta); break;
    case Gauge::WorkersBusy: impl_->workers_busy.Increment(delta); break;
    case Gauge::QueueLength: impl_->queue_length.Increment(delta); break;
  }
}

void Metrics::SetLimits(int workers, std::size_t queue_size) {
  impl_->workers_max.Set(workers);
  impl_->queue_max.Set(static_cast<double>(queue_size));
}

std::string Metrics::Render(std::optional<std::int64_t> live_sessions) const {
  std::vector<prometheus::MetricFamily> families = impl_->registry.Collect();
  if (live_sessions) {
    // Counted by the caller for this scrape only: a registry of its own, so
    // concurrent scrapes never see each other's value.
    prometheus::Registry scrape;
    BuildGauge()
        .Name("sessiond_sessions_live")
        .Help("Sessions in the store that have not expired, as last counted (at most once every 5 s per sessiond)")
        .Register(scrape)
        .Add({})
        .Set(static_cast<double>(*live_sessions));
    for (prometheus::MetricFamily& f : scrape.Collect()) families.push_back(std::move(f));
  }
  return prometheus::TextSerializer().Serialize(families);
}

Metrics& ProcessMetrics() {
  static Metrics metrics;
  return metrics;
}

std::optional<std::int64_t> LiveCount::Get(const std::function<std::optional<std::int64_t>()>& count,
                                           Clock::time_point now) {
  std::unique_lock lock(m_);
  if (have_ && now - at_ < interval_) return value_;
  if (counting_) {
    // Another scrape is counting: the last count, rather than a second scan.
    if (have_) return value_;
    done_.wait(lock, [&] { return !counting_; });
    return have_ ? value_ : std::nullopt;  // nothing when that count failed
  }
  counting_ = true;
  lock.unlock();
  std::optional<std::int64_t> counted;
  try {
    counted = count();
  } catch (...) {
    lock.lock();
    counting_ = false;
    done_.notify_all();
    throw;
  }
  lock.lock();
  value_ = counted;
  at_ = now;
  have_ = true;
  counting_ = false;
  done_.notify_all();
  return counted;
}

LiveCount& ProcessLiveCount() {
  static LiveCount live;
  return live;
}

}  // namespace sessiond
