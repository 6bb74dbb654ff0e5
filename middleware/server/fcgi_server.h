// The FastCGI server, its public face: opens (or inherits) the listening
// socket, receives requests on one event-loop thread, and hands each
// complete request to a pool of worker threads through a bounded queue.
//
// Why not libfcgi's accept loop: a worker there owns a connection from
// accept() to the end of the request, so 16 idle or half-sent connections
// take all 16 workers, a connection that sends nothing holds one for ever,
// and libfcgi installs its own SIGUSR1/SIGPIPE handlers. Here a worker sees
// a request only once its parameters and body have arrived whole, within
// bounds; idle and slow connections cost a descriptor and a few bytes.
//
// The parts, one file each in middleware/server/:
//   options.h     what the server is given (ServerOptions), BadSetting
//   listener.h    the listening socket: unix (owner, group, mode), TCP, inherited
//   event_loop.h  accepting connections, receiving requests, the flood eviction
//   connection.h  one connection, and the request a worker serves on it
//   work_queue.h  where a whole request waits for a worker (queue_timeout)
//   workers.h     the worker threads that run the handler
//   drain.h       the graceful stop (SIGTERM, SIGINT) and the reload (SIGHUP)
//   systemd.h     socket activation and Type=notify
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "middleware/base/request.h"
#include "middleware/server/listener.h"
#include "middleware/server/options.h"
#include "middleware/server/workers.h"

namespace sessiond {

class FcgiServer {
 public:
  // Opens the listening socket (Listener: what it throws).
  explicit FcgiServer(const ServerOptions& options);
  ~FcgiServer();  // removes the unix socket it created, if it is still the one at the path

  // For the log: where an inherited socket came from ("the socket from
  // systemd (fd 3)", "the socket on fd 0"); empty with --listen.
  const std::string& inherited_from() const { return listener_.inherited_from(); }

  // Runs the workers (each calls `make_handler` as it starts, then serves
  // requests one at a time) and the event loop on the calling thread. Returns
  // once Stop() was called and every connection accepted by then has been
  // answered. A worker whose `make_handler` threw answers 503 (logged with
  // what it threw) and calls it again at each request until it succeeds, so
  // check at start-up what must fail start-up.
  using RequestHandler = sessiond::RequestHandler;
  void Serve(const std::function<RequestHandler()>& make_handler);

  // Stops accepting: connections already accepted by the kernel are served,
  // idle ones closed, and Serve() returns. Thread-safe; async-signal-safe.
  void Stop();

  // Called on the loop thread about once a second (reaping pages' orphans).
  void SetHousekeeping(std::function<void()> task) { housekeeping_ = std::move(task); }

 private:
  ServerOptions options_;
  Listener listener_;
  int wake_fd_ = -1;           // eventfd: Stop() and finished requests wake the loop
  std::atomic<bool> stop_{false};
  std::function<void()> housekeeping_;
};

}  // namespace sessiond
