#include "middleware/server/fcgi_server.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <exception>

#include "middleware/base/metrics.h"
#include "middleware/server/event_loop.h"
#include "middleware/server/work_queue.h"

namespace sessiond {

FcgiServer::FcgiServer(const ServerOptions& options) : options_(options), listener_(options_) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) ThrowSystemError("eventfd");
}

FcgiServer::~FcgiServer() {
  listener_.Close();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void FcgiServer::Stop() {
  stop_ = true;
  std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void FcgiServer::Serve(const std::function<RequestHandler()>& make_handler) {
  ProcessMetrics().SetLimits(options_.workers, options_.queue_size);
  WorkQueue queue;
  EventLoop loop(options_, listener_, queue, wake_fd_, stop_, housekeeping_);
  Workers workers(options_, queue, make_handler, [&loop](Connection* c) { loop.GiveBack(c); });
  std::exception_ptr failed;
  try {
    loop.Run();
  } catch (...) {
    failed = std::current_exception();
  }
  workers.Join();
  if (failed) std::rethrow_exception(failed);
}

}  // namespace sessiond
