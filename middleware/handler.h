// The request path: cookie -> load -> page -> changes -> commit -> response.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "log/log.h"
#include "middleware/cgi_response.h"
#include "middleware/config.h"
#include "middleware/request.h"
#include "store/store.h"

namespace sessiond {

// A failure that has an HTTP status; what() is the log line's reason.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& why) : std::runtime_error(why), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct Response {
  int status = 200;
  std::string reason;
  std::vector<Header> headers;
  std::string body;
};

// Thread-safety: one per worker thread; it owns that thread's store connection.
class Handler {
 public:
  // `config.pages` must exist; it is resolved once here.
  Handler(const Config& config, std::unique_ptr<SessionStore> store);

  // Serves one request completely: always writes a response and never throws.
  // A request that fails gets an error status, one log line, and no session
  // change at all.
  void Handle(Request& request);

 private:
  Response Process(Request& request);
  std::string ResolvePage(const Request& request) const;
  std::string ReadBody(Request& request) const;
  std::optional<Session> LoadSession(const Request& request);
  std::vector<std::string> PageEnvironment(const Request& request, const std::string& page,
                                           const std::optional<Session>& session) const;
  CgiResponse CheckPage(const PageResult& run, const std::string& page) const;
  Response Respond(const CgiResponse& page, const std::optional<Session>& session,
                   const CommitResult& committed, bool https) const;

  const Config& config_;
  std::string pages_root_;  // realpath of config.pages
  std::unique_ptr<SessionStore> store_;
};

}  // namespace sessiond
