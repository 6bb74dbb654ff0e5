// The limits on session floods: the client address as the rate counts it,
// the per-address rate (its window, its bounded table), the live-session cap,
// and what a refused request gets and logs.
#include "middleware/request_path/new_sessions.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "middleware/base/http.h"
#include "middleware/base/metrics.h"
#include "tests/captured_log.h"

using namespace sessiond;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

ClientKey Key(std::string_view text) {
  std::optional<ClientKey> key = ParseClientAddress(text);
  REQUIRE(key);
  return *key;
}

// A request that is only its parameters.
class Params final : public Request {
 public:
  explicit Params(std::vector<std::string> env) : env_(std::move(env)), views_(env_.begin(), env_.end()) {}
  const std::vector<std::string_view>& Environment() const override { return views_; }
  const SpillBuffer& Body() const override { return body_; }
  void Write(std::string_view) override {}

 private:
  std::vector<std::string> env_;
  std::vector<std::string_view> views_;
  SpillBuffer body_;
};

Params From(const std::string& address) {
  return Params({"REQUEST_METHOD=POST", "DOCUMENT_URI=/login", "REMOTE_ADDR=" + address});
}

// Admit's outcome: 0 when admitted, else the 503's Retry-After.
int Refused(NewSessionLimits& limits, const Request& request, Clock::time_point now) {
  try {
    limits.Admit(request, {}, now);
    return 0;
  } catch (const HttpError& e) {
    REQUIRE(e.status() == 503);
    CHECK_FALSE(e.log());  // Admit logs, at most once a minute
    return e.retry_after();
  }
}

double Refusals(const std::string& reason) {
  std::istringstream in(ProcessMetrics().Render(std::nullopt));
  const std::string prefix = "sessiond_new_sessions_refused_total{reason=\"" + reason + "\"} ";
  for (std::string l; std::getline(in, l);)
    if (l.rfind(prefix, 0) == 0) return std::stod(l.substr(prefix.size()));
  return 0;
}

std::size_t Count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = 0; (at = text.find(what, at)) != std::string::npos; at += what.size()) ++n;
  return n;
}

}  // namespace

