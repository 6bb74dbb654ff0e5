// The metrics' text, as Prometheus reads it: names, types, labels, values.
#include "middleware/base/metrics.h"

#include <catch2/catch.hpp>
#include <future>
#include <sstream>
#include <thread>

using namespace sessiond;

namespace {

bool HasLine(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

}  // namespace

TEST_CASE("a fresh set of metrics shows every family at zero, with its type", "[metrics]") {
  Metrics m;
  std::string text = m.Render(std::nullopt);
  for (const char* type : {"# TYPE sessiond_page_duration_seconds histogram",
                           "# TYPE sessiond_store_load_duration_seconds histogram",
                           "# TYPE sessiond_store_commit_duration_seconds histogram",
                           "# TYPE sessiond_store_errors_total counter",
                           "# TYPE sessiond_sessions_created_total counter",
                           "# TYPE sessiond_sessions_regenerated_total counter",
                           "# TYPE sessiond_sessions_abandoned_total counter",
                           "# TYPE sessiond_sessions_forwarded_total counter",
                           "# TYPE sessiond_sessions_expired_total counter",
                           "# TYPE sessiond_pages_running gauge",
                           "# TYPE sessiond_workers_busy gauge",
                           "# TYPE sessiond_queue_length gauge"}) {
    INFO(type);
    CHECK(HasLine(text, type));
  }
  CHECK(HasLine(text, "sessiond_sessions_created_total 0"));
  CHECK(HasLine(text, "sessiond_sessions_expired_total{found_by=\"read\"} 0"));
  CHECK(HasLine(text, "sessiond_sessions_expired_total{found_by=\"gc\"} 0"));
  CHECK(HasLine(text, "sessiond_store_errors_total{kind=\"busy\"} 0"));
  // Unknown: no live-session gauge at all rather than a made-up 0.
  CHECK(text.find("sessiond_sessions_live") == std::string::npos);
}

TEST_CASE("requests are counted by status", "[metrics]") {
  Metrics m;
  m.CountRequest(200);
  m.CountRequest(200);
  m.CountRequest(502);
  std::string text = m.Render(std::nullopt);
  CHECK(HasLine(text, "# TYPE sessiond_requests_total counter"));
  CHECK(HasLine(text, "sessiond_requests_total{status=\"200\"} 2"));
  CHECK(HasLine(text, "sessiond_requests_total{status=\"502\"} 1"));
  CHECK(text.find("status=\"404\"") == std::string::npos);
}

TEST_CASE("session events, collections and store errors are counted", "[metrics]") {
  Metrics m;
  m.CountSession(Metrics::SessionEvent::Created);
  m.CountSession(Metrics::SessionEvent::Created);
  m.CountSession(Metrics::SessionEvent::Regenerated);
  m.CountSession(Metrics::SessionEvent::Abandoned);
  m.CountSession(Metrics::SessionEvent::ExpiredOnRead);
  m.CountSession(Metrics::SessionEvent::Forwarded);
  m.CountCollected(7);
  m.CountCollected(0);
  m.CountStoreError(true);
  m.CountStoreError(false);
  m.CountStoreError(false);
  std::string text = m.Render(std::nullopt);
  CHECK(HasLine(text, "sessiond_sessions_created_total 2"));
  CHECK(HasLine(text, "sessiond_sessions_regenerated_total 1"));
  CHECK(HasLine(text, "sessiond_sessions_abandoned_total 1"));
  CHECK(HasLine(text, "sessiond_sessions_expired_total{found_by=\"read\"} 1"));
  CHECK(HasLine(text, "sessiond_sessions_forwarded_total 1"));
  CHECK(HasLine(text, "sessiond_sessions_expired_total{found_by=\"gc\"} 7"));
  CHECK(HasLine(text, "sessiond_store_errors_total{kind=\"busy\"} 1"));
  CHECK(HasLine(text, "sessiond_store_errors_total{kind=\"failed\"} 2"));
}

TEST_CASE("durations land in cumulative buckets", "[metrics]") {
  Metrics m;
  m.ObservePageRun(0.003);
  m.ObservePageRun(0.2);
  m.ObservePageRun(100);
  m.ObserveStoreLoad(0.00001);
  m.ObserveStoreCommit(0.0002);
  std::string text = m.Render(std::nullopt);
  CHECK(HasLine(text, "sessiond_page_duration_seconds_count 3"));
  CHECK(HasLine(text, "sessiond_page_duration_seconds_bucket{le=\"0.001\"} 0"));
  CHECK(HasLine(text, "sessiond_page_duration_seconds_bucket{le=\"0.005\"} 1"));
  CHECK(HasLine(text, "sessiond_page_duration_seconds_bucket{le=\"0.25\"} 2"));
  CHECK(HasLine(text, "sessiond_page_duration_seconds_bucket{le=\"30\"} 2"));
  CHECK(HasLine(text, "sessiond_page_duration_seconds_bucket{le=\"+Inf\"} 3"));
  CHECK(HasLine(text, "sessiond_store_load_duration_seconds_count 1"));
  CHECK(HasLine(text, "sessiond_store_load_duration_seconds_bucket{le=\"5e-05\"} 1"));
  CHECK(HasLine(text, "sessiond_store_commit_duration_seconds_bucket{le=\"0.0001\"} 0"));
  CHECK(HasLine(text, "sessiond_store_commit_duration_seconds_bucket{le=\"0.00025\"} 1"));
}

TEST_CASE("gauges go up and down, the live count is the caller's", "[metrics]") {
  Metrics m;
  m.SetLimits(8, 32);
  m.Add(Metrics::Gauge::PagesRunning, 1);
  m.Add(Metrics::Gauge::PagesRunning, 1);
  m.Add(Metrics::Gauge::PagesRunning, -1);
  m.Add(Metrics::Gauge::WorkersBusy, 3);
  m.Add(Metrics::Gauge::QueueLength, 2);
  std::string text = m.Render(42);
  CHECK(HasLine(text, "sessiond_pages_running 1"));
  CHECK(HasLine(text, "sessiond_workers_busy 3"));
  CHECK(HasLine(text, "sessiond_workers_max 8"));
  CHECK(HasLine(text, "sessiond_queue_length 2"));
  CHECK(HasLine(text, "sessiond_queue_max 32"));
  CHECK(HasLine(text, "# TYPE sessiond_sessions_live gauge"));
  CHECK(HasLine(text, "sessiond_sessions_live 42"));
}

TEST_CASE("GaugeScope holds a gauge of the process's metrics for its lifetime", "[metrics]") {
  auto running = [] {
    std::string text = ProcessMetrics().Render(std::nullopt);
    std::size_t at = text.find("\nsessiond_pages_running ");
    REQUIRE(at != std::string::npos);
    return std::stod(text.substr(at + 24));
  };
  double before = running();
  {
    GaugeScope scope(Metrics::Gauge::PagesRunning);
    CHECK(running() == before + 1);
  }
  CHECK(running() == before);
}

TEST_CASE("the live count is taken at most once per interval, and shared meanwhile", "[metrics]") {
  LiveCount live(std::chrono::seconds(5));
  const auto t0 = LiveCount::Clock::now();
  int counts = 0;
  std::int64_t sessions = 7;
  auto count = [&]() -> std::optional<std::int64_t> {
    ++counts;
    return sessions;
  };
  CHECK(live.Get(count, t0) == 7);
  sessions = 8;
  CHECK(live.Get(count, t0 + std::chrono::seconds(4)) == 7);
  CHECK(counts == 1);
  CHECK(live.Get(count, t0 + std::chrono::seconds(5)) == 8);
  CHECK(counts == 2);

  // A count that fails reaches its caller; the last count stays for the
  // others, and the next call due counts again.
  auto failing = []() -> std::optional<std::int64_t> { throw std::runtime_error("store down"); };
  CHECK_THROWS_WITH(live.Get(failing, t0 + std::chrono::seconds(10)), "store down");
  CHECK(live.Get(count, t0 + std::chrono::seconds(10)) == 8);
  CHECK(counts == 3);

  // While one scrape counts, another gets the last count at once.
  std::promise<void> started, release;
  auto slow = [&]() -> std::optional<std::int64_t> {
    started.set_value();
    release.get_future().wait();
    return 9;
  };
  std::optional<std::int64_t> slow_result;  // checked here: Catch2 asserts on one thread
  std::thread counting([&] { slow_result = live.Get(slow, t0 + std::chrono::seconds(20)); });
  started.get_future().wait();
  CHECK(live.Get(count, t0 + std::chrono::seconds(20)) == 8);
  CHECK(counts == 3);
  release.set_value();
  counting.join();
  CHECK(slow_result == 9);
  CHECK(live.Get(count, t0 + std::chrono::seconds(21)) == 9);
}
