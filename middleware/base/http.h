// What the request path and the server share about HTTP: the error that
// carries a status, reason phrases, error bodies, and how a request is named
// in the log (never by its cookie or session id).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

// A failure that has an HTTP status; what() is the log line's reason.
class HttpError : public std::runtime_error {
 public:
  // `log`: false when the cause was logged already (an app's outage is
  // logged once, not once per request it fails). `retry_after`: the seconds
  // a 503's Retry-After asks the client to wait.
  HttpError(int status, const std::string& why, bool log = true, int retry_after = 1)
      : std::runtime_error(why), status_(status), log_(log), retry_after_(retry_after) {}
  int status() const { return status_; }
  bool log() const { return log_; }
  int retry_after() const { return retry_after_; }

 private:
  int status_;
  bool log_;
  int retry_after_;
};

// The standard reason phrase for `status`, or "Unknown".
std::string_view ReasonPhrase(int status);

// A complete CGI-style response for an error: Status line, plain-text
// headers, blank line, "NNN Reason\n"; a 503 with Retry-After `retry_after`.
std::string ErrorResponse(int status, int retry_after = 1);

// "METHOD /uri" of a request whose CGI variables are `env` ("NAME=value").
std::string Describe(const std::vector<std::string_view>& env);

// Logs "STATUS METHOD /uri: why" as one line.
void LogFailure(int status, const std::vector<std::string_view>& env, std::string_view why);

}  // namespace sessiond