TEST_CASE("a client address counts by itself when IPv4, by its /64 when IPv6", "[new_sessions]") {
  CHECK(Key("192.0.2.7") == Key("::ffff:192.0.2.7"));
  CHECK_FALSE(Key("192.0.2.7") == Key("192.0.2.8"));
  CHECK(Key("2001:db8:1:2::1") == Key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
  CHECK_FALSE(Key("2001:db8:1:2::1") == Key("2001:db8:1:3::1"));
  // An IPv4 address is not an IPv6 one whose /64 happens to match.
  CHECK_FALSE(Key("0.0.0.1") == Key("::"));
  CHECK(DescribeClient(Key("::ffff:192.0.2.7")) == "192.0.2.7");
  CHECK(DescribeClient(Key("2001:db8:1:2:3:4:5:6")) == "2001:db8:1:2::/64");
  for (std::string_view bad : {"", "unix:", "192.0.2", "192.0.2.7:80", "[2001:db8::1]", "fe80::1%eth0",
                               "192.0.2.7, 192.0.2.8", "localhost"})
    CHECK_FALSE(ParseClientAddress(bad));
}

TEST_CASE("the rate allows N at once, then one every 60/N seconds", "[new_sessions]") {
  NewSessionRate rate(3);
  const ClientKey a = Key("192.0.2.1"), b = Key("192.0.2.2");
  const Clock::time_point t0{};
  CHECK(rate.Take(a, t0) == 0s);
  CHECK(rate.Take(a, t0) == 0s);
  CHECK(rate.Take(a, t0 + 1s) == 0s);
  // The fourth waits for a third of the minute after the first's share.
  CHECK(rate.Take(a, t0 + 1s) == 19s);
  CHECK(rate.Take(a, t0 + 19s) == 1s);  // a refusal uses none of the allowance
  CHECK(rate.Take(b, t0 + 19s) == 0s);  // another address has its own
  CHECK(rate.Take(a, t0 + 20s) == 0s);
  CHECK(rate.Take(a, t0 + 20s) == 20s);
  // Idle for a minute: the whole allowance again.
  CHECK(rate.Take(a, t0 + 80s) == 0s);
  CHECK(rate.Take(a, t0 + 80s) == 0s);
  CHECK(rate.Take(a, t0 + 80s) == 0s);
  CHECK(rate.Take(a, t0 + 80s) > 0s);
}

TEST_CASE("a rate of one a minute allows one, then one a minute", "[new_sessions]") {
  NewSessionRate rate(1);
  const ClientKey a = Key("2001:db8::1");
  const Clock::time_point t0{};
  CHECK(rate.Take(a, t0) == 0s);
  CHECK(rate.Take(Key("2001:db8::2"), t0 + 1s) == 59s);  // the same /64
  CHECK(rate.Take(a, t0 + 60s) == 0s);
}

TEST_CASE("the rate's table forgets addresses whose allowance is whole, and holds at most its bound",
          "[new_sessions]") {
  const Clock::time_point t0{};
  SECTION("whole again: dropped") {
    NewSessionRate rate(2);
    rate.Take(Key("192.0.2.1"), t0);
    rate.Take(Key("192.0.2.2"), t0 + 10s);
    CHECK(rate.size() == 2);
    rate.Take(Key("192.0.2.3"), t0 + 31s);  // the first's allowance is whole from t0 + 30 s
    CHECK(rate.size() == 2);
    rate.Take(Key("192.0.2.3"), t0 + 100s);  // everyone's is whole again
    CHECK(rate.size() == 1);
  }
  SECTION("past the bound: the least recently used is dropped, and starts afresh") {
    NewSessionRate rate(1, 3);
    for (int i = 1; i <= 3; ++i) CHECK(rate.Take(Key("192.0.2." + std::to_string(i)), t0) == 0s);
    CHECK(rate.Take(Key("192.0.2.1"), t0 + 1s) > 0s);  // it is remembered, and refused
    for (int i = 4; i <= 1000; ++i) rate.Take(Key("192.0.2." + std::to_string(i % 250 + 4)), t0 + 2s);
    CHECK(rate.size() == 3);
    CHECK(rate.Take(Key("192.0.2.1"), t0 + 3s) == 0s);  // forgotten: a flood of more addresses than the bound
  }
}

TEST_CASE("the cap counts the store's count and what was admitted since it began", "[new_sessions]") {
  LiveSessionCap cap(10);
  CHECK(cap.Allows());  // no count yet: the store's own is awaited
  CHECK_FALSE(cap.Estimate());
  cap.Admitted();
  std::uint64_t mark = cap.Mark();  // a count begins; the one admitted before it is in it
  cap.Admitted();
  cap.Admitted();
  cap.Counted(8, mark);
  CHECK(cap.Estimate() == 10);
  CHECK_FALSE(cap.Allows());
  cap.Counted(4, cap.Mark());  // sessions ended meanwhile
  CHECK(cap.Estimate() == 4);
  CHECK(cap.Allows());
}

TEST_CASE("a creation withdrawn (its commit failed) gives its place under the cap back", "[new_sessions]") {
  LiveSessionCap cap(2);
  cap.Counted(0, cap.Mark());
  cap.Admitted();
  cap.Admitted();
  CHECK_FALSE(cap.Allows());
  cap.Withdrawn();  // the second stored nothing (a 413 at its commit)
  CHECK(cap.Estimate() == 1);
  CHECK(cap.Allows());
  std::uint64_t mark = cap.Mark();  // a count begins while one more is under way
  cap.Admitted();
  cap.Counted(1, mark);
  cap.Withdrawn();
  cap.Withdrawn();  // one admitted before the count: the estimate goes under it, never wraps
  CHECK(cap.Estimate() == 0);
  CHECK(cap.Allows());
}

TEST_CASE("a request would create a session when a visitor without one stores something", "[new_sessions]") {
  auto set = [](std::string k) { return Change{Change::Kind::Set, std::move(k), "v", {}}; };
  ChangeSet stores;
  stores.changes = {set("a")};
  CHECK(CreatesSession(std::nullopt, stores));
  CHECK_FALSE(CreatesSession(Session{}, stores));  // a session's write
  ChangeSet nothing_left;
  nothing_left.changes = {set("a"), Change{Change::Kind::Clear, "", "", {}}};
  CHECK_FALSE(CreatesSession(std::nullopt, nothing_left));
  ChangeSet abandon = stores;
  abandon.abandon = true;
  CHECK_FALSE(CreatesSession(std::nullopt, abandon));
  ChangeSet regenerate;
  regenerate.regenerate = true;
  CHECK_FALSE(CreatesSession(std::nullopt, regenerate));
  CHECK_FALSE(CreatesSession(std::nullopt, ChangeSet{}));
}

TEST_CASE("past the rate: 503 with Retry-After, the first refusal logged, then one line a minute",
          "[new_sessions]") {
  NewSessionLimits limits({2, 0});
  const Clock::time_point t0{};
  const double before = Refusals("rate");
  testing::CapturedLog log;
  CHECK(Refused(limits, From("192.0.2.9"), t0) == 0);
  CHECK(Refused(limits, From("192.0.2.9"), t0) == 0);
  CHECK(Refused(limits, From("192.0.2.9"), t0) == 30);
  for (int i = 1; i <= 5; ++i) CHECK(Refused(limits, From("192.0.2.9"), t0 + i * 1s) == 30 - i);
  CHECK(Refused(limits, From("192.0.2.10"), t0 + 5s) == 0);
  CHECK(Refused(limits, From("192.0.2.9"), t0 + 61s) == 0);
  CHECK(Refused(limits, From("192.0.2.9"), t0 + 61s) == 0);
  CHECK(Refused(limits, From("192.0.2.9"), t0 + 61s) == 30);  // the next line: a minute since the first
  const std::string text = log.text();
  CHECK(Count(text, "new session refused") == 2);
  CHECK(Count(text, "503 POST /login: new session refused: client 192.0.2.9 is past --new-sessions-per-minute 2") ==
        2);
  CHECK(Count(text, "5 more since the last line") == 1);
  CHECK(Refusals("rate") - before == 7);
}

TEST_CASE("the address is the web server's SESSION_CLIENT_ADDRESS, else REMOTE_ADDR, never a client's header",
          "[new_sessions]") {
  NewSessionLimits limits({1, 0});
  const Clock::time_point t0{};
  testing::CapturedLog log;
  CHECK(Refused(limits, Params({"REMOTE_ADDR=127.0.0.1", "SESSION_CLIENT_ADDRESS=2001:db8:5::1"}), t0) == 0);
  CHECK(Refused(limits, Params({"REMOTE_ADDR=127.0.0.1", "SESSION_CLIENT_ADDRESS=2001:db8:5::2"}), t0) == 60);
  CHECK(Refused(limits, Params({"REMOTE_ADDR=127.0.0.1", "SESSION_CLIENT_ADDRESS=2001:db8:6::1"}), t0) == 0);
  CHECK(Refused(limits, Params({"REMOTE_ADDR=127.0.0.1", "SESSION_CLIENT_ADDRESS="}), t0) == 0);  // empty: not sent
  CHECK(Refused(limits, Params({"REMOTE_ADDR=127.0.0.2", "HTTP_SESSION_CLIENT_ADDRESS=192.0.2.1"}), t0) == 0);
  CHECK(Refused(limits, Params({"REMOTE_ADDR=127.0.0.2", "HTTP_SESSION_CLIENT_ADDRESS=192.0.2.2"}), t0) == 60);
  // No IP address in REMOTE_ADDR (a client on nginx's unix socket): all such clients are one.
  NewSessionLimits unix_clients({1, 0});
  CHECK(Refused(unix_clients, Params({"REMOTE_ADDR=unix:"}), t0) == 0);
  CHECK(Refused(unix_clients, Params({}), t0) == 60);
  try {
    limits.Admit(Params({"REMOTE_ADDR=127.0.0.3", "SESSION_CLIENT_ADDRESS=192.0.2.1, 10.0.0.1"}), {}, t0);
    FAIL("a list of addresses was taken");
  } catch (const HttpError& e) {
    CHECK(e.status() == 500);
    CHECK(std::string(e.what()).find("SESSION_CLIENT_ADDRESS '192.0.2.1, 10.0.0.1' is not understood") == 0);
  }
  const std::string text = log.text();
  CHECK(text.find("new session refused: client 2001:db8:5::/64 is past") != std::string::npos);
  CHECK(text.find("new session refused: client with no IP address in REMOTE_ADDR is past") != std::string::npos);
}

TEST_CASE("at the cap: 503 with Retry-After, before the rate is asked", "[new_sessions]") {
  NewSessionLimits limits({1, 3});
  const Clock::time_point t0{};
  const double before = Refusals("max_sessions");
  testing::CapturedLog log;
  // No count yet: the first request's own, once.
  int counts = 0;
  auto count = [&counts]() -> std::optional<std::int64_t> {
    ++counts;
    return 1;
  };
  limits.Admit(From("192.0.2.1"), count, t0);
  limits.Admit(From("192.0.2.2"), count, t0);
  CHECK(counts == 1);
  CHECK(limits.Estimate() == 3);
  CHECK(Refused(limits, From("192.0.2.3"), t0) == NewSessionLimits::kFullRetryAfter);
  // Sessions ended: 192.0.2.3 was refused by the cap, its allowance is whole.
  limits.Counted(1, limits.Mark());
  CHECK(Refused(limits, From("192.0.2.3"), t0) == 0);
  CHECK(Refusals("max_sessions") - before == 1);
  CHECK(log.text().find("new session refused: the store holds about 3 live sessions, --max-sessions 3") !=
        std::string::npos);
}
