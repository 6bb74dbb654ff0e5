// The app runner against an in-process FastCGI application on a unix
// socket: real records, real connections, scripted answers.
#include "middleware/runners/app_runner.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
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

#include "middleware/config.h"
#include "middleware/fastcgi/fcgi_record.h"

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
  int closed_by_app() const { return closed_by_app_; }
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
          ++closed_by_app_;
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
  std::atomic<int> accepted_{0}, closes_seen_{0}, closed_by_app_{0};
  mutable std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> connections_;
  std::vector<Received> requests_;
  std::thread acceptor_;
};

// Options with up to `n` kept connections (0: none kept).
AppOptions Kept(std::size_t n) {
  AppOptions options;
  options.connections = n;
  return options;
}

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
  AppRunner runner("shop", app.address(), Kept(4), limits);
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
  AppRunner runner("shop", app.address(), Kept(4), limits);
  for (int i = 0; i < 3; ++i) REQUIRE(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  for (int i = 0; i < 500 && app.closed_by_app() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (int i = 0; i < 3; ++i) REQUIRE(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  CHECK(app.accepted() == 2);
  CHECK(runner.pool().connections_opened() == 2);
  CHECK(runner.pool().open() == 1);
  CHECK(runner.pool().idle() == 1);
}

TEST_CASE("at most max_connections are open, requests beyond wait for one", "[app]") {
  FakeApp app([](const Received&) { return Reply{Answer("Status: 204\r\n\r\n")}; });
  PageLimits limits = Limits();
  AppRunner runner("shop", app.address(), Kept(2), limits);
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
  AppRunner runner("gone", "unix:/nonexistent/sessiond-test.sock", Kept(2), limits);
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
  AppRunner runner("slow", app.address(), Kept(2), limits);
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
    AppRunner runner("odd", app.address(), Kept(2), limits);
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
  AppRunner runner("shop", app.address(), Kept(2), limits);
  RunResult r = RunOnce(runner);
  CHECK(r.outcome == RunResult::Outcome::Exited);
  CHECK(r.errors.size() == 100);
  // A fresh connection closed without an answer is not retried.
  RunResult closed = RunOnce(runner, {"QUERY_STRING=close"});
  CHECK(closed.outcome == RunResult::Outcome::Malformed);
}

TEST_CASE("a kept connection the app closed before the request is replaced, and after a byte was sent never", "[app]") {
  // The second request on each connection: closed at once, after reading it
  // (as a worker that dies while running it).
  std::atomic<int> runs{0};
  FakeApp app([&](const Received& r) {
    ++runs;
    if (r.nth > 1) return Reply{"", true};
    return Reply{Answer("Status: 204\r\n\r\n")};
  });
  AppRunner runner("shop", app.address(), Kept(1), Limits());
  REQUIRE(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  REQUIRE(runner.pool().idle() == 1);
  RunResult r = RunOnce(runner, {}, nullptr, "a POST body");
  CHECK(r.outcome == RunResult::Outcome::Malformed);
  CHECK(r.detail.find("closed the connection before FCGI_END_REQUEST") != std::string::npos);
  CHECK(runs == 2);             // sent once, never again
  CHECK(app.accepted() == 1);   // no new connection for it
  CHECK(runner.pool().open() == 0);
}

TEST_CASE("a kept connection found closed before use is replaced by a new one", "[app]") {
  std::atomic<int> n{0};
  FakeApp app([&](const Received&) {
    Reply reply{Answer("Status: 204\r\n\r\n")};
    reply.close = ++n == 1;  // answers, then closes the kept connection
    return reply;
  });
  AppRunner runner("shop", app.address(), Kept(1), Limits());
  REQUIRE(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  // Once the app has closed it, the idle connection is seen closed before
  // the next request is written: that one goes on a new connection.
  for (int i = 0; i < 500 && app.closed_by_app() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(app.closed_by_app() == 1);
  CHECK(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  CHECK(n == 2);
  CHECK(app.accepted() == 2);
}

TEST_CASE("without kept connections each request has its own, without FCGI_KEEP_CONN, closed after it", "[app]") {
  FakeApp app([](const Received&) { return Reply{Answer("Status: 204\r\n\r\n")}; });
  AppRunner runner("php", app.address(), Kept(0), Limits());
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&] {
      for (int j = 0; j < 5; ++j)
        if (RunOnce(runner).outcome == RunResult::Outcome::Exited) ++good;
    });
  for (std::thread& t : threads) t.join();
  CHECK(good == 30);
  CHECK(app.accepted() == 30);
  CHECK(runner.pool().idle() == 0);
  for (const Received& r : app.requests()) {
    CHECK_FALSE(r.keep_conn);
    CHECK(r.nth == 1);
  }
}

TEST_CASE("a unix app whose backlog is full is waited for up to the page timeout, not unreachable", "[app]") {
  // A listener that does not accept, its backlog filled: a busy pool. The
  // runner's connect (non-blocking first) must then wait for room, not fail.
  char dir[] = "/tmp/sessiond-app-test.XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::string path = std::string(dir) + "/app.sock";
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 0) == 0);
  std::vector<int> fillers;
  for (int i = 0; i < 64; ++i) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      REQUIRE(errno == EAGAIN);
      ::close(fd);
      break;
    }
    fillers.push_back(fd);
  }
  REQUIRE(fillers.size() < 64);  // the backlog is full now
  PageLimits limits = Limits();

  SECTION("nobody makes room: timed out at the page timeout") {
    limits.timeout = std::chrono::milliseconds(200);
    AppRunner runner("full", "unix:" + path, Kept(0), limits);
    RunResult r = RunOnce(runner);
    CHECK(r.outcome == RunResult::Outcome::TimedOut);
    CHECK(r.detail.find("within page_timeout") != std::string::npos);
  }
  SECTION("room made meanwhile: the request goes through") {
    AppRunner runner("full", "unix:" + path, Kept(0), limits);
    std::thread app([&] {
      // Most often the runner is waiting for room by then; the answer is the
      // same when it is not (its connect then finds room at once).
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      for (std::size_t i = 0; i < fillers.size(); ++i) ::close(::accept(listener, nullptr, nullptr));
      pollfd p{listener, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) return;  // the runner gave up: its outcome says why
      int fd = ::accept(listener, nullptr, nullptr);  // the runner's
      char buf[4096];
      CHECK(::read(fd, buf, sizeof buf) > 0);  // its request, sent whole
      std::string answer = Answer("Status: 204\r\n\r\n");
      CHECK(::write(fd, answer.data(), answer.size()) == static_cast<ssize_t>(answer.size()));
      ::close(fd);
    });
    RunResult r = RunOnce(runner);
    app.join();
    CHECK(r.outcome == RunResult::Outcome::Exited);
  }
  for (int fd : fillers) ::close(fd);
  ::close(listener);
  fs::remove_all(dir);
}

