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
// no socket): SpawnFailed (502); not done within page_timeout, waiting for a
// connection included: TimedOut (504); more than max_output bytes of stdout:
// OutputTooLarge (502); malformed records, a record of another request or of
// a type an application does not send, the connection closed before
// FCGI_END_REQUEST, or an FCGI_END_REQUEST whose protocol status is not
// FCGI_REQUEST_COMPLETE: Malformed (502). After any failure the connection is
// closed, never reused; the next request opens a new one.
//
// Connections are kept open (FCGI_KEEP_CONN) and reused, one request at a
// time each (no multiplexing), at most `max_connections` open per
// application; a request that finds them all busy waits for one, within its
// page_timeout. An idle connection the application closed meanwhile is
// noticed before use, and a reused connection that the application closes
// before answering anything is retried once on a new connection (libfcgi
// closes a kept connection whose previous request left stdin unread).
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
#include <vector>

#include "middleware/page_runner.h"
#include "middleware/runner.h"

namespace sessiond {

// The connections to one application: at most `max_connections` open, the
// idle ones kept for the next request.
class AppPool {
 public:
  // `address`: "unix:PATH" or "HOST:PORT", resolved now. Throws
  // std::invalid_argument when it is malformed or the host does not resolve.
  AppPool(const std::string& address, std::size_t max_connections);
  ~AppPool();  // closes the idle connections; none may be in use
  AppPool(const AppPool&) = delete;
  AppPool& operator=(const AppPool&) = delete;

  // A connected, blocking-free (O_NONBLOCK) socket: an idle one still open,
  // else a new one once fewer than max_connections are open, waiting for
  // that until `deadline`. Returns -1 with `error` set on failure (ETIMEDOUT:
  // the deadline passed; else connect()'s errno). `reused`: it served a
  // request before. `fresh`: a new connection, never an idle one.
  int Acquire(std::chrono::steady_clock::time_point deadline, bool& reused, int& error, bool fresh = false);
  // Gives a connection back: kept for reuse, or closed.
  void Release(int fd, bool reusable);

  // For the tests and the log.
  std::size_t connections_opened() const { return opened_; }
  std::size_t open() const;
  std::size_t idle() const;
  const std::string& address() const { return address_; }

 private:
  int Connect(std::chrono::steady_clock::time_point deadline, int& error) const;

  std::string address_;
  std::size_t max_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::vector<int> idle_;  // most recently used last
  std::size_t open_ = 0;   // idle, in use, or being connected
  std::atomic<std::size_t> opened_{0};
};

class AppRunner : public Runner {
 public:
  // `limits`: page_timeout, max_output_bytes, page_stderr_bytes,
  // output_memory and temp_dir, as for pages; it must outlive the runner.
  AppRunner(std::string name, const std::string& address, std::size_t max_connections, const PageLimits& limits);
  std::string Describe() const override { return "app " + name_; }
  RunResult Run(const RunInput& input) const override;
  AppPool& pool() const { return pool_; }

 private:
  std::string name_;
  mutable AppPool pool_;
  PageLimits limits_;  // a copy: the runner outlives any temporary it was given
};

}  // namespace sessiond
