// One connection from the web server, and the request a worker serves on it.
//
// A Connection is owned by the event loop (event_loop.h), which receives a
// request into it record by record. Once the request is whole it is `busy`:
// queued (work_queue.h) or with a worker (workers.h), and then only that
// worker touches it until it gives it back to the loop; the loop does not
// watch its descriptor meanwhile. That hand-over is the only
// synchronisation: nothing here locks.
//
// FcgiRequest is the Request (middleware/base/request.h) the handler sees:
// the parameters and body as received, the response framed as FCGI_STDOUT
// records and sent as it is written. Sending never throws: a web server that
// is gone or too slow marks the request broken().
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "middleware/base/request.h"
#include "middleware/base/spill_buffer.h"

namespace sessiond {

using Clock = std::chrono::steady_clock;

struct Connection {
  Connection(int f, Clock::time_point now, std::chrono::milliseconds io_timeout)
      : fd(f), deadline(now + io_timeout), idle_since(now) {}
  ~Connection();  // closes fd
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd;
  Clock::time_point deadline;    // the request must have arrived whole by then
  Clock::time_point idle_since;  // accepted, or its last response sent
  Clock::time_point arriving_since;  // the first byte of the request being received came
  std::string in;              // received bytes not yet parsed (at most one partial record)
  bool served = false;         // it has served a request: now an idle keep-alive connection
  bool busy = false;           // queued or with a worker
  bool watched = false;        // in the loop's epoll set (event_loop.cc: StartWatching)

  // The request being received or served; id 0: none.
  std::uint16_t id = 0;
  bool keep = false;  // FCGI_KEEP_CONN: the web server reuses the connection
  bool params_done = false;
  std::string params;  // FCGI_PARAMS bytes, until their end
  std::vector<std::string> env;
  std::vector<std::string_view> env_views;
  std::optional<SpillBuffer> body;
  std::optional<std::size_t> declared_length;  // CONTENT_LENGTH, when sent
  Clock::time_point queued_at;
  bool close_after = false;  // set by the worker: the connection cannot be reused

  void ResetRequest();
};

// Sends all of `bytes` on a non-blocking socket, waiting for room until
// `deadline`. False when the peer is gone or too slow.
bool SendAll(int fd, std::string_view bytes, Clock::time_point deadline);

// Whether the web server has closed its end of `fd` (or it failed) while
// the request waited for a worker: nginx does when its client went away
// (fastcgi_ignore_client_abort off, the default). Running the page then
// would do its work, POSTs included, for nobody, and a client that sends and
// hangs up at once could keep every worker busy that way. (A web server that
// only half-closes after sending a request counts as gone too: neither
// nginx nor Apache does.)
bool WebServerLeft(int fd);

// The request a worker serves: parameters and body as received; the response
// is framed as FCGI_STDOUT records and sent as it is written, 32 KiB at a time.
class FcgiRequest final : public Request {
 public:
  FcgiRequest(Connection& c, std::chrono::milliseconds io_timeout);
  const std::vector<std::string_view>& Environment() const override { return c_.env_views; }
  const SpillBuffer& Body() const override { return *body_; }
  void Write(std::string_view bytes) override;

  bool wrote() const { return wrote_; }
  bool broken() const { return broken_; }  // the web server did not take all of it

  // Ends the response: the rest of the output, the end of FCGI_STDOUT and
  // FCGI_END_REQUEST.
  void Finish();

 private:
  void Flush();
  void Send(std::string_view bytes);

  Connection& c_;
  std::chrono::milliseconds io_timeout_;
  const SpillBuffer* body_;
  std::string pending_;
  std::optional<Clock::time_point> deadline_;
  bool wrote_ = false;
  bool broken_ = false;
};

}  // namespace sessiond
