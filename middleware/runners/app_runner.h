// The runner that forwards a request to a persistent FastCGI application
// (php-fpm, or any FastCGI responder), sessiond being its FastCGI client:
// the cleaned variables (SCRIPT_FILENAME and the like as the web server sent
// them, since the application finds its own scripts) with the session
// injected as for pages (always in HTTP_SESSION: FastCGI parameters have no
// 128 KiB limit), the body streamed as FCGI_STDIN, the application's
// FCGI_STDOUT kept as a page's output (in memory up to output_memory, then in
// a temporary file), its FCGI_STDERR kept for the log (up to max_stderr).
//
// Failures, as the handler maps them: the application unreachable (refused,
// no socket, a host name that does not resolve, a TCP connect that overran
// kConnectTimeout): SpawnFailed (502), logged once per outage by the runner
// (`logged`), with one more line when it answers again; not done within
// page_timeout: TimedOut (504); every kept connection busy for longer than
// `wait` (--queue-timeout): Busy (503); more than max_output bytes of stdout:
// OutputTooLarge (502); malformed records, a record of another request or of
// a type an application does not send, the connection closed before
// FCGI_END_REQUEST, or an FCGI_END_REQUEST whose protocol status is not
// FCGI_REQUEST_COMPLETE: Malformed (502). After any failure the connection is
// closed, never reused.
//
// Connections, per application (--app NAME=ADDRESS[,connections=N]):
// - connections = 0 (the default): nothing is kept. Each request opens its
//   own connection, without FCGI_KEEP_CONN, and it is closed after the
//   answer, as nginx does towards php-fpm by default. A request then waits
//   only for a free worker of the application (in its listen backlog), so a
//   pool of any size serves a burst of any size.
// - connections = N: at most N open, kept (FCGI_KEEP_CONN) and reused one
//   request at a time each; a request that finds all N busy waits for one up
//   to `wait`, then fails Busy. php-fpm gives each kept connection a worker
//   of its own for as long as it stays open, idle or not: N must not exceed
//   the pool's workers (pm.max_children), or a connection past them waits in
//   the backlog behind idle pinned workers until the page timeout.
//   A kept connection idle for longer than kIdleLimit is closed, not reused.
//
// No replays: a request is sent again only when the application cannot have
// seen it. A kept connection found closed before the first byte of a request
// is written is dropped and another taken; once a byte was written, a
// connection closed or reset without an answer is Malformed (502), never
// retried (the application may have run the request: a POST must not run
// twice).
//
// Host names are resolved when connecting (cached for kResolveCache), so an
// application whose name does not resolve yet is a 502 until it does, with
// no restart. TCP connections have keepalive (kKeepIdle, kKeepInterval,
// kKeepCount) and TCP_USER_TIMEOUT, so a vanished host fails a kept
// connection instead of hanging it.
//
// Every request carries the parameter kLoopParam with this process's
// LoopToken(): a request that arrives with it has come back to the sessiond
// that forwarded it (an --app that reaches sessiond itself), which the
// handler answers with 508 at once instead of waiting for itself.
//
// Thread-safety: Run() may be called from every worker at once.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "middleware/runners/page_runner.h"
#include "middleware/runners/runner.h"

namespace sessiond {

// How connections to one application are made and kept.
struct AppOptions {
  std::size_t connections = 0;                  // kept, at most; 0: none kept, one per request
  std::chrono::milliseconds wait{10000};        // for a busy kept connection, then Busy
  std::chrono::milliseconds connect_timeout{3000};  // a TCP connect; then unreachable
  std::chrono::milliseconds idle_limit{15000};  // a kept connection idle longer is closed
  std::chrono::milliseconds resolve_cache{5000};    // a host name's addresses are kept this long
};

// The connections to one application.
class AppPool {
 public:
  // `address`: "unix:PATH" or "HOST:PORT" (checked now, the host resolved
  // when connecting); throws std::invalid_argument when it is malformed.
  // `name`: for the log lines of an outage.
  AppPool(std::string name, const std::string& address, const AppOptions& options);
  ~AppPool();  // closes the idle connections; none may be in use
  AppPool(const AppPool&) = delete;
  AppPool& operator=(const AppPool&) = delete;

  struct Connection {
    int fd = -1;           // connected, O_NONBLOCK; -1: failed, see below
    bool reused = false;   // it served a request before
    enum class Failure { kNone, kTimedOut, kBusy, kUnreachable } failure = Failure::kNone;
    bool logged = false;   // kUnreachable: the outage is logged (once, when it began)
    std::string why;       // for the log
  };
  // A kept idle connection still open (none older than idle_limit), else a
  // new one (when connections > 0, once fewer are open), waiting for that up
  // to options.wait (kBusy) or `deadline` (kTimedOut), whichever comes first.
  Connection Acquire(std::chrono::steady_clock::time_point deadline);
  // Gives a connection back: kept for reuse (only when connections > 0), or closed.
  void Release(int fd, bool reusable);

  bool keeps() const { return options_.connections > 0; }
  std::size_t connections_opened() const { return opened_; }
  std::size_t open() const;
  std::size_t idle() const;
  const std::string& address() const { return address_; }

 private:
  int Connect(std::chrono::steady_clock::time_point deadline, Connection& c);
  // The addresses to try: the unix socket, or the host's, resolved at most
  // once per resolve_cache. False with `why` set when the host does not resolve.
  bool Addresses(std::vector<sockaddr_storage>& out, std::vector<socklen_t>& lens, std::string& why);
  // Logs one line when the application becomes unreachable and one when it
  // answers again.
  void Reachable(bool up, const std::string& why);

  std::string name_, address_, host_, port_;
  AppOptions options_;
  sockaddr_storage unix_{};  // when address_ is unix:PATH
  bool is_unix_ = false;
  mutable std::mutex mu_;
  std::condition_variable freed_;
  struct Idle {
    int fd;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<Idle> idle_;  // most recently used last
  std::size_t open_ = 0;    // kept mode: idle, in use, or being connected
  std::atomic<std::size_t> opened_{0};
  std::mutex resolve_mu_;
  std::vector<sockaddr_storage> resolved_;
  std::vector<socklen_t> resolved_len_;
  std::chrono::steady_clock::time_point resolved_at_{};
  std::mutex state_mu_;
  std::atomic<bool> down_{false};  // the last connect failed (and was logged); changed under state_mu_
};

class AppRunner : public Runner {
 public:
  // `limits`: page_timeout, max_output_bytes, page_stderr_bytes,
  // output_memory and temp_dir, as for pages.
  AppRunner(std::string name, const std::string& address, const AppOptions& options, const PageLimits& limits);
  std::string Describe() const override { return "app " + name_; }
  RunResult Run(const RunInput& input) const override;
  AppPool& pool() const { return pool_; }

 private:
  std::string name_;
  mutable AppPool pool_;
  PageLimits limits_;  // a copy: the runner outlives any temporary it was given
};

}  // namespace sessiond
