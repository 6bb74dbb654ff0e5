// What serves a request once the handler has its session: a runner. Two
// kinds: a page (a CGI program run for this request, page_runner.h) and a
// persistent FastCGI application that sessiond forwards the request to
// (app_runner.h). The handler picks one (SESSIOND_APP, set by the web
// server, names an application; else SCRIPT_FILENAME names a page), hands it
// the cleaned variables, the session and the body, and treats every outcome
// the same way: the output is a CGI response whose X-Session-* headers say
// what to change, and a run that failed keeps no change.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "middleware/base/spill_buffer.h"
#include "store/session.h"

namespace sessiond {

// A failing run is an expected event: its outcome, never an exception.
struct RunResult {
  enum class Outcome {
    Exited,          // ran to the end; `exit_code` says how it went (an app's appStatus)
    Signaled,        // a page killed by signal `exit_code`
    TimedOut,        // overran the time limit: the page's group was killed, the app's connection closed
    OutputTooLarge,  // wrote more than max_output: the same
    SpawnFailed,     // a page that could not be started (`exit_code` is the errno), an app not reachable
    Malformed,       // an app that broke the FastCGI protocol or refused the request (`detail` says how)
    Busy,            // an app whose every kept connection stayed busy past its wait (503)
  };
  Outcome outcome = Outcome::SpawnFailed;
  int exit_code = 0;
  SpillBuffer output;  // stdout
  std::string errors;  // stderr, up to max_stderr bytes
  std::string detail;  // for the log: why it failed, when the outcome alone does not say
  bool logged = false; // the runner logged this failure already (an app's outage, once): no line per request
};

// What every runner is given.
struct RunInput {
  // The web server's variables ("NAME=value"), cleaned (CleanEnvironment):
  // nothing a client could send poses as the session.
  std::vector<std::string> env;
  const Session* session = nullptr;  // null: a visitor without a session
  // The route's SESSION_MODE is off: the runner passes no session variables
  // at all (no HTTP_SESSION, SESSION_ID, SESSION_NEW, SESSION_VAR_*), only
  // the SESSION_MODE=off that `env` holds (every route's mode is there).
  bool session_off = false;
  const SpillBuffer* body = nullptr; // the request body (never null)
};

class Runner {
 public:
  virtual ~Runner() = default;
  // How log lines name it: "page /srv/pages/home", "app shop".
  virtual std::string Describe() const = 0;
  // Runs the request; safe to call from several threads at once.
  virtual RunResult Run(const RunInput& input) const = 0;
};

// The persistent applications by name (--app NAME=...), which SESSIOND_APP
// picks.
using AppRunners = std::map<std::string, std::unique_ptr<Runner>, std::less<>>;

// The web server's variables as every runner gets them: each well-formed
// "NAME=value" once (the first one counts, as for Request::Param), without
// those nobody but sessiond may set: HTTP_SESSION (a client's "Session:"
// header), SESSION_* (SESSION_ID, SESSION_VAR_...), HTTP_PROXY (httpoxy: a
// client's "Proxy:" header) and SESSIOND_APP (which the web server sets for
// sessiond alone). The web server's SESSION_MODE and the route's other
// SESSION_* parameters go too: the handler adds SESSION_MODE as it read it,
// and SESSION_STATUS (handler.h) on every route that is not off.
std::vector<std::string> CleanEnvironment(const std::vector<std::string_view>& environment);

// The parameter, and its value for this process (random, made once), that
// marks a request sessiond forwarded to an application (app_runner.h): one
// that arrives with it has come back to the sessiond that sent it.
inline constexpr std::string_view kLoopParam = "SESSIOND_LOOP";
const std::string& LoopToken();

// Appends the session as a runner passes it on: HTTP_SESSION (every item,
// percent-encoded, a JSON item as its JSON text: mod_session's format),
// SESSION_VAR_<key> for each key that is an identifier and whose value has
// no NUL, SESSION_TYPE_<key>=json for each such key whose item is JSON,
// SESSION_TYPES (the keys of the JSON items, percent-encoded and joined by
// '&', in key order; absent when there is none), SESSION_ID and SESSION_NEW.
// A variable longer than `max_variable` bytes ("NAME=value") is left out;
// when that is HTTP_SESSION, the text of a session file is returned instead
// so the caller can deliver it otherwise: HTTP_SESSION's value, and when
// some item is JSON a newline and SESSION_TYPES's value (which no encoded
// text contains). Else the result is empty. `off` (an off route): nothing
// is appended, and the result is empty.
std::string AppendSession(std::vector<std::string>& env, const Session* session, std::size_t max_variable,
                          bool off = false);

}  // namespace sessiond
