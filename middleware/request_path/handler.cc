#include "middleware/request_path/handler.h"

#include "middleware/request_path/route.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <set>
#include <strings.h>

#include "log/log.h"
#include "middleware/base/metrics.h"
#include "middleware/base/percent.h"
#include "middleware/request_path/cookie.h"
#include "middleware/runners/page_runner.h"
#include "store/session_id.h"

namespace sessiond {
namespace {

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// The store's view of the route: its site's sessions, under its timeouts.
SiteScope SiteOf(const Route& route) { return {route.site, route.timeouts}; }

// The name of the cookie a Set-Cookie value sets.
std::string_view SetCookieName(std::string_view value) {
  std::string_view name = value.substr(0, value.find('='));
  while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  return name;
}

// The Cookie header: a client may split its cookies over several Cookie
// headers (HTTP/2 does), which the web server may pass on as several
// HTTP_COOKIE variables.
std::string CookieHeader(const Request& request) {
  std::string header;
  for (std::string_view kv : request.Environment()) {
    if (kv.substr(0, 12) != "HTTP_COOKIE=") continue;
    if (!header.empty()) header += "; ";
    header += kv.substr(12);
  }
  return header;
}

// `line` with every occurrence of `secret` replaced.
std::string Redacted(std::string line, std::string_view secret) {
  if (secret.empty()) return line;
  for (std::size_t at; (at = line.find(secret)) != std::string::npos;) line.replace(at, secret.size(), "[session id]");
  return line;
}

// Whether this process forwarded the request: any of its SESSIOND_LOOP
// parameters is our token. Each sessiond on the way adds its own after the
// ones it was given, so the one that closes a loop may not be the first.
bool CameBack(const Request& request) {
  const std::string mine = std::string(kLoopParam) + '=' + LoopToken();
  for (std::string_view kv : request.Environment())
    if (kv == mine) return true;
  return false;
}

// Whether the request's session cookie holds a well-formed id: one the
// store may have issued, so a load that finds nothing means it has ended.
bool CarriesId(std::string_view header, std::string_view name) {
  for (std::string_view id : FindCookies(header, name))
    if (IsWellFormedId(id)) return true;
  return false;
}

// A store error a degrade route runs its page without a session for: the
// store out of reach (busy past --busy-timeout, a database down), which
// fails a request with 503. Any other (500) is not an outage to ride out.
bool OutOfReach(const StoreError& e) { return e.busy() || e.reported(); }

}  // namespace

std::string_view StatusName(SessionStatus status) {
  switch (status) {
    case SessionStatus::New: return "new";
    case SessionStatus::Ok: return "ok";
    case SessionStatus::Expired: return "expired";
    case SessionStatus::Regenerated: return "regenerated";
    case SessionStatus::Unavailable: return "unavailable";
  }
  return "new";
}

const AppRunners& NoApps() {
  static const AppRunners none;
  return none;
}

Handler::Handler(const HandlerSettings& config, std::unique_ptr<SessionStore> store, const AppRunners& apps,
                 LiveCount& live, NewSessionLimits* new_sessions)
    : config_(config), store_(std::move(store)), apps_(apps), live_(live), new_sessions_(new_sessions) {
  char resolved[PATH_MAX];
  if (!::realpath(config.pages.c_str(), resolved))
    throw std::runtime_error("pages directory " + config.pages + ": " + std::strerror(errno));
  pages_root_ = resolved;
}

void Handler::Handle(Request& request) {
  if (IsStatusRequest(request)) return ServeStatus(request);
  Response response;
  // A request this process forwarded to an --app has come back to it (the
  // app's address reaches sessiond itself): answered at once, or each pass
  // would hold a worker waiting for the next until all are taken.
  if (CameBack(request)) {
    LogFailure(508, request.Environment(), "a request sessiond forwarded to an --app came back to it: an --app "
                                           "address reaches sessiond itself; fix --app");
    ProcessMetrics().CountRequest(508);
    return Send(request, Response{508, {}, {}, ErrorResponse(508), {}, 0});
  }
  auto fail = [&](int status, const std::string& why, bool log = true, int retry_after = 1) {
    if (log) LogFailure(status, request.Environment(), why);
    response = Response{status, {}, {}, ErrorResponse(status, retry_after), {}, 0};
  };
  try {
    response = Process(request);
  } catch (const HttpError& e) {
    fail(e.status(), e.what(), e.log(), e.retry_after());
  } catch (const LimitError& e) {
    fail(413, e.what());
  } catch (const StoreError& e) {
    ProcessMetrics().CountStoreError(e.busy());
    if (e.reported())  // the outage's one line is in the log already
      response = Response{503, {}, {}, ErrorResponse(503), {}, 0};
    else
      fail(e.busy() ? 503 : 500, std::string("store: ") + e.what());
  } catch (const std::exception& e) {
    fail(500, e.what());
  }
  // Counted before the first byte leaves: a client that got the response and
  // then scrapes the metrics sees its request counted.
  ProcessMetrics().CountRequest(response.status);
  Send(request, response);
}

// The status path, as nginx names it (SCRIPT_NAME) or as it was asked for
// (DOCUMENT_URI, when a location passes no SCRIPT_NAME of its own).
bool Handler::IsStatusPath(const Request& request) const {
  const std::string& path = config_.status_path;
  return !path.empty() && (request.Param("SCRIPT_NAME") == path || request.Param("DOCUMENT_URI") == path);
}

// The status path through the location that exposes it: the web server says
// so with SESSIOND_STATUS, as it names apps with SESSIOND_APP. The path alone
// would answer through any location that reaches sessiond (a catch-all
// `location /` passes every URI), to anyone.
bool Handler::IsStatusRequest(const Request& request) const {
  return IsStatusPath(request) && request.Param("SESSIOND_STATUS") == "1";
}

// The metrics, with the live session count: one COUNT over the expiry index,
// on this worker's own connection, at most once per LiveCount interval in
// the whole process.
void Handler::ServeStatus(Request& request) {
  std::optional<std::int64_t> live;
  try {
    live = live_.Get([&] { return store_->CountLive(Now()); });
  } catch (const StoreError& e) {
    ProcessMetrics().CountStoreError(e.busy());
    if (!e.reported()) LogLine(std::string("status: cannot count live sessions: ") + e.what());
  }
  std::string text = ProcessMetrics().Render(live);
  request.Write("Status: 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                "Cache-Control: no-store\r\nContent-Length: " + std::to_string(text.size()) + "\r\n\r\n");
  request.Write(text);
}

// The whole request, in order. Each step throws HttpError (or a store error)
// on failure; nothing is committed before the page or app has succeeded, and
// nothing is sent before the commit. The route's mode decides which steps
// touch the session: off none of them, read the load (and, with
// SESSION_READ_TOUCH, the lazy touch), write and exclusive all.
Response Handler::Process(Request& request) {
  // The location's session behaviour (route.h); a value not understood is a
  // 500 before anything else happens.
  const Route route = ReadRoute(request, config_.cookie.name, config_.store.timeouts);
  const bool off = route.mode == Route::Mode::Off;
  std::optional<PageRunner> page;
  const Runner& runner = ChooseRunner(request, page);
  // Exclusive: the session's farm-wide lock, before its load, until the
  // commit; released by the guard on every other way out.
  std::optional<SessionLock> lock;
  // What the page is told of its session (SESSION_STATUS): on a degrade
  // route whose store is out of reach, no session and `unavailable`.
  SessionStatus status = SessionStatus::New;
  const std::optional<Session> session = LoadSession(request, route, lock, status);
  RunResult run = Run(runner, request, route, status, session);
  const CgiResponse out = CheckRun(run, runner.Describe(), request, route, session);
  CheckChanges(route, status, out.session, runner.Describe());
  // A new visitor's first write: within the limits on session floods, or 503.
  const bool admitted = new_sessions_ && CreatesSession(session, out.session);
  if (admitted) new_sessions_->Admit(request, [this] { return store_->CountLive(Now()); });
  // A commit refused (413) or failed (503) created nothing: its place under
  // the cap is given back, or such requests would fill the cap for everyone.
  CommitResult committed;
  try {
    committed = Commit(route, session, out.session, lock ? &*lock : nullptr);
  } catch (...) {
    if (admitted) new_sessions_->Withdraw();
    throw;
  }
  if (committed.outcome == CommitResult::Outcome::Gone)
    throw HttpError(409, "the session ended while the page ran (a logout, an expiry, or a login with no "
                         "--regenerate-grace left); "
                         "its changes were not kept");
  if (committed.outcome == CommitResult::Outcome::Fenced)
    throw HttpError(409, "the session's exclusive lock was lost while the page ran: its lease (--page-timeout "
                         "+ --busy-timeout + 1 s) ended, and another request may have taken it; its changes were "
                         "not kept");
  const bool had_cookie = !off && FindCookie(CookieHeader(request), route.cookie_name).has_value();
  return Respond(route, out, run, session, committed, request.Param("HTTPS") == "on", had_cookie);
}

// The application SESSIOND_APP names (a parameter only the web server sets:
// a client's header reaches sessiond as HTTP_*), else the page SCRIPT_FILENAME
// names. A name no --app gives is the configuration's fault: 500.
const Runner& Handler::ChooseRunner(const Request& request, std::optional<PageRunner>& page) const {
  std::string_view app = request.Param("SESSIOND_APP").value_or("");
  if (!app.empty()) {
    auto it = apps_.find(app);
    if (it == apps_.end()) {
      std::string known;
      for (const auto& [name, runner] : apps_) known += (known.empty() ? "" : ", ") + name;
      throw HttpError(500, "SESSIOND_APP names no application '" + std::string(app) + "' (the --app names: " +
                               (known.empty() ? "none" : known) + "): fix the web server's fastcgi_param or sessiond's --app");
    }
    return *it->second;
  }
  if (IsStatusPath(request))
    throw HttpError(404, "the status path was asked through a location that does not set SESSIOND_STATUS=1 "
                         "(fastcgi_param SESSIOND_STATUS 1; in the one location that exposes it)");
  Page resolved = ResolvePage(request);
  page.emplace(std::move(resolved.path), std::move(resolved.path_info), config_.page,
               config_.page_user.set ? &config_.page_user : nullptr);
  return *page;
}

// SCRIPT_FILENAME (absolute, or relative to the pages root), resolved through
// symlinks: the longest leading part of it that exists must be an executable
// regular file inside the pages root; what follows is PATH_INFO
// (/page/extra/path runs /page with PATH_INFO=/extra/path, as CGI servers do).
// When nothing follows, a PATH_INFO the web server split off itself counts
// (Apache does, for SetHandler).
Handler::Page Handler::ResolvePage(const Request& request) const {
  std::string_view name = request.Param("SCRIPT_FILENAME").value_or("");
  if (name.empty()) throw HttpError(404, "no SCRIPT_FILENAME");
  // Apache's mod_proxy_fcgi, configured as for php-fpm (SetHandler
  // "proxy:unix:/path.sock|fcgi://localhost/"), sends
  // "proxy:fcgi://localhost//srv/pages/home": the absolute path follows the
  // host, as php-fpm reads it. Any other "proxy:" form names no file here.
  constexpr std::string_view kApache = "proxy:fcgi://";
  if (name.substr(0, kApache.size()) == kApache) {
    std::size_t slash = name.find('/', kApache.size());
    if (slash == std::string_view::npos) throw HttpError(404, "no page " + std::string(name));
    name.remove_prefix(slash);
    while (name.size() > 1 && name[1] == '/') name.remove_prefix(1);  // "fcgi://localhost/" + "/srv/..."
  } else if (name.substr(0, 6) == "proxy:") {
    throw HttpError(404, "no page " + std::string(name) + " (only proxy:fcgi://HOST/PATH is understood)");
  }
  // What every page's path starts with: the root and a slash ("/" alone for
  // a root of "/", every absolute path).
  const std::string inside = pages_root_ == "/" ? pages_root_ : pages_root_ + '/';
  std::string candidate = name[0] == '/' ? std::string(name) : inside + std::string(name);
  std::string rest;
  struct stat st;
  while (::stat(candidate.c_str(), &st) != 0) {
    std::size_t slash = candidate.rfind('/');
    if ((errno != ENOENT && errno != ENOTDIR) || slash == std::string::npos || slash == 0)
      throw HttpError(404, "no page " + std::string(name));
    rest.insert(0, candidate, slash, std::string::npos);
    candidate.resize(slash);
  }
  // A directory (the pages root itself: "/" without a `location = /`), or
  // extra path below one: there is no page.
  if (S_ISDIR(st.st_mode)) throw HttpError(404, "no page " + std::string(name));
  char resolved[PATH_MAX];
  if (!::realpath(candidate.c_str(), resolved)) throw HttpError(404, "no page " + std::string(name));
  std::string page = resolved;
  if (page.compare(0, inside.size(), inside) != 0)
    throw HttpError(404, "page " + std::string(name) + " is outside the pages root");
  if (::stat(page.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || ::access(page.c_str(), X_OK) != 0)
    throw HttpError(404, "page " + std::string(name) + " is not an executable file");
  if (rest.empty()) {
    std::string_view split = request.Param("PATH_INFO").value_or("");
    if (!split.empty() && split[0] == '/') rest = split;
  }
  return {page, rest};
}

// Exclusive mode: the lock of the session LoadSession will take (the first
// of the cookie's well-formed ids, at most three, with a live session).
// Should another be loaded after all (this one ended meanwhile), its commit
// is refused, as one whose lock was lost. The lease covers the page's run
// and a commit that waits for a busy store, and a second for the clock's
// whole seconds: a sessiond that died holding the lock holds it no longer.
SessionLock Handler::LockSession(const Request& request, const Route& route, std::vector<std::string_view> ids) {
  std::string header = CookieHeader(request);
  if (ids.empty() && header.size() <= config_.max_cookie_bytes)  // else LoadSession's 400
    for (std::string_view id : FindCookies(header, route.cookie_name))
      if (IsWellFormedId(id) && ids.size() < 3) ids.push_back(id);
  const auto lease = std::chrono::ceil<std::chrono::seconds>(
                         config_.page.timeout + std::chrono::milliseconds(config_.store.busy_timeout_ms)) +
                     std::chrono::seconds(1);
  return SessionLock::Take(*store_, SiteOf(route), ids, lease.count(), config_.lock_wait);
}

// The cookie's session, or nullopt for a new visitor: no cookie, a malformed
// one, or an id the store does not know (never issued, expired, abandoned,
// another site's). The route's site names the cookie and the session's site.
// On a degrade route, a store out of reach (no lock taken, or the one taken
// released by its guard) is no session either: the page runs, told so.
std::optional<Session> Handler::LoadSession(const Request& request, const Route& route,
                                            std::optional<SessionLock>& lock, SessionStatus& status) {
  if (route.mode == Route::Mode::Off) return std::nullopt;
  std::optional<Session> session;
  try {
    session = route.mode == Route::Mode::Exclusive ? LoadExclusive(request, route, lock)
                                                   : LoadFromCookie(request, route);
  } catch (const StoreError& e) {
    if (route.on_store_error != Route::OnStoreError::Degrade || !OutOfReach(e)) throw;
    lock.reset();
    ProcessMetrics().CountStoreError(e.busy());
    ProcessMetrics().CountDegraded();
    // The outage's one line is in the log already when the store reported
    // it; else one line per request, as the 503 it replaces had.
    if (!e.reported())
      LogLine(Describe(request.Environment()) + ": store: " + e.what() +
              "; the page runs without its session (SESSION_ON_STORE_ERROR degrade)");
    status = SessionStatus::Unavailable;
    return std::nullopt;
  }
  if (session) status = session->forwarded ? SessionStatus::Regenerated : SessionStatus::Ok;
  else status = CarriesId(CookieHeader(request), route.cookie_name) ? SessionStatus::Expired : SessionStatus::New;
  return session;
}

std::optional<Session> Handler::LoadExclusive(const Request& request, const Route& route,
                                              std::optional<SessionLock>& lock) {
  lock.emplace(LockSession(request, route));
  std::optional<Session> session = LoadFromCookie(request, route);
  if (session && session->forwarded) {
    // An old id within its rotation grace (no session of its own to lock)
    // led to the session under its new id: that one's lock, then the load
    // again under it.
    const std::string id = session->id;
    lock.reset();
    lock.emplace(LockSession(request, route, {id}));
    session = LoadFromCookie(request, route);
  }
  return session;
}

std::optional<Session> Handler::LoadFromCookie(const Request& request, const Route& route) {
  const SiteScope site = SiteOf(route);
  std::string header = CookieHeader(request);
  if (header.size() > config_.max_cookie_bytes)
    throw HttpError(400, "Cookie header of " + std::to_string(header.size()) +
                             " bytes exceeds max_cookie_bytes");
  // The first well-formed value the store knows: a cookie of the same name
  // set by a parent domain or another path (garbage, or a dead session) must
  // not log the visitor out. At most three are looked up.
  int looked_up = 0;
  for (std::string_view id : FindCookies(header, route.cookie_name)) {
    if (!IsWellFormedId(id)) continue;
    if (++looked_up > 3) break;
    auto start = std::chrono::steady_clock::now();
    std::optional<Session> session = store_->Load(id, Now(), site);
    ProcessMetrics().ObserveStoreLoad(SecondsSince(start));
    if (session && session->forwarded) ProcessMetrics().CountSession(Metrics::SessionEvent::Forwarded);
    if (session) return session;
    // Only for the metrics: a store that cannot tell costs the request nothing.
    try {
      if (store_->HoldsExpired(id, Now(), site)) ProcessMetrics().CountSession(Metrics::SessionEvent::ExpiredOnRead);
    } catch (const StoreError&) {
    }
  }
  return std::nullopt;
}

// Runs the page or forwards to the app, with the CGI variables, the route's
// SESSION_MODE, the SESSION_STATUS and the injected session (none at all on
// an off route, status included). Nothing of sessiond's own environment is
// passed, and nothing the client sent can pose as the session or its mode.
RunResult Handler::Run(const Runner& runner, const Request& request, const Route& route, SessionStatus status,
                       const std::optional<Session>& session) const {
  RunInput input;
  input.env = CleanEnvironment(request.Environment());
  input.env.push_back("SESSION_MODE=" + std::string(ModeName(route.mode)));
  if (route.mode != Route::Mode::Off) input.env.push_back("SESSION_STATUS=" + std::string(StatusName(status)));
  input.session = session ? &*session : nullptr;
  input.session_off = route.mode == Route::Mode::Off;
  input.body = &request.Body();
  GaugeScope running(Metrics::Gauge::PagesRunning);
  auto start = std::chrono::steady_clock::now();
  RunResult result = runner.Run(input);
  ProcessMetrics().ObservePageRun(SecondsSince(start));
  return result;
}

// `page`: how the log names the page or app ("page /srv/pages/home", "app shop").
CgiResponse Handler::CheckRun(const RunResult& run, const std::string& page, const Request& request,
                              const Route& route, const std::optional<Session>& session) const {
  if (!run.errors.empty()) {
    // The page's stderr, bounded by page_stderr_bytes, one log line per line.
    // A page that prints its environment (SESSION_ID, HTTP_COOKIE) must not
    // put a live session id in the log: the ids of every cookie are masked
    // (a browser sends the cookies of the other sites on the host, under
    // their own names), and the session's own (another one when an old id
    // led to it: rotation grace).
    std::string header = CookieHeader(request);
    std::vector<std::string_view> ids = CookieValues(header);
    std::string_view rest = run.errors;
    while (!rest.empty()) {
      std::size_t nl = rest.find('\n');
      std::string line(rest.substr(0, nl));
      for (std::string_view id : ids)
        if (IsWellFormedId(id)) line = Redacted(std::move(line), id);
      if (session) line = Redacted(std::move(line), session->id);
      LogLine(page + ": " + line);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
  }
  using O = RunResult::Outcome;
  switch (run.outcome) {
    case O::SpawnFailed: throw HttpError(502, page + " " + run.detail, !run.logged);
    case O::Busy: throw HttpError(503, page + ": " + run.detail);
    case O::Malformed: throw HttpError(502, page + " " + run.detail);
    case O::TimedOut:
      throw HttpError(504, page + " overran page_timeout" + (run.detail.empty() ? "" : ": " + run.detail));
    case O::OutputTooLarge: throw HttpError(502, page + " output exceeds max_output_bytes");
    case O::Signaled: throw HttpError(502, page + " was killed by signal " + std::to_string(run.exit_code));
    case O::Exited:
      if (run.exit_code != 0) throw HttpError(502, page + " exited with status " + std::to_string(run.exit_code));
  }
  // The header block is parsed from the part of the output kept in memory;
  // one larger than that (many session headers) is read back from the spill
  // file, up to what a whole session's worth of percent-encoded changes needs.
  auto parsed = ParseCgiResponse(run.output.head());
  std::string whole;
  auto unended = [&] {
    auto* why = std::get_if<std::string>(&parsed);
    return why && why->find("no blank line") != std::string::npos;
  };
  if (unended() && run.output.spilled()) {
    std::size_t limit = std::min(run.output.size(), 3 * config_.store.limits.max_session_bytes + 65536);
    whole.resize(limit);
    whole.resize(run.output.ReadAt(0, whole.data(), limit));
    parsed = ParseCgiResponse(whole);
    if (unended()) throw HttpError(502, page + " header block exceeds " + std::to_string(limit) + " bytes");
  }
  if (auto* why = std::get_if<std::string>(&parsed)) throw HttpError(502, *why);
  CgiResponse out = std::get<CgiResponse>(std::move(parsed));
  // The session cookie is sessiond's: a page that sets it could hand its
  // visitor someone else's session or an id the store never issued.
  for (const Header& h : out.headers)
    if (strcasecmp(h.first.c_str(), "Set-Cookie") == 0 && SetCookieName(h.second) == route.cookie_name)
      throw HttpError(502, page + " sent a Set-Cookie for the session cookie " + route.cookie_name);
  return out;
}

// On an off or read route the page may not change the session: a directive
// there is the page's mistake (or the route's), and dropping it silently
// would lose what the page believes it stored. 502, nothing stored. A
// degraded request (the store out of reach) cannot keep a change either:
// 503, with Retry-After, nothing stored; the route's mistake is told first,
// as trying again would not mend it.
void Handler::CheckChanges(const Route& route, SessionStatus status, const ChangeSet& changes,
                           const std::string& page) const {
  if (changes.empty()) return;
  std::string asked = changes.abandon ? "an abandon" : changes.regenerate ? "a regenerate" : "a change";
  if (route.mode != Route::Mode::Write && route.mode != Route::Mode::Exclusive)
    throw HttpError(502, page + " asked for " + asked + " of the session on a route whose SESSION_MODE is " +
                             std::string(ModeName(route.mode)) +
                             ": nothing was stored (set SESSION_MODE write for this location, or stop the page "
                             "sending X-Session-* headers)");
  if (status == SessionStatus::Unavailable)
    throw HttpError(503, page + " asked for " + asked + " of the session while the store is out of reach "
                               "(SESSION_ON_STORE_ERROR degrade: it ran with SESSION_STATUS=unavailable): "
                               "nothing was stored");
}

// Commits the page's changes, and counts what became of sessions and how
// long the store took (a read with nothing to write costs no store time and
// is not observed). An off route has nothing to commit, and a read route
// nothing to write: neither reaches the store, except a read route's lazy
// touch when SESSION_READ_TOUCH is on (the commit of an empty change set).
// `lock`: the exclusive lock held for `session`, which the commit checks and
// releases (or null).
CommitResult Handler::Commit(const Route& route, const std::optional<Session>& session, const ChangeSet& changes,
                             SessionLock* lock) {
  using O = CommitResult::Outcome;
  if (route.mode == Route::Mode::Off) return {};
  if (route.mode == Route::Mode::Read && (!route.read_touch || !session)) return {};
  // No session and nothing to change (a new visitor who stored nothing, a
  // degraded request): nothing to ask of the store, which may be out of reach.
  if (!session && changes.empty()) return {};
  Metrics& metrics = ProcessMetrics();
  auto start = std::chrono::steady_clock::now();
  CommitResult committed;
  try {
    if (lock && lock->held()) {
      committed = store_->CommitHolding(session, changes, Now(), SiteOf(route), lock->owner());
      if (session) lock->Released();  // by the commit, or (Fenced) another's now
    } else {
      committed = store_->Commit(session, changes, Now(), SiteOf(route));
    }
  } catch (const StoreError&) {
    metrics.ObserveStoreCommit(SecondsSince(start));
    throw;
  }
  if (committed.outcome != O::Unchanged) metrics.ObserveStoreCommit(SecondsSince(start));
  if (committed.outcome == O::Created) metrics.CountSession(Metrics::SessionEvent::Created);
  if (committed.outcome == O::Regenerated) metrics.CountSession(Metrics::SessionEvent::Regenerated);
  if (committed.outcome == O::Abandoned) metrics.CountSession(Metrics::SessionEvent::Abandoned);
  if (committed.outcome == O::Updated && !committed.id.empty()) metrics.CountSession(Metrics::SessionEvent::Forwarded);
  return committed;
}

// The page's response with the session's cookie. A response that belongs to
// a session must not be stored by any cache, whatever the page said.
// `had_cookie`: the request carried the session cookie, whatever its value.
Response Handler::Respond(const Route& route, const CgiResponse& page, RunResult& run,
                          const std::optional<Session>& session, const CommitResult& committed, bool https,
                          bool had_cookie) const {
  using O = CommitResult::Outcome;
  Response r{page.status, page.reason, {}, {}, std::move(run.output), page.body_offset};
  bool has_session = session || committed.outcome == O::Created;
  for (const Header& h : page.headers)
    if (!has_session || strcasecmp(h.first.c_str(), "Cache-Control") != 0) r.headers.push_back(h);
  CookieAttributes cookie = config_.cookie;
  cookie.name = route.cookie_name;  // the site's (SESSION_COOKIE), else --cookie-name
  cookie.secure = config_.cookie_secure || https;
  // A Max-Age counts from when the cookie was last sent, so it is sent again
  // while the session is in use, or an active visitor would be logged out
  // max-age after login (the idle and absolute timeouts stay the bound). It
  // rides on the store's refresh of the last access, so most requests send
  // nothing; and, should max-age be the shorter, once half of it has passed
  // since that refresh (the cookie was last sent then or later). A read
  // route's request is no activity unless it touched (SESSION_READ_TOUCH):
  // the cookie ages with the session's last access, as the store does.
  const bool in_use = session && (committed.outcome == O::Updated || committed.outcome == O::Unchanged) &&
                      (route.mode != Route::Mode::Read || committed.touched);
  const bool renew = cookie.max_age > 0 && in_use &&
                     (committed.touched || session->now - session->accessed >= cookie.max_age / 2);
  // Rotation grace: the request carried a regenerated id, and was served
  // (or its write landed in) the session under the new one, which the client
  // must carry from now on. Sent even when another tab's response already
  // has: the same value.
  const bool moved = committed.outcome == O::Updated && !committed.id.empty();
  if (committed.outcome == O::Created || committed.outcome == O::Regenerated || moved)
    r.headers.emplace_back("Set-Cookie", SessionCookie(committed.id, cookie));
  else if (in_use && session->forwarded)
    r.headers.emplace_back("Set-Cookie", SessionCookie(session->id, cookie));
  else if (renew)
    r.headers.emplace_back("Set-Cookie", SessionCookie(session->id, cookie));
  // An abandon drops the client's cookie even when it named no session (it
  // had expired, or the same logout ran in another tab): else the browser
  // keeps sending a dead id.
  else if (committed.outcome == O::Abandoned || (page.session.abandon && had_cookie))
    r.headers.emplace_back("Set-Cookie", ExpiredCookie(cookie));
  if (has_session) r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// Writes the response: a CGI head for the web server, then the body, read
// back 64 KiB at a time from wherever the page's output was kept.
void Handler::Send(Request& request, const Response& r) const {
  if (!r.output) {
    request.Write(r.text);
    return;
  }
  std::string head = "Status: " + std::to_string(r.status) + ' ' +
                     (r.reason.empty() ? std::string(ReasonPhrase(r.status)) : r.reason) + "\r\n";
  for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
  head += "\r\n";
  request.Write(head);
  // A HEAD response has no body (RFC 9110): nginx closes the connection once
  // it has the head, so a body sent after it was never delivered, and logged
  // as such.
  if (request.Param("REQUEST_METHOD") == "HEAD") return;
  char buf[65536];
  for (std::size_t at = r.body_offset;;) {
    std::size_t n = r.output->ReadAt(at, buf, sizeof buf);
    if (n == 0) break;
    request.Write(std::string_view(buf, n));
    at += n;
  }
}

}  // namespace sessiond
