// The worker threads: where a request is served.
//
// Each of ServerOptions::workers threads makes its handler (make_handler),
// then pops one whole request at a time from the WorkQueue and serves it:
// not run (499) when the web server left while it waited; 503 when it waited
// past queue_timeout or the handler cannot be made yet; else the handler,
// whose uncaught exception fails that request only (500, or the connection
// closed after half a response). The connection then goes back to the event
// loop (give_back), which reuses or closes it.
//
// Thread-safety: built and joined by one thread (FcgiServer::Serve); the
// workers share only the queue and what give_back touches.
#pragma once

#include <functional>
#include <thread>
#include <vector>

#include "middleware/base/request.h"
#include "middleware/server/options.h"
#include "middleware/server/work_queue.h"

namespace sessiond {

using RequestHandler = std::function<void(Request&)>;

class Workers {
 public:
  // Starts the threads. A worker whose make_handler throws answers 503
  // (logged with what it threw) and calls it again at each request until it
  // succeeds. Throws std::runtime_error when a thread cannot be started
  // (RLIMIT_NPROC, a cgroup's pids.max), after ending those started.
  Workers(const ServerOptions& options, WorkQueue& queue, std::function<RequestHandler()> make_handler,
          std::function<void(Connection*)> give_back);
  ~Workers() { Join(); }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Closes the queue and waits for every worker: each ends once the queue
  // is empty.
  void Join();

 private:
  void Run();  // one worker thread

  const ServerOptions& options_;
  WorkQueue& queue_;
  std::function<RequestHandler()> make_handler_;
  std::function<void(Connection*)> give_back_;
  std::vector<std::thread> threads_;
};

}  // namespace sessiond
