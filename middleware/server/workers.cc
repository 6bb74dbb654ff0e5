#include "middleware/server/workers.h"

#include <algorithm>
#include <system_error>

#include "log/log.h"
#include "middleware/base/http.h"
#include "middleware/base/metrics.h"

namespace sessiond {

Workers::Workers(const ServerOptions& options, WorkQueue& queue, std::function<RequestHandler()> make_handler,
                 std::function<void(Connection*)> give_back)
    : options_(options), queue_(queue), make_handler_(std::move(make_handler)), give_back_(std::move(give_back)) {
  try {
    for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { Run(); });
  } catch (const std::system_error& e) {
    // No thread to be had (RLIMIT_NPROC, a cgroup's pids.max): a start-up
    // error with its reason, after the workers started so far are ended.
    const std::size_t started = threads_.size();
    Join();
    throw std::runtime_error("cannot start worker " + std::to_string(started + 1) + " of " +
                             std::to_string(options_.workers) + ": " + e.what());
  }
}

void Workers::Join() {
  queue_.Close();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Workers::Run() {
  // The server is serving already: a handler that cannot be made now (its
  // store out of reach for a moment) is made again at the next request,
  // which meanwhile get 503, rather than taking the server down with it.
  RequestHandler handle;
  std::string why_not;
  auto make = [&] {
    try {
      handle = make_handler_();
    } catch (const std::exception& e) {
      why_not = e.what();
    } catch (...) {
      why_not = "unexpected exception";
    }
  };
  auto ready = [&] {
    if (!handle) make();
    return static_cast<bool>(handle);
  };
  if (!ready()) LogLine("a worker could not start: " + why_not + "; it tries again at its next request");
  while (Connection* c = queue_.Pop()) {
    GaugeScope busy(Metrics::Gauge::WorkersBusy);
    FcgiRequest request(*c, options_.io_timeout);
    auto waited = Clock::now() - c->queued_at;
    if (WebServerLeft(c->fd)) {
      LogFailure(499, c->env_views, "the web server closed the connection before a worker took the request "
                                    "(its client went away): not run");
      ProcessMetrics().CountRequest(499);
      c->close_after = true;
    } else if (waited > options_.queue_timeout) {
      LogFailure(503, c->env_views,
                 "waited " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) +
                     " ms for a worker, more than queue_timeout");
      ProcessMetrics().CountRequest(503);
      request.Write(ErrorResponse(503));
    } else if (!ready()) {
      LogFailure(503, c->env_views, "worker not ready: " + why_not);
      ProcessMetrics().CountRequest(503);
      request.Write(ErrorResponse(503));
    } else {
      // One request's failure stays with that request: the handler
      // answers its own errors, and anything it did not catch ends here.
      try {
        handle(request);
      } catch (const std::exception& e) {
        LogFailure(500, c->env_views, std::string("unexpected: ") + e.what());
        if (!request.wrote()) {
          ProcessMetrics().CountRequest(500);
          request.Write(ErrorResponse(500));
        } else {
          c->close_after = true;  // half a response: only closing ends it
        }
      } catch (...) {
        LogFailure(500, c->env_views, "unexpected exception");
        if (!request.wrote()) {
          ProcessMetrics().CountRequest(500);
          request.Write(ErrorResponse(500));
        } else {
          c->close_after = true;
        }
      }
    }
    if (!c->close_after) request.Finish();
    if (request.broken()) {
      // nginx closes the connection as soon as it has a HEAD response's
      // head: the rest was never going to be read, and nothing was lost.
      const bool head = std::find(c->env_views.begin(), c->env_views.end(), "REQUEST_METHOD=HEAD") !=
                        c->env_views.end();
      if (!head)
        LogLine("response to " + Describe(c->env_views) +
                " not delivered: the web server closed the connection or did not take it within io_timeout");
      c->close_after = true;
    }
    give_back_(c);
  }
}

}  // namespace sessiond
