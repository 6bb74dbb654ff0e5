// The app runner against an in-process FastCGI application on a unix
// socket: real records, real connections, scripted answers.
#include "middleware/app_runner.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "middleware/fcgi_record.h"

using namespace sessiond;
namespace fs = std::filesystem;

namespace {

// One request as the application received it.
struct Received {
  std::vector<std::string> params;
  std::string stdin_bytes;
  bool keep_conn = false;
  int nth = 0;  // 1 for the first request on its connection, 2 for the next...
  bool Has(const std::string& kv) const { return std::find(params.begin(), params.end(), kv) != params.end(); }
};

// What the application does with a request: the bytes it sends back, and
// whether it then closes the connection. An empty reply with wait_for_close
// set holds the request until sessiond closes the connection.
struct Reply {
  std::string bytes;
  bool close = false;
  bool wait_for_close = false;
};

std::string Answer(std::string_view stdout_bytes, std::string_view stderr_bytes = {}, std::uint8_t protocol = 0) {
  std::string out;
  if (!stderr_bytes.empty()) fcgi::AppendRecords(out, fcgi::kStderr, 1, stderr_bytes);
  if (!stdout_bytes.empty()) fcgi::AppendRecords(out, fcgi::kStdout, 1, stdout_bytes);
  fcgi::AppendRecords(out, fcgi::kStdout, 1, {});
  fcgi::AppendEndRequest(out, 1, 0, static_cast<fcgi::ProtocolStatus>(protocol));
  return out;
}

class FakeApp {
 public:
  using Script = std::function<Reply(const Received&)>;
  explicit FakeApp(Script script) : script_(std::move(script)) {
    char tmpl[] = "/tmp/sessiond-app-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir_ = tmpl;
    path_ = (dir_ / "app.sock").string();
    listen_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    REQUIRE(::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_, 64) == 0);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~FakeApp() {
    stop_ = true;
    ::shutdown(listen_, SHUT_RDWR);
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : connections_) t.join();
    ::close(listen_);
    fs::remove_all(dir_);
  }
  std::string address() const { return "unix:" + path_; }
  int accepted() const { return accepted_; }
  int closes_seen() const { return closes_seen_; }
  std::vector<Received> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Accept() {
    for (;;) {
      int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      if (stop_) { ::close(fd); return; }
      ++accepted_;
      std::lock_guard lock(mu_);
      fds_.push_back(fd);
      connections_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  // Requests on one connection, one at a time, until sessiond closes it.
  void Serve(int fd) {
    std::string in;
    Received request;
    int served = 0;
    char buf[65536];
    for (;;) {
      fcgi::Record record;
      std::size_t used = 0;
      while (fcgi::ParseRecord(in, record, used) != fcgi::Parse::kRecord) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, static_cast<std::size_t>(n));
      }
      std::string content(record.content);
      in.erase(0, used);
      if (record.type == fcgi::kBeginRequest) {
        fcgi::BeginRequest begin;
        fcgi::ParseBeginRequest(content, begin);
        request = Received{};
        request.keep_conn = begin.keep_conn;
        request.nth = ++served;
      } else if (record.type == fcgi::kParams) {
        fcgi::ParseNameValues(content, request.params);
      } else if (record.type == fcgi::kStdin && !content.empty()) {
        request.stdin_bytes += content;
      } else if (record.type == fcgi::kStdin) {
        {
          std::lock_guard lock(mu_);
          requests_.push_back(request);
        }
        Reply reply = script_(request);
        if (reply.wait_for_close) {
          while (::read(fd, buf, sizeof buf) > 0) {
          }
          ++closes_seen_;
          return;
        }
        for (std::string_view rest = reply.bytes; !rest.empty();) {
          ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
          if (n <= 0) return;
          rest.remove_prefix(static_cast<std::size_t>(n));
        }
        if (reply.close || !request.keep_conn) {
          ::shutdown(fd, SHUT_RDWR);
          return;
        }
      }
    }
  }

  Script script_;
  fs::path dir_;
  std::string path_;
  int listen_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0}, closes_seen_{0};
  mutable std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> connections_;
  std::vector<Received> requests_;
  std::thread acceptor_;
};

PageLimits Limits() {
  PageLimits limits;
  limits.timeout = std::chrono::milliseconds(10000);
  limits.output_memory = 1024;
  return limits;
}

