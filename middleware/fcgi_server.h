// The FastCGI server: the one place libfcgi is used. Opens the listening
// socket, runs worker threads that accept requests and hand each to a
// Handler, and drains in-flight requests on Stop().
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "middleware/request.h"

namespace sessiond {

class FcgiServer {
 public:
  // Opens `listen` ("unix:/path", "host:port", or empty for the listening
  // socket inherited on fd 0). A unix socket gets mode `socket_mode` and
  // appears at its path only once it accepts connections. Throws
  // std::runtime_error with the reason when the socket cannot be had.
  FcgiServer(const std::string& listen, unsigned socket_mode);
  ~FcgiServer();  // removes a unix socket it created

  // Runs `workers` threads; each calls `make_handler` once and then serves
  // requests with what it returned, one at a time. Returns once Stop() was
  // called and every request in flight has been answered.
  using RequestHandler = std::function<void(Request&)>;
  void Serve(int workers, const std::function<RequestHandler()>& make_handler);

  // Stops accepting; Serve() returns when requests in flight are done.
  // Thread-safe; call it from anywhere but a signal handler.
  void Stop();

 private:
  int fd_ = -1;
  std::string unix_path_;  // set when this server created a unix socket
  std::atomic<bool> stopping_{false};
};

}  // namespace sessiond
