// The FastCGI server: opens (or inherits) the listening socket, receives
// requests on one event-loop thread, and hands each complete request to a
// pool of worker threads through a bounded queue.
//
// Why not libfcgi's accept loop: a worker there owns a connection from
// accept() to the end of the request, so 16 idle or half-sent connections
// take all 16 workers, a connection that sends nothing holds one for ever,
// and libfcgi installs its own SIGUSR1/SIGPIPE handlers. Here a worker sees
// a request only once its parameters and body have arrived whole, within
// bounds; idle and slow connections cost a descriptor and a few bytes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <sys/types.h>

#include "middleware/base/request.h"

namespace sessiond {

struct ServerOptions {
  // "unix:/path/to.sock", "HOST:PORT" (":PORT" means 127.0.0.1:PORT), or
  // empty: the listening socket systemd passed (LISTEN_FDS, fd 3), else the
  // one inherited on fd 0 (spawn-fcgi).
  std::string listen;
  unsigned socket_mode = 0660;  // permissions of a unix socket sessiond creates
  int workers = 16;             // requests handled at once
  std::size_t queue_size = 64;  // complete requests waiting for a worker; more: 503 at once
  std::chrono::milliseconds queue_timeout{10000};  // a request that waited longer for a worker: 503
  // Open connections. Past it a new one closes the longest-idle one, else the
  // one whose request has been arriving longest (over 250 ms: answered 503),
  // else it waits in the backlog while every request is with a worker.
  std::size_t max_connections = 1024;
  std::chrono::milliseconds io_timeout{30000};     // to receive a whole request, or send a response
  std::size_t max_params_bytes = 64 * 1024;        // the FastCGI parameters of one request; more: 400
  std::size_t max_body_bytes = 1024 * 1024;        // request body; more: 413
  std::size_t body_memory = 64 * 1024;             // body bytes kept in memory; past it, a temp file
  std::string temp_dir = "/tmp";                   // where such files are made (O_TMPFILE)
};

// A setting that cannot work (a malformed --listen, a port out of range).
class BadSetting : public std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Checks `listen` as FcgiServer would take it, without binding anything: a
// well-formed address (a host that resolves, a port in range), or a unix
// socket path that fits, in a directory that exists and can be written to,
// and that holds nothing or a socket. A path where a server listens now is
// fine: the check is for settings, not for a free address. Empty (fd 0) is
// fine too. Throws BadSetting with the reason.
void CheckListenAddress(const std::string& listen);

class FcgiServer {
 public:
  // Opens the listening socket. A unix socket gets `socket_mode` and appears
  // at its path only once it accepts connections; a path that holds anything
  // but a stale socket is refused. Throws BadSetting for a malformed address,
  // more than one socket from systemd, or an inherited descriptor that is
  // not a listening socket; std::runtime_error when the socket cannot be had
  // (in use, no permission).
  explicit FcgiServer(const ServerOptions& options);
  ~FcgiServer();  // removes the unix socket it created, if it is still the one at the path

  // For the log: where an inherited socket came from ("the socket from
  // systemd (fd 3)", "the socket on fd 0"); empty with --listen.
  const std::string& inherited_from() const { return inherited_from_; }

  // Runs the workers (each calls `make_handler` as it starts, then serves
  // requests one at a time) and the event loop on the calling thread. Returns
  // once Stop() was called and every connection accepted by then has been
  // answered. A worker whose `make_handler` threw answers 503 (logged with
  // what it threw) and calls it again at each request until it succeeds, so
  // check at start-up what must fail start-up.
  using RequestHandler = std::function<void(Request&)>;
  void Serve(const std::function<RequestHandler()>& make_handler);

  // Stops accepting: connections already accepted by the kernel are served,
  // idle ones closed, and Serve() returns. Thread-safe; async-signal-safe.
  void Stop();

  // Called on the loop thread about once a second (reaping pages' orphans).
  void SetHousekeeping(std::function<void()> task) { housekeeping_ = std::move(task); }

 private:
  struct Loop;
  ServerOptions options_;
  int listen_fd_ = -1;
  bool inherited_ = false;     // fd 0 or systemd's fd 3: never unlinked, never shut down
  std::string inherited_from_;
  std::string unix_path_;      // the unix socket this server created
  dev_t unix_dev_ = 0;
  ino_t unix_ino_ = 0;
  int wake_fd_ = -1;           // eventfd: Stop() and finished requests wake the loop
  std::atomic<bool> stop_{false};
  std::function<void()> housekeeping_;

  void CloseListener();
};

}  // namespace sessiond