RunResult RunOnce(const AppRunner& runner, std::vector<std::string> env = {}, const Session* session = nullptr,
                  std::string body = {}) {
  SpillBuffer b(1024);
  b.Append(body);
  RunInput input;
  input.env = std::move(env);
  input.session = session;
  input.body = &b;
  return runner.Run(input);
}

}  // namespace

TEST_CASE("an app gets the variables, the session and the body, and answers", "[app]") {
  FakeApp app([](const Received& r) {
    return Reply{Answer("Content-Type: text/plain\r\n\r\n" + std::string(5000, 'o') + r.stdin_bytes.substr(0, 10),
                        "line one\nline two\n")};
  });
  PageLimits limits = Limits();
  AppRunner runner("shop", app.address(), 4, limits);
  Session session;
  session.id = "the-id";
  session.items = {{"user", "ann"}, {"odd key", "a&b"}};
  std::string body(200000, 'b');  // past the body's memory: read back from its file
  RunResult r = RunOnce(runner, {"SCRIPT_FILENAME=/srv/app/index.php", "PATH_INFO=/x"}, &session, body);
  REQUIRE(r.outcome == RunResult::Outcome::Exited);
  CHECK(r.exit_code == 0);
  CHECK(r.output.spilled());  // past output_memory
  CHECK(r.output.size() == 28 + 5000 + 10);
  CHECK(r.errors == "line one\nline two\n");
  REQUIRE(app.requests().size() == 1);
  Received got = app.requests()[0];
  CHECK(got.keep_conn);
  CHECK(got.stdin_bytes == body);
  CHECK(got.Has("SCRIPT_FILENAME=/srv/app/index.php"));
  CHECK(got.Has("PATH_INFO=/x"));
  CHECK(got.Has("HTTP_SESSION=odd%20key=a%26b&user=ann"));
  CHECK(got.Has("SESSION_VAR_user=ann"));
  CHECK(got.Has("SESSION_ID=the-id"));
  CHECK(got.Has("SESSION_NEW=0"));
}

TEST_CASE("connections are kept and reused, and reopened when the app closed one", "[app]") {
  std::atomic<int> n{0};
  FakeApp app([&](const Received&) {
    Reply reply{Answer("Status: 204\r\n\r\n")};
    reply.close = ++n == 3;  // the third answer closes its connection
    return reply;
  });
  PageLimits limits = Limits();
  AppRunner runner("shop", app.address(), 4, limits);
  for (int i = 0; i < 6; ++i) REQUIRE(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  CHECK(app.accepted() == 2);
  CHECK(runner.pool().connections_opened() == 2);
  CHECK(runner.pool().open() == 1);
  CHECK(runner.pool().idle() == 1);
}

TEST_CASE("at most max_connections are open, requests beyond wait for one", "[app]") {
  FakeApp app([](const Received&) { return Reply{Answer("Status: 204\r\n\r\n")}; });
  PageLimits limits = Limits();
  AppRunner runner("shop", app.address(), 2, limits);
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      for (int j = 0; j < 20; ++j)
        if (RunOnce(runner).outcome == RunResult::Outcome::Exited) ++good;
    });
  for (std::thread& t : threads) t.join();
  CHECK(good == 160);
  CHECK(app.accepted() <= 2);
  CHECK(runner.pool().open() <= 2);
}

TEST_CASE("an app that is not there is unreachable", "[app]") {
  PageLimits limits = Limits();
  AppRunner runner("gone", "unix:/nonexistent/sessiond-test.sock", 2, limits);
  RunResult r = RunOnce(runner);
  CHECK(r.outcome == RunResult::Outcome::SpawnFailed);
  CHECK(r.detail.find("connect to unix:/nonexistent/sessiond-test.sock") != std::string::npos);
  CHECK(runner.pool().open() == 0);
}

