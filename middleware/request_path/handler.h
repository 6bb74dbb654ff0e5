// The request path: route -> cookie -> load -> runner (a page, or a
// persistent FastCGI app: runner.h) -> its changes -> commit -> response.
// The route (route.h: SESSION_MODE and the rest, set per location by the web
// server) decides how much of it touches the session:
//   off        nothing: no cookie read, no load, no commit, no Set-Cookie;
//              the page gets SESSION_MODE=off and no session variables
//   read       loaded and injected, never written; touched only with
//              SESSION_READ_TOUCH on
//   write      loaded, injected, the page's changes committed (per-key merge)
//   exclusive  as write (the farm-wide lock is issue 17's lock part)
// On off and read routes a page's X-Session-* directive is a 502, logged
// with the mode, and nothing is stored.
// Every page and app on a route that is not off is told what became of its
// session in SESSION_STATUS (SessionStatus below). On a route with
// SESSION_ON_STORE_ERROR degrade, a store out of reach while loading does
// not fail the request: the page runs without a session, told
// `unavailable`, and any X-Session-* directive it sends is a 503 (with
// Retry-After), logged, nothing stored.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "middleware/base/http.h"
#include "middleware/base/metrics.h"
#include "middleware/base/request.h"
#include "middleware/base/spill_buffer.h"
#include "middleware/request_path/cgi_response.h"
#include "middleware/request_path/cookie.h"
#include "middleware/request_path/route.h"
#include "middleware/request_path/session_lock.h"
#include "middleware/runners/page_runner.h"
#include "middleware/runners/runner.h"
#include "store/open.h"
#include "store/store.h"

namespace sessiond {

// What the client gets: the status line and headers, then `text` (sessiond's
// own error bodies) or the page's output from `body_offset` on.
struct Response {
  int status = 200;
  std::string reason;
  std::vector<Header> headers;
  std::string text;
  std::optional<SpillBuffer> output;
  std::size_t body_offset = 0;
};

// What the request path needs of the settings (Config, in
// middleware/config.h, extends it with the process's own).
struct HandlerSettings {
  // Directory of the page scripts. Pages outside it are never run.
  std::string pages;

  StoreOptions store;  // --db (file or PostgreSQL URI), timeouts, durability, session limits

  CookieAttributes cookie;     // name (default sid), SameSite, Max-Age
  bool cookie_secure = false;  // Secure on every cookie, not only over HTTPS

  std::size_t max_cookie_bytes = 8192;  // Cookie request header; larger: 400
  PageLimits page;                      // run time, output size, stderr kept
  PageUser page_user;                   // who pages run as (resolved --user/--group); unset: sessiond's own

  // A request whose SCRIPT_NAME or DOCUMENT_URI is this path ("/sessiond-status")
  // gets sessiond's metrics in Prometheus's text format instead of a page.
  // Empty (the default): no such path, every request is a page's.
  std::string status_path;

  // SESSION_MODE exclusive: how long a request waits for its session's
  // lock while another request holds it; past it, 503 with Retry-After.
  std::chrono::milliseconds lock_wait{10000};
};

// What a page is told of its session, as SESSION_STATUS (none on an off route).
enum class SessionStatus {
  New,          // no cookie, or none with a well-formed id: a new visitor
  Ok,           // the cookie's session, loaded
  Expired,      // a well-formed id naming no live session: timed out, swept,
                // abandoned (a logout elsewhere) or never issued; the store
                // cannot tell these apart once the session is gone
  Regenerated,  // an id moved by a regenerate, within its rotation grace:
                // the session under its new id, which the response carries
  Unavailable,  // SESSION_ON_STORE_ERROR degrade, the store out of reach: no session
};

// The lower-case name of `status`, as SESSION_STATUS spells it.
std::string_view StatusName(SessionStatus status);

// No applications (a Handler that runs pages only).
const AppRunners& NoApps();

// Thread-safety: one per worker thread; it owns that thread's store connection.
class Handler {
 public:
  // `config.pages` must exist; it is resolved once here. `apps`: the
  // persistent applications SESSIOND_APP may name (shared by every worker's
  // handler; it must outlive them). `live`: where the status path's live
  // session count is kept between scrapes (shared likewise).
  Handler(const HandlerSettings& config, std::unique_ptr<SessionStore> store, const AppRunners& apps = NoApps(),
          LiveCount& live = ProcessLiveCount());

  // Serves one request completely. A request that fails gets an error status,
  // one log line, and no session change at all. Throws only when the page's
  // output cannot be read back after part of the response was sent (the
  // caller must then close the connection). A request for config.status_path
  // through a location that sets SESSIOND_STATUS=1 (a parameter only the web
  // server sets: a client's header arrives as HTTP_SESSIOND_STATUS) gets the
  // metrics (ProcessMetrics()); through any other location, a 404.
  void Handle(Request& request);

  // The page named by SCRIPT_FILENAME (a path, or Apache's
  // "proxy:fcgi://HOST/path"): the executable file inside the pages root, and
  // what followed it in the path, or else the web server's own PATH_INFO.
  struct Page {
    std::string path;       // resolved, inside the pages root
    std::string path_info;  // "" or "/extra/path"
  };

 private:
  Response Process(Request& request);
  bool IsStatusPath(const Request& request) const;
  bool IsStatusRequest(const Request& request) const;
  void ServeStatus(Request& request);
  const Runner& ChooseRunner(const Request& request, std::optional<PageRunner>& page) const;
  Page ResolvePage(const Request& request) const;
  // The route's session, and what the page is told of it (`status`): none
  // on an off route; on an exclusive one, loaded under its lock, which
  // `lock` then holds; none, Unavailable, on a degrade route whose store is
  // out of reach.
  std::optional<Session> LoadSession(const Request& request, const Route& route, std::optional<SessionLock>& lock,
                                     SessionStatus& status);
  std::optional<Session> LoadExclusive(const Request& request, std::optional<SessionLock>& lock);
  // `ids`: the cookie's (empty: read from the request).
  SessionLock LockSession(const Request& request, std::vector<std::string_view> ids = {});
  std::optional<Session> LoadSession(const Request& request);
  RunResult Run(const Runner& runner, const Request& request, const Route& route, SessionStatus status,
                const std::optional<Session>& session) const;
  CgiResponse CheckRun(const RunResult& run, const std::string& page, const Request& request,
                       const std::optional<Session>& session) const;
  void CheckChanges(const Route& route, SessionStatus status, const ChangeSet& changes,
                    const std::string& page) const;
  CommitResult Commit(const Route& route, const std::optional<Session>& session, const ChangeSet& changes,
                      SessionLock* lock);
  Response Respond(const Route& route, const CgiResponse& page, RunResult& run,
                   const std::optional<Session>& session, const CommitResult& committed, bool https,
                   bool had_cookie) const;
  void Send(Request& request, const Response& response) const;

  const HandlerSettings& config_;
  std::string pages_root_;  // realpath of config.pages
  std::unique_ptr<SessionStore> store_;
  const AppRunners& apps_;
  LiveCount& live_;
};

}  // namespace sessiond