TEST_CASE("with connections=N all busy past the wait, a request fails Busy at once", "[app]") {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false, started = false;
  FakeApp app([&](const Received& r) {
    if (r.Has("QUERY_STRING=hold")) {
      std::unique_lock lock(mu);
      started = true;
      cv.notify_all();
      cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
    }
    return Reply{Answer("Status: 204\r\n\r\n")};
  });
  AppOptions options = Kept(1);
  options.wait = std::chrono::milliseconds(50);
  AppRunner runner("php", app.address(), options, Limits());  // page_timeout 10 s
  std::thread holder([&] { CHECK(RunOnce(runner, {"QUERY_STRING=hold"}).outcome == RunResult::Outcome::Exited); });
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return started; });
  }
  RunResult busy = RunOnce(runner);
  CHECK(busy.outcome == RunResult::Outcome::Busy);
  CHECK(busy.detail.find("all 1 connections busy") != std::string::npos);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  holder.join();
  CHECK(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  CHECK(app.accepted() == 1);
}

TEST_CASE("a kept connection idle past the idle limit is closed, not reused", "[app]") {
  FakeApp app([](const Received&) { return Reply{Answer("Status: 204\r\n\r\n")}; });
  AppOptions options = Kept(2);
  options.idle_limit = std::chrono::milliseconds(0);
  AppRunner runner("php", app.address(), options, Limits());
  REQUIRE(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  REQUIRE(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  CHECK(app.accepted() == 2);
  CHECK(runner.pool().open() == 1);
}

TEST_CASE("a host name is resolved when connecting: one that does not resolve is unreachable, logged once", "[app]") {
  // .invalid never resolves (RFC 6761); it is no settings error.
  AppRunner runner("far", "app.invalid:9000", Kept(0), Limits());
  RunResult r = RunOnce(runner);
  CHECK(r.outcome == RunResult::Outcome::SpawnFailed);
  CHECK(r.detail.find("cannot resolve app.invalid") != std::string::npos);
  CHECK(r.logged);
  CHECK_THROWS_AS(AppRunner("bad", "app.invalid:0", Kept(0), Limits()), std::invalid_argument);
  CHECK_THROWS_AS(AppRunner("bad", "no-port", Kept(0), Limits()), std::invalid_argument);
}

TEST_CASE("app targets: an address and an optional connections=N", "[app]") {
  std::string address, why;
  long n = 0;
  CHECK(ParseAppTarget("unix:/run/php/php-fpm.sock", address, n, why));
  CHECK(address == "unix:/run/php/php-fpm.sock");
  CHECK(n == -1);
  CHECK(ParseAppTarget("unix:/run/php.sock,connections=5", address, n, why));
  CHECK(address == "unix:/run/php.sock");
  CHECK(n == 5);
  CHECK(ParseAppTarget("php.internal:9000,connections=0", address, n, why));
  CHECK(address == "php.internal:9000");
  CHECK(n == 0);
  CHECK(ParseAppTarget("unix:/run/a,b.sock", address, n, why));  // a comma of the path
  CHECK(address == "unix:/run/a,b.sock");
  CHECK_FALSE(ParseAppTarget("unix:/run/php.sock,connections=many", address, n, why));
  CHECK_FALSE(ParseAppTarget("php.internal:99999", address, n, why));
  CHECK_FALSE(ParseAppTarget("php.internal", address, n, why));
  // A mistyped option is no part of a socket's path: refused, not a 502 forever.
  CHECK_FALSE(ParseAppTarget("unix:/run/php.sock,connection=2", address, n, why));
  CHECK(why.find("unknown option 'connection'") != std::string::npos);
  CHECK_FALSE(ParseAppTarget("unix:/run/php.sock,foo=1,connections=2", address, n, why));
}

TEST_CASE("every request carries this process's loop token", "[app]") {
  FakeApp app([](const Received&) { return Reply{Answer("Status: 204\r\n\r\n")}; });
  AppRunner runner("php", app.address(), Kept(0), Limits());
  REQUIRE(RunOnce(runner).outcome == RunResult::Outcome::Exited);
  REQUIRE(app.requests().size() == 1);
  CHECK(LoopToken().size() == 32);
  CHECK(app.requests()[0].Has(std::string(kLoopParam) + "=" + LoopToken()));
}

// php-fpm reads a name-value pair only from within one FCGI_PARAMS record
// and resets the connection when a pair spans two; the fake application
// here parses each record on its own, as php-fpm does.
TEST_CASE("parameters past one record go out as records of whole pairs", "[app]") {
  FakeApp app([](const Received&) { return Reply{Answer("Content-Type: text/plain\r\n\r\nok")}; });
  AppRunner runner("php", app.address(), Kept(1), Limits());
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

namespace {
// A TCP listener on 127.0.0.1 that accepts nothing; its port in `port`.
int TcpListener(int backlog, int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, backlog) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}
}  // namespace

TEST_CASE("TCP connections to an app have keepalive and a user timeout", "[app]") {
  int port = 0;
  int listener = TcpListener(16, port);
  AppPool pool("tcp", "localhost:" + std::to_string(port), Kept(1));
  AppPool::Connection c = pool.Acquire(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  REQUIRE(c.fd >= 0);
  int value = 0;
  socklen_t len = sizeof value;
  CHECK((::getsockopt(c.fd, SOL_SOCKET, SO_KEEPALIVE, &value, &len) == 0 && value == 1));
  CHECK((::getsockopt(c.fd, IPPROTO_TCP, TCP_KEEPIDLE, &value, &len) == 0 && value == 10));
  CHECK((::getsockopt(c.fd, IPPROTO_TCP, TCP_KEEPCNT, &value, &len) == 0 && value == 3));
  unsigned timeout = 0;
  len = sizeof timeout;
  CHECK((::getsockopt(c.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, &len) == 0 && timeout > 0));
  pool.Release(c.fd, false);
  ::close(listener);
}

TEST_CASE("a TCP connect that gets no answer is unreachable after the connect timeout, not the page timeout", "[app]") {
  // A backlog that is full drops the next SYNs: the connect hangs, as to a
  // host that vanished.
  int port = 0;
  int listener = TcpListener(0, port);
  std::vector<int> fillers;
  for (int i = 0; i < 8; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  AppOptions options = Kept(0);
  options.connect_timeout = std::chrono::milliseconds(200);
  AppRunner runner("far", "127.0.0.1:" + std::to_string(port), options, Limits());  // page_timeout 10 s
  RunResult r = RunOnce(runner);
  CHECK(r.outcome == RunResult::Outcome::SpawnFailed);
  CHECK(r.detail.find("Connection timed out") != std::string::npos);
  for (int fd : fillers) ::close(fd);
  ::close(listener);
}
