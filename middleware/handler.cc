#include "middleware/handler.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <set>
#include <strings.h>

#include "middleware/cookie.h"
#include "middleware/page_runner.h"
#include "middleware/percent.h"
#include "store/session_id.h"

namespace sessiond {
namespace {

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

bool IsIdentifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

// Variables a page never receives from the web server: the ones sessiond
// sets itself, and HTTP_PROXY (httpoxy: a client's "Proxy:" header).
bool IsReserved(std::string_view name) {
  return name == "PATH" || name == "SCRIPT_FILENAME" || name == "HTTP_PROXY" ||
         name == "HTTP_SESSION" || name.substr(0, 8) == "SESSION_";
}

// What the log calls the request: never its cookie or session id.
std::string Describe(const Request& r) {
  std::string what(r.Param("REQUEST_METHOD").value_or("?"));
  what += ' ';
  what += r.Param("DOCUMENT_URI").value_or(r.Param("SCRIPT_NAME").value_or("?"));
  return what;
}

std::string Serialize(const Response& r) {
  std::string out = "Status: " + std::to_string(r.status) + ' ' +
                    (r.reason.empty() ? std::string(ReasonPhrase(r.status)) : r.reason) + "\r\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

Response ErrorResponse(int status) {
  std::string text = std::to_string(status) + ' ' + std::string(ReasonPhrase(status)) + '\n';
  return {status, {}, {{"Content-Type", "text/plain; charset=utf-8"}, {"Cache-Control", "no-store"}}, text};
}

}  // namespace

Handler::Handler(const Config& config, std::unique_ptr<SessionStore> store)
    : config_(config), store_(std::move(store)) {
  char resolved[PATH_MAX];
  if (!::realpath(config.pages.c_str(), resolved))
    throw std::runtime_error("pages directory " + config.pages + ": " + std::strerror(errno));
  pages_root_ = resolved;
}

void Handler::Handle(Request& request) {
  Response response;
  auto fail = [&](int status, const std::string& why) {
    LogLine(std::to_string(status) + ' ' + Describe(request) + ": " + why);
    response = ErrorResponse(status);
  };
  try {
    response = Process(request);
  } catch (const HttpError& e) {
    fail(e.status(), e.what());
  } catch (const LimitError& e) {
    fail(413, e.what());
  } catch (const StoreError& e) {
    fail(e.busy() ? 503 : 500, std::string("store: ") + e.what());
  } catch (const std::exception& e) {
    fail(500, e.what());
  }
  request.Write(Serialize(response));
}

// The whole request, in order. Each step throws HttpError (or a store error)
// on failure; nothing is committed before the page has succeeded, and nothing
// is sent before the commit.
Response Handler::Process(Request& request) {
  const std::string page = ResolvePage(request);
  const std::string body = ReadBody(request);
  const std::optional<Session> session = LoadSession(request);
  PageSpec spec{.path = page, .env = PageEnvironment(request, page, session), .input = body};
  PageLimits limits = config_.page;
  limits.output_memory = limits.max_output;  // CheckPage parses head(): keep it all in memory
  const PageResult run = RunPage(spec, limits);
  const CgiResponse out = CheckPage(run, page);
  const CommitResult committed = store_->Commit(session, out.session, Now());
  return Respond(out, session, committed, request.Param("HTTPS") == "on");
}

// SCRIPT_FILENAME (absolute, or relative to the pages root), resolved through
// symlinks; it must be an executable regular file inside the pages root.
std::string Handler::ResolvePage(const Request& request) const {
  std::string_view name = request.Param("SCRIPT_FILENAME").value_or("");
  if (name.empty()) throw HttpError(404, "no SCRIPT_FILENAME");
  std::string candidate = name[0] == '/' ? std::string(name) : pages_root_ + '/' + std::string(name);
  char resolved[PATH_MAX];
  if (!::realpath(candidate.c_str(), resolved)) throw HttpError(404, "no page " + candidate);
  std::string page = resolved;
  if (page.compare(0, pages_root_.size() + 1, pages_root_ + '/') != 0)
    throw HttpError(404, "page " + candidate + " is outside the pages root");
  struct stat st;
  if (::stat(page.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || ::access(page.c_str(), X_OK) != 0)
    throw HttpError(404, "page " + candidate + " is not an executable file");
  return page;
}

std::string Handler::ReadBody(Request& request) const {
  const std::size_t max = config_.max_body_bytes;
  std::string_view declared = request.Param("CONTENT_LENGTH").value_or("");
  if (!declared.empty()) {
    char* end = nullptr;
    std::string copy(declared);
    unsigned long long n = std::strtoull(copy.c_str(), &end, 10);
    if (*end != '\0' || copy[0] == '-') throw HttpError(400, "bad CONTENT_LENGTH");
    if (n > max)
      throw HttpError(413, "request body of " + copy + " bytes exceeds max_body_bytes");
  }
  std::string body;
  char buf[65536];
  while (std::size_t n = request.ReadBody(buf, sizeof buf)) {
    if (body.size() + n > max) throw HttpError(413, "request body exceeds max_body_bytes");
    body.append(buf, n);
  }
  return body;
}

// The cookie's session, or nullopt for a new visitor: no cookie, a malformed
// one, or an id the store does not know (never issued, expired, abandoned).
std::optional<Session> Handler::LoadSession(const Request& request) {
  // A client may split its cookies over several Cookie headers (HTTP/2 does),
  // which the web server may pass on as several HTTP_COOKIE variables.
  std::string header;
  for (std::string_view kv : request.Environment()) {
    if (kv.substr(0, 12) != "HTTP_COOKIE=") continue;
    if (!header.empty()) header += "; ";
    header += kv.substr(12);
  }
  if (header.size() > config_.max_cookie_bytes)
    throw HttpError(400, "Cookie header of " + std::to_string(header.size()) +
                             " bytes exceeds max_cookie_bytes");
  std::optional<std::string_view> id = FindCookie(header, config_.cookie.name);
  if (!id || !IsWellFormedId(*id)) return std::nullopt;
  return store_->Load(*id, Now());
}

// The CGI environment and the injected session. Nothing of sessiond's own
// environment is passed, and nothing the client sent can pose as the session.
std::vector<std::string> Handler::PageEnvironment(const Request& request, const std::string& page,
                                                  const std::optional<Session>& session) const {
  std::vector<std::string> env;
  std::set<std::string_view> seen;  // a repeated variable: the first one counts, as for Param()
  for (std::string_view kv : request.Environment()) {
    std::size_t eq = kv.find('=');
    std::string_view name = kv.substr(0, eq);
    if (eq == std::string_view::npos || !IsIdentifier(name) || IsReserved(name)) continue;
    if (seen.insert(name).second) env.emplace_back(kv);
  }
  env.emplace_back("PATH=/usr/local/bin:/usr/bin:/bin");
  env.push_back("SCRIPT_FILENAME=" + page);
  static const Items kNone;
  const Items& items = session ? session->items : kNone;
  env.push_back("HTTP_SESSION=" + EncodeItems(items));
  env.push_back("SESSION_ID=" + (session ? session->id : std::string()));
  env.push_back(session ? "SESSION_NEW=0" : "SESSION_NEW=1");
  for (const auto& [key, value] : items)
    if (IsIdentifier(key) && value.find('\0') == std::string::npos)
      env.push_back("SESSION_VAR_" + key + '=' + value);
  return env;
}

CgiResponse Handler::CheckPage(const PageResult& run, const std::string& page) const {
  if (!run.errors.empty()) {
    // The page's stderr, bounded by page_stderr_bytes, one log line per line.
    std::string_view rest = run.errors;
    while (!rest.empty()) {
      std::size_t nl = rest.find('\n');
      LogLine("page " + page + ": " + std::string(rest.substr(0, nl)));
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
  }
  using O = PageResult::Outcome;
  switch (run.outcome) {
    case O::SpawnFailed:
      throw HttpError(502, "page " + page + " could not be started: " + std::strerror(run.exit_code));
    case O::TimedOut: throw HttpError(504, "page " + page + " overran page_timeout");
    case O::OutputTooLarge: throw HttpError(502, "page " + page + " output exceeds max_output_bytes");
    case O::Signaled:
      throw HttpError(502, "page " + page + " was killed by signal " + std::to_string(run.exit_code));
    case O::Exited:
      if (run.exit_code != 0)
        throw HttpError(502, "page " + page + " exited with status " + std::to_string(run.exit_code));
  }
  auto parsed = ParseCgiResponse(run.output.head());
  if (auto* why = std::get_if<std::string>(&parsed)) throw HttpError(502, *why);
  return std::get<CgiResponse>(std::move(parsed));
}

// The page's response with the session's cookie. A response that belongs to
// a session must not be stored by any cache, whatever the page said.
Response Handler::Respond(const CgiResponse& page, const std::optional<Session>& session,
                          const CommitResult& committed, bool https) const {
  using O = CommitResult::Outcome;
  Response r{page.status, page.reason, {}, std::string(page.body)};
  bool has_session = session || committed.outcome == O::Created;
  for (const Header& h : page.headers)
    if (!has_session || strcasecmp(h.first.c_str(), "Cache-Control") != 0) r.headers.push_back(h);
  CookieAttributes cookie = config_.cookie;
  cookie.secure = config_.cookie_secure || https;
  if (committed.outcome == O::Created || committed.outcome == O::Regenerated)
    r.headers.emplace_back("Set-Cookie", SessionCookie(committed.id, cookie));
  else if (committed.outcome == O::Abandoned)
    r.headers.emplace_back("Set-Cookie", ExpiredCookie(cookie));
  if (has_session) r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace sessiond