TEST_CASE("an app slower than the time limit times out and its connection is closed", "[app]") {
  FakeApp app([](const Received&) {
    Reply reply;
    reply.wait_for_close = true;
    return reply;
  });
  PageLimits limits = Limits();
  limits.timeout = std::chrono::milliseconds(100);
  AppRunner runner("slow", app.address(), 2, limits);
  RunResult r = RunOnce(runner);
  CHECK(r.outcome == RunResult::Outcome::TimedOut);
  CHECK(runner.pool().open() == 0);
  for (int i = 0; i < 500 && app.closes_seen() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(app.closes_seen() == 1);
}

TEST_CASE("malformed answers, refusals and oversized output fail and drop the connection", "[app]") {
  using O = RunResult::Outcome;
  std::string other_request;
  fcgi::AppendRecords(other_request, fcgi::kStdout, 2, "x");
  std::string unknown_type;
  fcgi::AppendUnknownType(unknown_type, 42);
  std::string half = Answer("Status: 200\r\n\r\nhello").substr(0, 12);
  struct Case {
    std::string bytes;
    O outcome;
    std::string detail;
  };
  std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\n\r\n", O::Malformed, "not a FastCGI 1.0 record"},
      {other_request, O::Malformed, "for request 2"},
      {unknown_type, O::Malformed, "type 11"},
      {Answer("Status: 200\r\n\r\n", {}, fcgi::kOverloaded), O::Malformed, "FCGI_OVERLOADED"},
      {Answer("Status: 200\r\n\r\n", {}, fcgi::kCantMpxConn), O::Malformed, "protocol status 1"},
      {half, O::Malformed, "closed the connection before FCGI_END_REQUEST"},
      {Answer("Status: 200\r\n\r\n" + std::string(3000, 'x')), O::OutputTooLarge, ""},
  };
  for (const Case& c : cases) {
    FakeApp app([&](const Received&) { return Reply{c.bytes, true}; });
    PageLimits limits = Limits();
    limits.max_output = 2000;
    AppRunner runner("odd", app.address(), 2, limits);
    RunResult r = RunOnce(runner);
    CHECK(r.outcome == c.outcome);
    CHECK(r.detail.find(c.detail) != std::string::npos);
    CHECK(runner.pool().open() == 0);
  }
}

TEST_CASE("an app's stderr is kept up to max_stderr, a closed connection before any answer is a failure", "[app]") {
  FakeApp app([](const Received& r) {
    if (r.Has("QUERY_STRING=close")) return Reply{"", true};
    return Reply{Answer("Status: 204\r\n\r\n", std::string(10000, 'e'))};
  });
  PageLimits limits = Limits();
  limits.max_stderr = 100;
  AppRunner runner("shop", app.address(), 2, limits);
  RunResult r = RunOnce(runner);
  CHECK(r.outcome == RunResult::Outcome::Exited);
  CHECK(r.errors.size() == 100);
  // A fresh connection closed without an answer is not retried.
  RunResult closed = RunOnce(runner, {"QUERY_STRING=close"});
  CHECK(closed.outcome == RunResult::Outcome::Malformed);
}

TEST_CASE("a retry after a kept connection failed takes a new connection, not another idle one", "[app]") {
  // Each connection serves one request, and closes at the next without a
  // word (as libfcgi does when the previous request left stdin unread).
  std::mutex mu;
  std::condition_variable cv;
  int first = 0;
  FakeApp app([&](const Received& r) {
    if (r.nth > 1) return Reply{"", true};
    std::unique_lock lock(mu);
    ++first;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return first >= 2; });  // two connections open at once
    return Reply{Answer("Status: 204\r\n\r\n")};
  });
  PageLimits limits = Limits();
  AppRunner runner("shop", app.address(), 4, limits);
  std::thread other([&] { CHECK(RunOnce(runner).outcome == RunResult::Outcome::Exited); });
  CHECK(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  other.join();
  REQUIRE(runner.pool().idle() == 2);
  CHECK(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  CHECK(app.accepted() == 3);
}

// php-fpm reads a name-value pair only from within one FCGI_PARAMS record
// and resets the connection when a pair spans two; the fake application
// here parses each record on its own, as php-fpm does.
TEST_CASE("parameters past one record go out as records of whole pairs", "[app]") {
  FakeApp app([](const Received&) { return Reply{Answer("Content-Type: text/plain\r\n\r\nok")}; });
  AppRunner runner("php", app.address(), 1, Limits());
  Session session;
  session.id = "the-id";
  session.items = {{"a", std::string(30000, 'x')}, {"b", std::string(30000, 'y')}};
  RunResult r = RunOnce(runner, {"SCRIPT_FILENAME=/srv/app/index.php"}, &session, "");
  REQUIRE(r.outcome == RunResult::Outcome::Exited);
  REQUIRE(app.requests().size() == 1);
  Received got = app.requests()[0];
  CHECK(got.Has("HTTP_SESSION=a=" + std::string(30000, 'x') + "&b=" + std::string(30000, 'y')));
  CHECK(got.Has("SESSION_VAR_a=" + std::string(30000, 'x')));
  CHECK(got.Has("SESSION_VAR_b=" + std::string(30000, 'y')));
  CHECK(got.Has("SESSION_ID=the-id"));
  CHECK(got.Has("SCRIPT_FILENAME=/srv/app/index.php"));
}
