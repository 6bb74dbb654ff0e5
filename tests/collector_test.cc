// The garbage collector's thread: its store is its own, opened at a sweep, so
// a database out of reach as sessiond starts costs sweeps, not the server.
#include "middleware/collector.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <sstream>
#include <thread>

#include "middleware/base/metrics.h"

using namespace sessiond;
namespace fs = std::filesystem;

namespace {

// sessiond_store_errors_total of this process, both kinds.
double StoreErrors() {
  std::istringstream in(ProcessMetrics().Render(std::nullopt));
  double total = 0;
  for (std::string l; std::getline(in, l);)
    if (l.rfind("sessiond_store_errors_total{", 0) == 0) total += std::stod(l.substr(l.rfind(' ') + 1));
  return total;
}

// Polls `done` every 10 ms for up to 20 s (a hang guard: a sweep comes every second).
template <class F>
bool Within20s(F done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace

TEST_CASE("a collector whose store cannot be opened goes on, and opens it at a later sweep", "[collector]") {
  char tmpl[] = "/tmp/sessiond-collector-test.XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  fs::path dir = tmpl;
  StoreOptions options;
  options.db = (dir / "later" / "sessions.db").string();  // its directory is not there yet
  {
    double before = StoreErrors();
    Collector collector(options, 1, 100);
    CHECK(Within20s([&] { return StoreErrors() > before; }));  // a sweep failed, logged and counted
    CHECK_FALSE(fs::exists(options.db));
    fs::create_directory(dir / "later");
    CHECK(Within20s([&] { return fs::exists(options.db); }));  // a later sweep opened it
  }
  fs::remove_all(dir);
}

// A store out of reach (a database down for longer than --gc-interval) is
// tried again at the next sweep: the collector once spun on it, reconnecting
// (and logging) hundreds of times a second until it was back.
TEST_CASE("a store that cannot be opened is tried once per sweep, not in a loop", "[collector]") {
  char tmpl[] = "/tmp/sessiond-collector-test.XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  fs::path dir = tmpl;
  StoreOptions options;
  options.db = (dir / "missing" / "sessions.db").string();  // never there
  const double before = StoreErrors();
  const auto start = std::chrono::steady_clock::now();
  {
    Collector collector(options, 1, 100);
    CHECK(Within20s([&] { return StoreErrors() - before >= 2; }));  // two sweeps failed
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // One attempt per second that passed, at most (and the first after one).
  CHECK(StoreErrors() - before <= seconds + 1);
  fs::remove_all(dir);
}

TEST_CASE("two sessionds of one host name and pid are two members", "[collector]") {
  // As two containers on the host's network, each sessiond its own pid 1.
  Member a = ThisMember("0.1.0"), b = ThisMember("0.1.0");
  CHECK(a.name != b.name);
  char host[256] = "";
  REQUIRE(::gethostname(host, sizeof host - 1) == 0);
  CHECK(a.name.rfind(std::string(host) + ":" + std::to_string(::getpid()) + ":", 0) == 0);
  CHECK(a.release == "0.1.0");
}

TEST_CASE("with a cap the collector counts the live sessions for it, at once", "[collector][new_sessions]") {
  char tmpl[] = "/tmp/sessiond-collector-test.XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  fs::path dir = tmpl;
  StoreOptions options;
  options.db = (dir / "sessions.db").string();
  {
    auto store = OpenStore(options);
    ChangeSet cs;
    cs.changes.push_back({Change::Kind::Set, "k", "v", {}});
    for (int i = 0; i < 3; ++i) store->Commit(std::nullopt, cs, static_cast<std::int64_t>(std::time(nullptr)));
  }
  NewSessionLimits limits({0, 10});
  {
    Collector collector(options, 3600, 100, {}, &limits);  // no sweep, no member: only the count wakes it
    CHECK(Within20s([&] { return limits.Estimate().has_value(); }));
  }
  CHECK(limits.Estimate() == 3);
  fs::remove_all(dir);
}
