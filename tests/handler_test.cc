// The whole request path without a socket: an in-memory Request, a real
// SQLite file, real page scripts.
#include "middleware/request_path/handler.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <ctime>
#include <fstream>

#include "middleware/base/metrics.h"
#include "store/open.h"

using namespace sessiond;
namespace fs = std::filesystem;

namespace {

class MemoryRequest final : public Request {
 public:
  MemoryRequest(std::vector<std::string> env, std::string body = {})
      : env_(std::move(env)), views_(env_.begin(), env_.end()) {
    body_.Append(body);
  }
  const std::vector<std::string_view>& Environment() const override { return views_; }
  const SpillBuffer& Body() const override { return body_; }
  void Write(std::string_view bytes) override { out_ += bytes; }

  const std::string& out() const { return out_; }
  int status() const { return std::stoi(out_.substr(8, 3)); }
  bool has(std::string_view header_line) const {
    return out_.find(std::string(header_line) + "\r\n") != std::string::npos;
  }
  std::string body() const { return out_.substr(out_.find("\r\n\r\n") + 4); }

 private:
  std::vector<std::string> env_;
  std::vector<std::string_view> views_;
  SpillBuffer body_;
  std::string out_;
};

// Pages in a fresh directory, a store file beside it, and a Handler on both.
struct Fixture {
  fs::path dir;
  HandlerSettings config;
  LiveCount live{std::chrono::seconds(0)};  // every scrape counts
  std::unique_ptr<Handler> handler;

  Fixture() {
    char tmpl[] = "/tmp/sessiond-handler-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
    fs::create_directory(dir / "pages");
    Page("show", "printf 'Content-Type: text/plain\\r\\nCache-Control: max-age=60\\r\\n\\r\\n%s' \"$HTTP_SESSION\"");
    Page("set", "printf 'X-Session-Set: %s\\r\\n\\r\\n' \"$QUERY_STRING\"");
    Page("body", "printf 'Content-Type: text/plain\\r\\n\\r\\n'; cat");
    std::ofstream(dir / "secret") << "#!/bin/sh\necho outside\n";
    fs::permissions(dir / "secret", fs::perms::owner_all);
    config.pages = (dir / "pages").string();
    config.store.db = (dir / "sessions.db").string();
    handler = std::make_unique<Handler>(config, OpenStore(config.store), NoApps(), live);
  }
  ~Fixture() { fs::remove_all(dir); }

  void Page(const std::string& name, const std::string& body) {
    std::ofstream(dir / "pages" / name) << "#!/bin/sh\n" << body << "\n";
    fs::permissions(dir / "pages" / name, fs::perms::owner_all);
  }

  MemoryRequest Serve(std::vector<std::string> env, std::string body = {}) {
    env.push_back("REQUEST_METHOD=GET");
    MemoryRequest r(std::move(env), std::move(body));
    handler->Handle(r);
    return r;
  }
};

// A real store seen through a seam: its sessions load as last accessed `age`
// seconds earlier than recorded (time passing without a sleep), and its
// CountLive calls are counted.
struct SeamStore final : SessionStore {
  std::unique_ptr<SessionStore> real;
  std::int64_t age = 0;
  int counts = 0;
  int loads = 0, commits = 0;  // every call that reaches the store
  CommitResult last;           // what the last Commit did
  explicit SeamStore(std::unique_ptr<SessionStore> r) : real(std::move(r)) {}
  bool loads_fail = false;  // a Load finds the store out of reach (and a commit after it does not)
  std::optional<Session> Load(std::string_view id, std::int64_t now, const SiteScope& site) override {
    ++loads;
    if (loads_fail) throw StoreError("the database is down", 0, true);
    auto s = real->Load(id, now, site);
    if (s) s->accessed -= age;
    return s;
  }
  CommitResult Commit(const std::optional<Session>& loaded, const ChangeSet& changes, std::int64_t now,
                      const SiteScope& site) override {
    ++commits;
    return last = real->Commit(loaded, changes, now, site);
  }
  std::size_t CollectGarbage(std::int64_t now, std::size_t batch) override { return real->CollectGarbage(now, batch); }
  std::optional<std::int64_t> CountLive(std::int64_t now) override {
    ++counts;
    return real->CountLive(now);
  }
  // Exclusive mode's lock; `lease`, when set, replaces the handler's (0: a
  // lease that has ended by the commit, as a stalled request's has).
  std::optional<std::int64_t> lease;
  LockOutcome TryLock(std::string_view id, const SiteScope& site, std::string_view owner, std::int64_t l,
                      std::int64_t now) override {
    return real->TryLock(id, site, owner, lease.value_or(l), now);
  }
  void Unlock(std::string_view id, const SiteScope& site, std::string_view owner) override {
    real->Unlock(id, site, owner);
  }
  CommitResult CommitHolding(const std::optional<Session>& loaded, const ChangeSet& changes, std::int64_t now,
                             const SiteScope& site, std::string_view owner) override {
    return real->CommitHolding(loaded, changes, now, site, owner);
  }
};

std::string CookieOf(const MemoryRequest& r) {
  auto at = r.out().find("Set-Cookie: sid=");
  REQUIRE(at != std::string::npos);
  return r.out().substr(at + 16, 43);
}

// A GET with these variables, served whole by `h`.
MemoryRequest Get(Handler& h, std::vector<std::string> env) {
  env.push_back("REQUEST_METHOD=GET");
  MemoryRequest r(std::move(env));
  h.Handle(r);
  return r;
}

}  // namespace

TEST_CASE("a page runs with the session and its changes are committed", "[handler]") {
  Fixture f;
  MemoryRequest first = f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=v"});
  CHECK(first.status() == 200);
  CHECK(first.has("Cache-Control: no-store"));
  std::string id = CookieOf(first);
  MemoryRequest second = f.Serve({"SCRIPT_FILENAME=" + f.config.pages + "/show", "HTTP_COOKIE=sid=" + id});
  CHECK(second.body() == "k=v");
  // A session response is never cacheable, whatever the page said.
  CHECK(second.has("Cache-Control: no-store"));
  CHECK_FALSE(second.has("Cache-Control: max-age=60"));
  CHECK(second.out().find("Set-Cookie") == std::string::npos);
}

TEST_CASE("a response without a session keeps the page's caching", "[handler]") {
  Fixture f;
  MemoryRequest r = f.Serve({"SCRIPT_FILENAME=show"});
  CHECK(r.has("Status: 200 OK"));
  CHECK(r.has("Cache-Control: max-age=60"));
}

TEST_CASE("the cookie is Secure over HTTPS, or always when configured", "[handler]") {
  Fixture f;
  MemoryRequest plain = f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=a=1"});
  CHECK(plain.out().find("; Secure") == std::string::npos);
  MemoryRequest https = f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=a=1", "HTTPS=on"});
  CHECK(https.out().find("HttpOnly; SameSite=Lax; Secure\r\n") != std::string::npos);
  f.config.cookie_secure = true;
  MemoryRequest always = f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=a=1"});
  CHECK(always.out().find("; Secure") != std::string::npos);
}

TEST_CASE("pages outside the root are never run", "[handler]") {
  Fixture f;
  for (const std::string& name : std::vector<std::string>{"../secret", f.dir.string() + "/secret", f.config.pages + "/../secret",
                           "/etc/passwd", "", "missing", "."}) {
    MemoryRequest r = f.Serve({"SCRIPT_FILENAME=" + name});
    INFO(name);
    CHECK(r.status() == 404);
    CHECK(r.body().find("outside") == std::string::npos);
  }
  MemoryRequest none = f.Serve({});
  CHECK(none.status() == 404);
}

TEST_CASE("a pages root of / holds every page", "[handler]") {
  Fixture f;
  f.config.pages = "/";
  Handler root(f.config, OpenStore(f.config.store));
  MemoryRequest page({"REQUEST_METHOD=GET", "SCRIPT_FILENAME=" + (f.dir / "pages/show").string()});
  root.Handle(page);
  CHECK(page.status() == 200);
  // Relative to the root, as nginx's $fastcgi_script_name would give it.
  MemoryRequest relative({"REQUEST_METHOD=GET", "SCRIPT_FILENAME=" + (f.dir / "pages/show").string().substr(1)});
  root.Handle(relative);
  CHECK(relative.status() == 200);
  // The root itself is no page.
  MemoryRequest dir({"REQUEST_METHOD=GET", "SCRIPT_FILENAME=/"});
  root.Handle(dir);
  CHECK(dir.status() == 404);
}

TEST_CASE("abandon drops the client's cookie even when its session is gone", "[handler]") {
  Fixture f;
  f.Page("logout", "printf 'X-Session-Abandon: 1\\r\\n\\r\\n'");
  const std::string expired = "Set-Cookie: sid=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0";
  std::string id = CookieOf(f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=v"}));
  CHECK(f.Serve({"SCRIPT_FILENAME=logout", "HTTP_COOKIE=sid=" + id}).out().find(expired) != std::string::npos);
  // The same logout again (another tab), an id never issued, a malformed one:
  // the cookie names no session, and the browser is still told to drop it.
  for (std::string cookie : std::vector<std::string>{"sid=" + id, "sid=" + std::string(43, 'A'), "sid=junk", "a=1; sid="}) {
    INFO(cookie);
    MemoryRequest r = f.Serve({"SCRIPT_FILENAME=logout", "HTTP_COOKIE=" + cookie});
    CHECK(r.status() == 200);
    CHECK(r.out().find(expired) != std::string::npos);
  }
  // No session cookie at all: nothing to drop.
  CHECK(f.Serve({"SCRIPT_FILENAME=logout"}).out().find("Set-Cookie") == std::string::npos);
  CHECK(f.Serve({"SCRIPT_FILENAME=logout", "HTTP_COOKIE=other=1"}).out().find("Set-Cookie") == std::string::npos);
}

TEST_CASE("with a Max-Age the cookie is renewed while the session is in use", "[handler]") {
  Fixture f;
  f.config.cookie.max_age = 3600;
  auto* seam = new SeamStore(OpenStore(f.config.store));  // idle 20 min: touched after 120 s
  Handler h(f.config, std::unique_ptr<SessionStore>(seam));
  auto serve = [&](const std::string& page, const std::string& cookie) {
    MemoryRequest r({"REQUEST_METHOD=GET", "SCRIPT_FILENAME=" + page, "QUERY_STRING=k=v", "HTTP_COOKIE=" + cookie});
    h.Handle(r);
    return r;
  };
  MemoryRequest login = serve("set", "");
  const std::string id = CookieOf(login);
  const std::string renewed = "Set-Cookie: sid=" + id + "; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600";
  CHECK(login.has(renewed));
  // In use, but the last access is fresh: no header on most requests.
  CHECK(serve("show", "sid=" + id).out().find("Set-Cookie") == std::string::npos);
  CHECK(serve("set", "sid=" + id).out().find("Set-Cookie") == std::string::npos);
  // The store refreshes the last access (a read, then a write): the cookie
  // is sent again with its whole Max-Age, same id.
  seam->age = 200;
  MemoryRequest read = serve("show", "sid=" + id);
  CHECK(read.body() == "k=v");
  CHECK(read.has(renewed));
  CHECK(serve("set", "sid=" + id).has(renewed));
  // A Max-Age shorter than the touch interval: renewed once half of it has
  // passed since the last refresh, so the cookie never runs out in use.
  f.config.cookie.max_age = 100;
  seam->age = 40;
  CHECK(serve("show", "sid=" + id).out().find("Set-Cookie") == std::string::npos);
  seam->age = 50;
  CHECK(serve("show", "sid=" + id).has("Set-Cookie: sid=" + id + "; Path=/; HttpOnly; SameSite=Lax; Max-Age=100"));
  // Without a Max-Age the cookie lasts as long as the browser: never resent.
  f.config.cookie.max_age = 0;
  seam->age = 1000;
  CHECK(serve("show", "sid=" + id).out().find("Set-Cookie") == std::string::npos);
}

// (Body limits are the server's: it answers 413 before a worker sees the request.)
TEST_CASE("the request body reaches the page, from memory or from its spill file", "[handler]") {
  Fixture f;
  CHECK(f.Serve({"SCRIPT_FILENAME=body", "CONTENT_LENGTH=5"}, "hello").body() == "hello");
  std::string big(200 * 1024, 'b');
  CHECK(f.Serve({"SCRIPT_FILENAME=body"}, big).body() == big);
}

TEST_CASE("repeated Cookie headers are one cookie string", "[handler]") {
  Fixture f;
  std::string id = CookieOf(f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=v"}));
  MemoryRequest r = f.Serve({"SCRIPT_FILENAME=show", "HTTP_COOKIE=theme=dark", "HTTP_COOKIE=sid=" + id});
  CHECK(r.body() == "k=v");
}

TEST_CASE("a HEAD request gets the page's head and no body", "[handler]") {
  Fixture f;
  f.Page("long", "printf 'Content-Type: text/plain\\r\\nX-Session-Set: seen=1\\r\\n\\r\\n'; head -c 200000 /dev/zero");
  MemoryRequest head = f.Serve({"SCRIPT_FILENAME=long", "REQUEST_METHOD=HEAD"});
  CHECK(head.status() == 200);
  CHECK(head.body().empty());
  CHECK_FALSE(CookieOf(head).empty());  // the head carries the session's cookie all the same
  MemoryRequest get = f.Serve({"SCRIPT_FILENAME=long", "REQUEST_METHOD=GET"});
  CHECK(get.body().size() == 200000);
}

TEST_CASE("a cookie of the same name set elsewhere does not hide the session", "[handler]") {
  Fixture f;
  std::string id = CookieOf(f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=v"}));
  std::string dead(id.size(), 'A');  // well formed, never issued
  // A parent domain's or another path's cookie first: garbage, or a dead id.
  for (const std::string& cookie : {"sid=garbage; sid=" + id, "sid=" + dead + "; sid=" + id,
                                    "sid=" + id + "; sid=garbage"}) {
    MemoryRequest r = f.Serve({"SCRIPT_FILENAME=show", "HTTP_COOKIE=" + cookie});
    CHECK(r.body() == "k=v");
  }
}

TEST_CASE("the injected session cannot be forged through variables", "[handler]") {
  Fixture f;
  f.Page("env", "printf 'Content-Type: text/plain\\r\\n\\r\\n'; env | sort");
  MemoryRequest r = f.Serve({"SCRIPT_FILENAME=env", "HTTP_SESSION=UserName=admin", "SESSION_VAR_UserName=admin",
                             "SESSION_ID=forged", "SESSION_NEW=0", "HTTP_PROXY=http://evil", "PATH=/evil",
                             "BAD-NAME=x", "HTTP_HOST=example"});
  std::string env = r.body();
  CHECK(env.find("admin") == std::string::npos);
  CHECK(env.find("forged") == std::string::npos);
  CHECK(env.find("evil") == std::string::npos);
  CHECK(env.find("BAD-NAME") == std::string::npos);
  CHECK(env.find("SESSION_NEW=1\n") != std::string::npos);
  CHECK(env.find("HTTP_HOST=example\n") != std::string::npos);
}

TEST_CASE("what follows the page in the path is PATH_INFO", "[handler]") {
  Fixture f;
  f.Page("info", "printf 'Content-Type: text/plain\\r\\n\\r\\n%s|%s|%s' \"$SCRIPT_NAME\" \"${PATH_INFO-unset}\" \"$SCRIPT_FILENAME\"");
  std::string page = f.config.pages + "/info";
  MemoryRequest r = f.Serve({"SCRIPT_FILENAME=" + page + "/a/b", "SCRIPT_NAME=/info/a/b", "PATH_INFO=/forged"});
  CHECK(r.body() == "/info|/a/b|" + fs::canonical(page).string());
  CHECK(f.Serve({"SCRIPT_FILENAME=" + page, "SCRIPT_NAME=/info"}).body() == "/info|unset|" + fs::canonical(page).string());
  CHECK(f.Serve({"SCRIPT_FILENAME=" + page + "/", "SCRIPT_NAME=/info/"}).body() == "/info|/|" + fs::canonical(page).string());
  // Below a file that is not a page, or below nothing: no page.
  MemoryRequest missing = f.Serve({"SCRIPT_FILENAME=" + f.config.pages + "/missing/a"});
  CHECK(missing.status() == 404);
  CHECK(f.Serve({"SCRIPT_FILENAME=" + f.dir.string() + "/secret/a"}).status() == 404);
}

TEST_CASE("a session too large for one variable comes on fd 3", "[handler]") {
  Fixture f;
  f.Page("big", "printf 'Content-Type: text/plain\\r\\n'; for k in a b c; do printf 'X-Session-Set: %s=' $k; "
                "head -c 60000 /dev/zero | tr '\\0' v; printf '\\r\\n'; done; printf '\\r\\n'");
  f.Page("got", "printf 'Content-Type: text/plain\\r\\n\\r\\n%s|%s|' \"${HTTP_SESSION-unset}\" \"${SESSION_FILE-unset}\"; "
                "printf '%s' \"$SESSION_VAR_b\" | wc -c; cat \"${SESSION_FILE:-/dev/null}\" | wc -c");
  std::string id = CookieOf(f.Serve({"SCRIPT_FILENAME=big"}));
  std::string got = f.Serve({"SCRIPT_FILENAME=got", "HTTP_COOKIE=sid=" + id}).body();
  // 3 x (2 + 60000) bytes of "k=v" joined by two '&': the whole session, on the file.
  CHECK(got == "unset|/dev/fd/3|60000\n180008\n");
  f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=v"});
  std::string small = CookieOf(f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=v"}));
  CHECK(f.Serve({"SCRIPT_FILENAME=got", "HTTP_COOKIE=sid=" + small}).body() == "k=v|unset|0\n0\n");
}

TEST_CASE("a page may not set the session cookie", "[handler]") {
  Fixture f;
  f.Page("steal", "printf 'Set-Cookie: sid=chosen; Path=/\\r\\nX-Session-Set: k=v\\r\\n\\r\\n'");
  f.Page("theme", "printf 'Set-Cookie: theme=dark\\r\\n\\r\\nok'");
  MemoryRequest r = f.Serve({"SCRIPT_FILENAME=steal"});
  CHECK(r.status() == 502);
  CHECK(r.out().find("chosen") == std::string::npos);
  CHECK(r.out().find("Set-Cookie") == std::string::npos);  // and nothing was stored
  MemoryRequest other = f.Serve({"SCRIPT_FILENAME=theme"});
  CHECK(other.status() == 200);
  CHECK(other.has("Set-Cookie: theme=dark"));
}

TEST_CASE("a page's 1xx status is its failure, and keeps no change", "[handler]") {
  Fixture f;
  std::string id = CookieOf(f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=v"}));
  for (std::string code : {"100", "101", "103"}) {
    INFO(code);
    f.Page("early", "printf 'Status: " + code + " Early\\r\\nX-Session-Set: k=changed\\r\\n\\r\\nbody'");
    MemoryRequest r = f.Serve({"SCRIPT_FILENAME=early", "HTTP_COOKIE=sid=" + id});
    CHECK(r.status() == 502);
    CHECK(r.body().find("body") == std::string::npos);
  }
  CHECK(f.Serve({"SCRIPT_FILENAME=show", "HTTP_COOKIE=sid=" + id}).body() == "k=v");
}

TEST_CASE("a large output is streamed back whole from its spill file", "[handler]") {
  Fixture f;
  f.Page("large", "printf 'Content-Type: text/plain\\r\\n\\r\\n'; head -c 1000000 /dev/zero | tr '\\0' o");
  MemoryRequest r = f.Serve({"SCRIPT_FILENAME=large"});
  CHECK(r.status() == 200);
  CHECK(r.body() == std::string(1000000, 'o'));
}

// Apache's mod_proxy_fcgi, set up as for php-fpm (SetHandler
// "proxy:unix:...|fcgi://localhost/"), names the page as a proxy URL and
// splits PATH_INFO off itself.
TEST_CASE("Apache's proxy:fcgi:// SCRIPT_FILENAME names the page", "[handler]") {
  Fixture f;
  f.Page("info", "printf 'Content-Type: text/plain\\r\\n\\r\\n%s|%s|%s' \"$SCRIPT_NAME\" \"${PATH_INFO-unset}\" \"$SCRIPT_FILENAME\"");
  std::string page = fs::canonical(f.config.pages + "/info").string();
  // As Apache sends it: a slash after the host, then the absolute path.
  CHECK(f.Serve({"SCRIPT_FILENAME=proxy:fcgi://localhost/" + page, "SCRIPT_NAME=/info"}).body() ==
        "/info|unset|" + page);
  CHECK(f.Serve({"SCRIPT_FILENAME=proxy:fcgi://127.0.0.1:9000" + page, "SCRIPT_NAME=/info"}).body() ==
        "/info|unset|" + page);
  // Apache split the path itself: SCRIPT_NAME and PATH_INFO stand as sent.
  CHECK(f.Serve({"SCRIPT_FILENAME=proxy:fcgi://localhost/" + page, "SCRIPT_NAME=/info",
                 "PATH_INFO=/extra/path", "PATH_TRANSLATED=/srv/extra/path"})
            .body() == "/info|/extra/path|" + page);
  // ProxyPassMatch: the whole path in SCRIPT_FILENAME, split by sessiond.
  CHECK(f.Serve({"SCRIPT_FILENAME=proxy:fcgi://localhost" + page + "/extra/path", "SCRIPT_NAME=/info/extra/path"})
            .body() == "/info|/extra/path|" + page);
  // The path after the host is absolute, never below the pages root, and
  // held to the root like any other; other proxy: forms name nothing.
  for (const std::string& name :
       {"proxy:fcgi://localhost/" + f.dir.string() + "/secret", "proxy:fcgi://localhost/" + f.config.pages + "/../secret",
        std::string("proxy:fcgi://localhost/info"), std::string("proxy:fcgi://localhost"),
        std::string("proxy:fcgi://localhost/"), "proxy:balancer://cluster" + page, "proxy:" + page,
        "proxy:unix:/run/s.sock|fcgi://localhost" + page, "proxy:http://localhost" + page}) {
    MemoryRequest r = f.Serve({"SCRIPT_FILENAME=" + name});
    INFO(name);
    CHECK(r.status() == 404);
    CHECK(r.body().find("outside") == std::string::npos);
  }
}

TEST_CASE("Apache's ', '-joined Cookie headers still carry the session", "[handler]") {
  Fixture f;
  std::string id = CookieOf(f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=v"}));
  CHECK(f.Serve({"SCRIPT_FILENAME=show", "HTTP_COOKIE=theme=dark, sid=" + id}).body() == "k=v");
}

namespace {

// The value of one series in the process's metrics (0 when absent).
double Series(const std::string& series) {
  std::string text = ProcessMetrics().Render(std::nullopt);
  std::size_t at = text.find("\n" + series + " ");
  return at == std::string::npos ? 0 : std::stod(text.substr(at + series.size() + 2));
}

}  // namespace

TEST_CASE("the status path is answered with the metrics, never by a page", "[handler][metrics]") {
  Fixture f;
  f.config.status_path = "/sessiond-status";
  // A page of that name is not run: the path is sessiond's.
  f.Page("sessiond-status", "printf 'Content-Type: text/plain\\r\\n\\r\\npage'");
  MemoryRequest empty =
      f.Serve({"SCRIPT_FILENAME=sessiond-status", "SCRIPT_NAME=/sessiond-status", "SESSIOND_STATUS=1"});
  CHECK(empty.status() == 200);
  CHECK(empty.has("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
  CHECK(empty.has("Cache-Control: no-store"));
  CHECK(empty.body().find("\nsessiond_sessions_live 0\n") != std::string::npos);
  CHECK(empty.body().find("page") != 0);
  CHECK(empty.out().find("Set-Cookie") == std::string::npos);

  f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=v"});
  // Through a location that passes no SCRIPT_NAME: the URI counts.
  MemoryRequest one = f.Serve({"DOCUMENT_URI=/sessiond-status", "SESSIOND_STATUS=1"});
  CHECK(one.status() == 200);
  CHECK(one.body().find("\nsessiond_sessions_live 1\n") != std::string::npos);
  // Other paths are pages as before.
  CHECK(f.Serve({"SCRIPT_FILENAME=sessiond-status", "SCRIPT_NAME=/sessiond-status/x"}).body() == "page");
}

TEST_CASE("the status path answers only where the web server sets SESSIOND_STATUS", "[handler][metrics]") {
  Fixture f;
  f.config.status_path = "/sessiond-status";
  f.Page("sessiond-status", "printf 'Content-Type: text/plain\\r\\n\\r\\npage'");
  // Through a location without the parameter (a catch-all that reaches
  // sessiond), with a client's header posing as it, or with another value:
  // neither the metrics nor a page.
  for (std::vector<std::string> extra : std::vector<std::vector<std::string>>{
           {}, {"HTTP_SESSIOND_STATUS=1"}, {"SESSIOND_STATUS=0"}, {"SESSIOND_STATUS="}}) {
    extra.push_back("SCRIPT_FILENAME=sessiond-status");
    extra.push_back("SCRIPT_NAME=/sessiond-status");
    MemoryRequest r = f.Serve(extra);
    INFO(extra.front());
    CHECK(r.status() == 404);
    CHECK(r.body().find("sessiond_") == std::string::npos);
    CHECK(r.body().find("page") == std::string::npos);
  }
  CHECK(f.Serve({"DOCUMENT_URI=/sessiond-status", "SESSIOND_STATUS=1"}).status() == 200);
}

TEST_CASE("scrapes in a row count the live sessions once", "[handler][metrics]") {
  Fixture f;
  f.config.status_path = "/sessiond-status";
  auto* seam = new SeamStore(OpenStore(f.config.store));
  LiveCount live;  // the default interval
  Handler h(f.config, std::unique_ptr<SessionStore>(seam), NoApps(), live);
  for (int scrape = 0; scrape < 2; ++scrape) {
    MemoryRequest r({"REQUEST_METHOD=GET", "SCRIPT_NAME=/sessiond-status", "SESSIOND_STATUS=1"});
    h.Handle(r);
    CHECK(r.status() == 200);
    CHECK(r.body().find("\nsessiond_sessions_live 0\n") != std::string::npos);
  }
  CHECK(seam->counts == 1);
  // Another worker's handler shares the count.
  auto* other = new SeamStore(OpenStore(f.config.store));
  Handler h2(f.config, std::unique_ptr<SessionStore>(other), NoApps(), live);
  MemoryRequest r({"REQUEST_METHOD=GET", "SCRIPT_NAME=/sessiond-status", "SESSIOND_STATUS=1"});
  h2.Handle(r);
  CHECK(r.body().find("\nsessiond_sessions_live 0\n") != std::string::npos);
  CHECK(other->counts == 0);
}

TEST_CASE("without a status path, its path is a page path", "[handler][metrics]") {
  Fixture f;
  MemoryRequest r = f.Serve({"SCRIPT_FILENAME=sessiond-status", "SCRIPT_NAME=/sessiond-status"});
  CHECK(r.status() == 404);
  CHECK(r.body().find("sessiond_") == std::string::npos);
}

TEST_CASE("requests are counted by status, the status path's own not at all", "[handler][metrics]") {
  Fixture f;
  f.config.status_path = "/sessiond-status";
  f.Page("fail", "exit 1");
  double ok = Series("sessiond_requests_total{status=\"200\"}");
  double missing = Series("sessiond_requests_total{status=\"404\"}");
  double failed = Series("sessiond_requests_total{status=\"502\"}");
  double created = Series("sessiond_sessions_created_total");
  double abandoned = Series("sessiond_sessions_abandoned_total");
  double runs = Series("sessiond_page_duration_seconds_count");
  f.Page("logout", "printf 'X-Session-Abandon: 1\\r\\n\\r\\n'");
  std::string id = CookieOf(f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=v"}));
  f.Serve({"SCRIPT_FILENAME=missing"});
  f.Serve({"SCRIPT_FILENAME=fail"});
  f.Serve({"SCRIPT_NAME=/sessiond-status", "SESSIOND_STATUS=1"});
  f.Serve({"SCRIPT_FILENAME=logout", "HTTP_COOKIE=sid=" + id});
  CHECK(Series("sessiond_requests_total{status=\"200\"}") == ok + 2);
  CHECK(Series("sessiond_requests_total{status=\"404\"}") == missing + 1);
  CHECK(Series("sessiond_requests_total{status=\"502\"}") == failed + 1);
  CHECK(Series("sessiond_sessions_created_total") == created + 1);
  CHECK(Series("sessiond_sessions_abandoned_total") == abandoned + 1);
  CHECK(Series("sessiond_page_duration_seconds_count") == runs + 3);
}

namespace {
// An application at the runner seam: records what it was given, answers
// with `reply`, or fails as `outcome` says.
struct FakeApp final : Runner {
  mutable std::vector<std::string> env;
  mutable std::string body;
  std::string reply = "Content-Type: text/plain\r\nX-Session-Set: from=app\r\n\r\napp says hi";
  RunResult::Outcome outcome = RunResult::Outcome::Exited;
  std::string Describe() const override { return "app fake"; }
  RunResult Run(const RunInput& in) const override {
    env = in.env;
    AppendSession(env, in.session, std::string::npos, in.session_off);
    body = in.body->str();
    RunResult r;
    r.outcome = outcome;
    r.output.Append(reply);
    r.errors = "app warning\n";
    r.detail = "failed on purpose";
    return r;
  }
  bool Has(const std::string& kv) const { return std::find(env.begin(), env.end(), kv) != env.end(); }
};

// The application "shop" in `apps`: a FakeApp answering a plain "hi".
FakeApp* AddShop(AppRunners& apps) {
  auto* fake = new FakeApp;
  fake->reply = "Content-Type: text/plain\r\n\r\nhi";
  apps.emplace("shop", fake);
  return fake;
}
}  // namespace

TEST_CASE("SESSIOND_APP picks an application, its directives are applied as a page's", "[handler][app]") {
  Fixture f;
  AppRunners apps;
  auto* fake = new FakeApp;
  apps.emplace("shop", fake);
  Handler handler(f.config, OpenStore(f.config.store), apps);
  MemoryRequest first({"SESSIOND_APP=shop", "SCRIPT_FILENAME=/srv/php/index.php", "SCRIPT_NAME=/index.php",
                       "PATH_INFO=/x", "REQUEST_METHOD=POST", "HTTP_SESSION=forged", "SESSION_ID=forged"},
                      "the body");
  handler.Handle(first);
  CHECK(first.status() == 200);
  CHECK(first.body() == "app says hi");
  CHECK_FALSE(first.has("X-Session-Set: from=app"));
  // The web server's script variables reach the app as they were sent.
  CHECK(fake->Has("SCRIPT_FILENAME=/srv/php/index.php"));
  CHECK(fake->Has("SCRIPT_NAME=/index.php"));
  CHECK(fake->Has("PATH_INFO=/x"));
  CHECK(fake->Has("HTTP_SESSION="));
  CHECK(fake->Has("SESSION_NEW=1"));
  CHECK_FALSE(fake->Has("HTTP_SESSION=forged"));
  CHECK_FALSE(fake->Has("SESSION_ID=forged"));
  CHECK_FALSE(fake->Has("SESSIOND_APP=shop"));
  CHECK(fake->body == "the body");
  std::string id = CookieOf(first);
  MemoryRequest second({"SESSIOND_APP=shop", "HTTP_COOKIE=sid=" + id});
  handler.Handle(second);
  CHECK(fake->Has("HTTP_SESSION=from=app"));
  CHECK(fake->Has("SESSION_VAR_from=app"));
  CHECK(fake->Has("SESSION_ID=" + id));
}

TEST_CASE("a client's header cannot pick an application, an unknown name is a 500", "[handler][app]") {
  Fixture f;
  AppRunners apps;
  auto* fake = new FakeApp;
  apps.emplace("shop", fake);
  Handler handler(f.config, OpenStore(f.config.store), apps);
  // A "Sessiond-App: shop" header arrives as HTTP_SESSIOND_APP: the page runs.
  MemoryRequest header({"HTTP_SESSIOND_APP=shop", "SCRIPT_FILENAME=show", "REQUEST_METHOD=GET"});
  handler.Handle(header);
  CHECK(header.status() == 200);
  CHECK(fake->env.empty());
  MemoryRequest unknown({"SESSIOND_APP=nope", "SCRIPT_FILENAME=show", "REQUEST_METHOD=GET"});
  handler.Handle(unknown);
  CHECK(unknown.status() == 500);
  CHECK(fake->env.empty());
}

TEST_CASE("an application that fails keeps no session change", "[handler][app]") {
  using O = RunResult::Outcome;
  for (auto [outcome, status] : {std::pair{O::SpawnFailed, 502}, std::pair{O::TimedOut, 504},
                                 std::pair{O::Malformed, 502}, std::pair{O::OutputTooLarge, 502},
                                 std::pair{O::Busy, 503}}) {
    Fixture f;
    AppRunners apps;
    auto* fake = new FakeApp;
    fake->outcome = outcome;
    apps.emplace("shop", fake);
    Handler handler(f.config, OpenStore(f.config.store), apps);
    MemoryRequest r({"SESSIOND_APP=shop", "REQUEST_METHOD=GET"});
    handler.Handle(r);
    CHECK(r.status() == status);
    CHECK(r.out().find("Set-Cookie") == std::string::npos);
    CHECK(OpenStore(f.config.store)->CountLive(0) == 0);
  }
}

TEST_CASE("an application's busy connections are a 503 with Retry-After", "[handler][app]") {
  Fixture f;
  AppRunners apps;
  auto* fake = new FakeApp;
  fake->outcome = RunResult::Outcome::Busy;
  apps.emplace("shop", fake);
  Handler handler(f.config, OpenStore(f.config.store), apps);
  MemoryRequest r({"SESSIOND_APP=shop", "REQUEST_METHOD=GET"});
  handler.Handle(r);
  CHECK(r.status() == 503);
  CHECK(r.has("Retry-After: 1"));
}

TEST_CASE("a request carrying this process's loop token is answered 508 without running anything", "[handler][app]") {
  Fixture f;
  AppRunners apps;
  auto* fake = new FakeApp;
  apps.emplace("shop", fake);
  Handler handler(f.config, OpenStore(f.config.store), apps);
  MemoryRequest loop({"SESSIOND_APP=shop", "REQUEST_METHOD=GET", std::string(kLoopParam) + "=" + LoopToken()});
  handler.Handle(loop);
  CHECK(loop.status() == 508);
  CHECK(fake->env.empty());
  // Another process's token (a chain of two sessionds) is no loop here.
  MemoryRequest other({"SESSIOND_APP=shop", "REQUEST_METHOD=GET", std::string(kLoopParam) + "=0123"});
  handler.Handle(other);
  CHECK(other.status() == 200);
  // Through another sessiond first: its token comes before ours, and ours is
  // still found.
  MemoryRequest chain({"SESSIOND_APP=shop", "REQUEST_METHOD=GET", std::string(kLoopParam) + "=0123",
                       std::string(kLoopParam) + "=" + LoopToken()});
  handler.Handle(chain);
  CHECK(chain.status() == 508);
  // And both tokens travel on, so a loop through several sessionds is seen.
  MemoryRequest chained({"SESSIOND_APP=shop", "REQUEST_METHOD=GET", std::string(kLoopParam) + "=0123",
                         std::string(kLoopParam) + "=4567"});
  handler.Handle(chained);
  CHECK(chained.status() == 200);
  std::size_t tokens = 0;
  for (const std::string& kv : fake->env) tokens += kv.rfind(std::string(kLoopParam) + "=", 0) == 0;
  CHECK(tokens == 2);  // both it was given (the app runner adds this process's own)
}

// Per-route modes (SESSION_MODE, route.h): what reaches the store and the page.
namespace {
// Prints what a page learns of its session: the mode, and which of the
// session variables it was given at all.
const char* kModePage =
    "printf 'Content-Type: text/plain\\r\\nCache-Control: max-age=60\\r\\n\\r\\n'; "
    "printf 'mode=%s ' \"${SESSION_MODE-unset}\"; "
    "printf 'id=%s ' \"${SESSION_ID+given}\"; printf 'new=%s ' \"${SESSION_NEW-unset}\"; "
    "printf 'session=%s' \"${HTTP_SESSION-unset}\"";

// A store that cannot be reached: every call fails as a database that is down.
struct DownStore final : SessionStore {
  int calls = 0;
  bool busy = true;  // false: a failure that is not an outage (a 500)
  [[noreturn]] void Fail() {
    ++calls;
    throw StoreError("the database is down", 0, busy);
  }
  std::optional<Session> Load(std::string_view, std::int64_t, const SiteScope&) override { Fail(); }
  CommitResult Commit(const std::optional<Session>&, const ChangeSet&, std::int64_t, const SiteScope&) override {
    Fail();
  }
  std::size_t CollectGarbage(std::int64_t, std::size_t) override { Fail(); }
  LockOutcome TryLock(std::string_view, const SiteScope&, std::string_view, std::int64_t, std::int64_t) override {
    Fail();
  }
};

// A Handler over a SeamStore on the fixture's file, and a visitor's session in it.
struct ModeFixture : Fixture {
  SeamStore* seam = new SeamStore(OpenStore(config.store));
  Handler h{config, std::unique_ptr<SessionStore>(seam)};
  std::string id;
  ModeFixture() {
    Page("mode", kModePage);
    MemoryRequest login({"REQUEST_METHOD=GET", "SCRIPT_FILENAME=set", "QUERY_STRING=k=v"});
    h.Handle(login);
    id = CookieOf(login);
    seam->loads = seam->commits = 0;
  }
  MemoryRequest Run(const std::string& mode, const std::string& page, std::vector<std::string> more = {}) {
    more.push_back("REQUEST_METHOD=GET");
    more.push_back("SCRIPT_FILENAME=" + page);
    more.push_back("HTTP_COOKIE=sid=" + id);
    if (!mode.empty()) more.push_back("SESSION_MODE=" + mode);
    MemoryRequest r(std::move(more));
    h.Handle(r);
    return r;
  }
  std::string Stored() { return Run("", "show").body(); }
};
}  // namespace

TEST_CASE("off: the page gets no session, the store is never asked, no cookie is sent", "[handler][modes]") {
  ModeFixture f;
  MemoryRequest r = f.Run("off", "mode");
  CHECK(r.status() == 200);
  CHECK(r.body() == "mode=off id= new=unset session=unset");
  CHECK(f.seam->loads == 0);
  CHECK(f.seam->commits == 0);
  CHECK(r.out().find("Set-Cookie") == std::string::npos);
  // Not a session's response: the page's own caching stands.
  CHECK(r.has("Cache-Control: max-age=60"));
  CHECK_FALSE(r.has("Cache-Control: no-store"));
}

TEST_CASE("off: a store that cannot be reached still serves the route", "[handler][modes]") {
  Fixture f;
  f.Page("mode", kModePage);
  auto* down = new DownStore;
  Handler h(f.config, std::unique_ptr<SessionStore>(down));
  MemoryRequest off({"REQUEST_METHOD=GET", "SCRIPT_FILENAME=mode", "SESSION_MODE=off", "HTTP_COOKIE=sid=x"});
  h.Handle(off);
  CHECK(off.status() == 200);
  CHECK(down->calls == 0);
  // The same page on a write route needs the store.
  MemoryRequest write({"REQUEST_METHOD=GET", "SCRIPT_FILENAME=mode",
                       "HTTP_COOKIE=sid=" + std::string(43, 'A')});
  h.Handle(write);
  CHECK(write.status() == 503);
  CHECK(down->calls > 0);
}

TEST_CASE("off and read: a page's directive is a 502 and nothing is stored", "[handler][modes]") {
  ModeFixture f;
  f.Page("logout", "printf 'X-Session-Abandon: 1\\r\\n\\r\\n'");
  f.Page("login", "printf 'X-Session-Regenerate: 1\\r\\n\\r\\n'");
  for (std::string mode : {"off", "read"}) {
    for (std::string page : {"set", "logout", "login"}) {
      INFO(mode << " " << page);
      MemoryRequest r = f.Run(mode, page, {"QUERY_STRING=k=changed"});
      CHECK(r.status() == 502);
      CHECK(r.out().find("Set-Cookie") == std::string::npos);
      CHECK(f.seam->commits == 0);
    }
  }
  // The session is the one it was, under the same id.
  CHECK(f.Stored() == "k=v");
}

TEST_CASE("read: the session is injected and never written, touched only with SESSION_READ_TOUCH", "[handler][modes]") {
  ModeFixture f;
  MemoryRequest r = f.Run("read", "mode");
  CHECK(r.status() == 200);
  CHECK(r.body() == "mode=read id=given new=0 session=k=v");
  CHECK(r.has("Cache-Control: no-store"));
  CHECK(f.seam->loads == 1);
  // Past the touch interval (idle 20 min: 120 s) a write route would touch;
  // a read route does not reach the store's commit at all.
  f.seam->age = 200;
  CHECK(f.Run("read", "mode", {"SESSION_READ_TOUCH=off"}).status() == 200);
  CHECK(f.seam->commits == 0);
  // With SESSION_READ_TOUCH on, only the lazy touch: an empty change set.
  MemoryRequest touched = f.Run("read", "mode", {"SESSION_READ_TOUCH=on"});
  CHECK(touched.status() == 200);
  CHECK(f.seam->commits == 1);
  CHECK(f.seam->last.outcome == CommitResult::Outcome::Updated);
  CHECK(f.seam->last.touched);
  // A visitor without a session on a read route: nothing is created.
  MemoryRequest anonymous({"REQUEST_METHOD=GET", "SCRIPT_FILENAME=mode", "SESSION_MODE=read", "SESSION_READ_TOUCH=on"});
  f.h.Handle(anonymous);
  CHECK(anonymous.body() == "mode=read id=given new=1 session=");
  CHECK(anonymous.out().find("Set-Cookie") == std::string::npos);
  CHECK(f.seam->commits == 1);
}

TEST_CASE("write: as before, and the page is told its mode", "[handler][modes]") {
  ModeFixture f;
  CHECK(f.Run("", "mode").body() == "mode=write id=given new=0 session=k=v");
  CHECK(f.Run("write", "set", {"QUERY_STRING=k=w"}).status() == 200);
  CHECK(f.Stored() == "k=w");
  // Exclusive is write for everything here (its lock aside).
  CHECK(f.Run("exclusive", "set", {"QUERY_STRING=k=x"}).status() == 200);
  CHECK(f.Stored() == "k=x");
  // An empty parameter is not sent: write.
  CHECK(f.Run("", "mode", {"SESSION_MODE="}).body() == "mode=write id=given new=0 session=k=x");
}

TEST_CASE("a client cannot choose the mode, an unknown mode is a 500", "[handler][modes]") {
  ModeFixture f;
  // A "Session-Mode: off" header arrives as HTTP_SESSION_MODE: nothing.
  MemoryRequest r = f.Run("", "set", {"HTTP_SESSION_MODE=off", "QUERY_STRING=k=client"});
  CHECK(r.status() == 200);
  CHECK(f.Stored() == "k=client");
  CHECK(f.Run("", "mode", {"HTTP_SESSION_MODE=off"}).body() == "mode=write id=given new=0 session=k=client");
  // What the web server set is replaced by sessiond's own spelling, never passed on twice.
  f.Page("modes", "printf 'Content-Type: text/plain\\r\\n\\r\\n'; env | grep -c '^SESSION_MODE='");
  CHECK(f.Run("read", "modes").body() == "1\n");
  const int loads = f.seam->loads;
  MemoryRequest bad = f.Run("readonly", "set", {"QUERY_STRING=k=bad"});
  CHECK(bad.status() == 500);
  CHECK(f.seam->loads == loads);
  CHECK(f.Stored() == "k=client");
}

TEST_CASE("an application is told the mode, and gets no session on an off route", "[handler][app][modes]") {
  Fixture f;
  AppRunners apps;
  FakeApp* fake = AddShop(apps);
  Handler handler(f.config, OpenStore(f.config.store), apps);
  MemoryRequest off({"SESSIOND_APP=shop", "SESSION_MODE=off", "REQUEST_METHOD=GET"});
  handler.Handle(off);
  CHECK(off.status() == 200);
  CHECK(fake->Has("SESSION_MODE=off"));
  // Nothing else of a session: no SESSION_* but the mode, no HTTP_SESSION.
  for (const std::string& kv : fake->env) {
    INFO(kv);
    CHECK((kv.rfind("SESSION_MODE=", 0) == 0 || kv.rfind("SESSION", 0) != 0));
    CHECK(kv.rfind("HTTP_SESSION", 0) != 0);
  }
  MemoryRequest read({"SESSIOND_APP=shop", "SESSION_MODE=read", "REQUEST_METHOD=GET"});
  handler.Handle(read);
  CHECK(fake->Has("SESSION_MODE=read"));
  CHECK(fake->Has("SESSION_NEW=1"));
  CHECK(fake->Has("HTTP_SESSION="));
}

TEST_CASE("read: with a Max-Age the cookie is renewed only when the read touched", "[handler][modes]") {
  ModeFixture f;
  f.config.cookie.max_age = 100;
  // Half the Max-Age has passed since the last access: a write route would
  // send the cookie again; a read route's request is no activity.
  f.seam->age = 60;
  CHECK(f.Run("read", "mode").out().find("Set-Cookie") == std::string::npos);
  f.seam->age = 200;  // past the touch interval as well
  CHECK(f.Run("read", "mode").out().find("Set-Cookie") == std::string::npos);
  CHECK(f.Run("read", "mode", {"SESSION_READ_TOUCH=on"}).has("Set-Cookie: sid=" + f.id +
                                                            "; Path=/; HttpOnly; SameSite=Lax; Max-Age=100"));
  f.seam->age = 60;
  CHECK(f.Run("write", "mode").has("Set-Cookie: sid=" + f.id + "; Path=/; HttpOnly; SameSite=Lax; Max-Age=100"));
}

// --- SESSION_MODE exclusive: the handler's lock step (session_lock.h).

TEST_CASE("exclusive: the lock is released however the request ends, and a held one is a 503", "[handler][lock]") {
  Fixture f;
  f.config.lock_wait = std::chrono::milliseconds(0);  // a lock left behind would be a 503 at once
  f.config.page.timeout = std::chrono::milliseconds(300);
  f.Page("fail", "exit 1");
  f.Page("stall", "sleep 5");
  const std::string id = CookieOf(f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=1"}));
  auto exclusive = [&](const std::string& page, const std::string& query = "") {
    return f.Serve({"SCRIPT_FILENAME=" + page, "QUERY_STRING=" + query, "HTTP_COOKIE=sid=" + id,
                    "SESSION_MODE=exclusive"});
  };
  CHECK(exclusive("fail").has("Status: 502 Bad Gateway"));
  CHECK(exclusive("stall").has("Status: 504 Gateway Timeout"));
  CHECK(exclusive("set", "k=2").has("Status: 200 OK"));
  CHECK(exclusive("show").body() == "k=2");  // a read releases it too
  // Held by a request of another sessiond: 503 with Retry-After, nothing run.
  auto other = OpenStore(f.config.store);
  REQUIRE(other->TryLock(id, "another request", 30, std::time(nullptr)) == SessionStore::LockOutcome::Taken);
  MemoryRequest refused = exclusive("set", "k=3");
  CHECK(refused.has("Status: 503 Service Unavailable"));
  CHECK(refused.has("Retry-After: 1"));
  other->Unlock(id, "another request");
  CHECK(exclusive("show").body() == "k=2");
  // A new visitor needs no lock: a held lock of someone else's session is no matter.
  REQUIRE(other->TryLock(id, "another request", 30, std::time(nullptr)) == SessionStore::LockOutcome::Taken);
  CHECK(f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=new", "SESSION_MODE=exclusive"}).has("Status: 200 OK"));
}

TEST_CASE("exclusive: a request whose lease ended stores nothing and gets 409", "[handler][lock]") {
  Fixture f;
  auto* seam = new SeamStore(OpenStore(f.config.store));
  Handler h(f.config, std::unique_ptr<SessionStore>(seam));
  auto serve = [&h](std::vector<std::string> env) { return Get(h, std::move(env)); };
  const std::string id = CookieOf(serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=1"}));
  seam->lease = 0;
  MemoryRequest late =
      serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=2", "HTTP_COOKIE=sid=" + id, "SESSION_MODE=exclusive"});
  CHECK(late.has("Status: 409 Conflict"));
  CHECK(late.out().find("Set-Cookie") == std::string::npos);
  seam->lease.reset();
  CHECK(serve({"SCRIPT_FILENAME=show", "HTTP_COOKIE=sid=" + id, "SESSION_MODE=exclusive"}).body() == "k=1");
}

// An old id within its rotation grace has no session of its own to lock: the
// request is served the session under its new id, under that one's lock
// (before: under no lock at all, beside the request holding it).
TEST_CASE("exclusive: an old id within its rotation grace takes the lock of the session under its new id",
          "[handler][lock]") {
  Fixture f;
  f.config.lock_wait = std::chrono::milliseconds(0);
  f.Page("login", "printf 'X-Session-Regenerate: 1\\r\\n\\r\\n'");
  Handler h(f.config, OpenStore(f.config.store));
  auto serve = [&h](std::vector<std::string> env) { return Get(h, std::move(env)); };
  const std::string old_id = CookieOf(serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=1"}));
  const std::string new_id = CookieOf(serve({"SCRIPT_FILENAME=login", "HTTP_COOKIE=sid=" + old_id}));
  REQUIRE(new_id != old_id);
  auto other = OpenStore(f.config.store);  // another request, holding the session's lock
  REQUIRE(other->TryLock(new_id, "other", 60, std::time(nullptr)) == SessionStore::LockOutcome::Taken);
  MemoryRequest waits =
      serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=2", "HTTP_COOKIE=sid=" + old_id, "SESSION_MODE=exclusive"});
  CHECK(waits.status() == 503);
  other->Unlock(new_id, "other");
  MemoryRequest late =
      serve({"SCRIPT_FILENAME=set", "QUERY_STRING=k=2", "HTTP_COOKIE=sid=" + old_id, "SESSION_MODE=exclusive"});
  CHECK(late.status() == 200);
  CHECK(late.has("Set-Cookie: sid=" + new_id + "; Path=/; HttpOnly; SameSite=Lax"));
  CHECK(serve({"SCRIPT_FILENAME=show", "HTTP_COOKIE=sid=" + new_id, "SESSION_MODE=exclusive"}).body() == "k=2");
}

// --- SESSION_STATUS, and SESSION_ON_STORE_ERROR degrade.
namespace {
const char* kStatusPage =
    "printf 'Content-Type: text/plain\\r\\n\\r\\n'; "
    "printf 'status=%s new=%s session=%s' \"${SESSION_STATUS-unset}\" \"${SESSION_NEW-unset}\" "
    "\"${HTTP_SESSION-unset}\"";

// The value of metric line `name` in the process's metrics (0 when absent).
double MetricValue(const std::string& name) {
  const std::string text = ProcessMetrics().Render(std::nullopt);
  const std::size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::stod(text.substr(at + name.size() + 2));
}
}  // namespace

TEST_CASE("the page is told its session's status: new, ok, expired, regenerated", "[handler][status]") {
  ModeFixture f;
  f.Page("status", kStatusPage);
  f.Page("login", "printf 'X-Session-Regenerate: 1\\r\\n\\r\\n'");
  auto status = [&](std::vector<std::string> env) {
    env.push_back("SCRIPT_FILENAME=status");
    return Get(f.h, std::move(env)).body();
  };
  CHECK(status({}) == "status=new new=1 session=");
  // A cookie that holds no id sessiond could have issued is no session at all.
  CHECK(status({"HTTP_COOKIE=sid=garbage"}) == "status=new new=1 session=");
  CHECK(status({"HTTP_COOKIE=other=" + f.id}) == "status=new new=1 session=");
  CHECK(status({"HTTP_COOKIE=sid=" + f.id}) == "status=ok new=0 session=k=v");
  // A well-formed id the store does not know (timed out, swept, logged out).
  CHECK(status({"HTTP_COOKIE=sid=" + std::string(43, 'A')}) == "status=expired new=1 session=");
  // The same on a read route; an off route is told nothing.
  CHECK(status({"HTTP_COOKIE=sid=" + f.id, "SESSION_MODE=read"}) == "status=ok new=0 session=k=v");
  CHECK(status({"HTTP_COOKIE=sid=" + std::string(43, 'A'), "SESSION_MODE=read"}) ==
        "status=expired new=1 session=");
  CHECK(status({"HTTP_COOKIE=sid=" + f.id, "SESSION_MODE=off"}) == "status=unset new=unset session=unset");
  // A site's route reads its own cookie: the default cookie's id means nothing there.
  CHECK(status({"HTTP_COOKIE=sid=" + std::string(43, 'A'), "SESSION_SITE=shop", "SESSION_COOKIE=shop_sid"}) ==
        "status=new new=1 session=");
  CHECK(status({"HTTP_COOKIE=shop_sid=" + std::string(43, 'A'), "SESSION_SITE=shop", "SESSION_COOKIE=shop_sid"}) ==
        "status=expired new=1 session=");
  // A client's Session-Status header poses as nothing.
  CHECK(status({"HTTP_SESSION_STATUS=ok", "SESSION_STATUS=ok"}) == "status=new new=1 session=");
  // The old id within its rotation grace leads to the session under its new one.
  const std::string new_id = CookieOf(Get(f.h, {"SCRIPT_FILENAME=login", "HTTP_COOKIE=sid=" + f.id}));
  CHECK(status({"HTTP_COOKIE=sid=" + f.id}) == "status=regenerated new=0 session=k=v");
  CHECK(status({"HTTP_COOKIE=sid=" + f.id, "SESSION_MODE=exclusive"}) == "status=regenerated new=0 session=k=v");
  CHECK(status({"HTTP_COOKIE=sid=" + new_id}) == "status=ok new=0 session=k=v");
  CHECK(status({"HTTP_COOKIE=sid=" + new_id, "SESSION_MODE=exclusive"}) == "status=ok new=0 session=k=v");
}

TEST_CASE("an application is told its session's status", "[handler][app][status]") {
  Fixture f;
  AppRunners apps;
  FakeApp* fake = AddShop(apps);
  Handler handler(f.config, OpenStore(f.config.store), apps);
  CHECK(Get(handler, {"SESSIOND_APP=shop"}).status() == 200);
  CHECK(fake->Has("SESSION_STATUS=new"));
  CHECK(Get(handler, {"SESSIOND_APP=shop", "HTTP_COOKIE=sid=" + std::string(43, 'A')}).status() == 200);
  CHECK(fake->Has("SESSION_STATUS=expired"));
  CHECK(Get(handler, {"SESSIOND_APP=shop", "SESSION_MODE=off"}).status() == 200);
  for (const std::string& kv : fake->env) CHECK(kv.rfind("SESSION_STATUS=", 0) != 0);
}

TEST_CASE("degrade: with the store out of reach the page runs without a session, and a change is a 503",
          "[handler][status]") {
  Fixture f;
  f.Page("status", kStatusPage);
  auto* down = new DownStore;
  Handler h(f.config, std::unique_ptr<SessionStore>(down));
  const std::string cookie = "HTTP_COOKIE=sid=" + std::string(43, 'A');
  auto serve = [&](const std::string& page, std::vector<std::string> env) {
    env.push_back("SCRIPT_FILENAME=" + page);
    env.push_back(cookie);
    return Get(h, std::move(env));
  };
  const double degraded = MetricValue("sessiond_degraded_requests_total");
  // fail, the default: 503 as ever, the page never runs.
  CHECK(serve("status", {}).status() == 503);
  CHECK(serve("status", {"SESSION_ON_STORE_ERROR=fail"}).status() == 503);
  CHECK(MetricValue("sessiond_degraded_requests_total") == degraded);
  for (std::string mode : {"write", "read", "exclusive"}) {
    INFO(mode);
    down->calls = 0;
    MemoryRequest r = serve("status", {"SESSION_ON_STORE_ERROR=degrade", "SESSION_MODE=" + mode});
    CHECK(r.status() == 200);
    CHECK(r.body() == "status=unavailable new=1 session=");
    CHECK(r.out().find("Set-Cookie") == std::string::npos);
    CHECK(down->calls == 1);  // the load (or the lock) that failed; no commit tried
    // A change cannot be kept: 503 with Retry-After, the page's body withheld.
    down->calls = 0;
    MemoryRequest change = serve("set", {"SESSION_ON_STORE_ERROR=degrade", "SESSION_MODE=" + mode,
                                         "QUERY_STRING=k=lost"});
    if (mode == "read") {
      CHECK(change.status() == 502);  // the route's mistake, whatever the store
    } else {
      CHECK(change.has("Status: 503 Service Unavailable"));
      CHECK(change.has("Retry-After: 1"));
    }
    CHECK(change.out().find("Set-Cookie") == std::string::npos);
    CHECK(down->calls == 1);
  }
  CHECK(MetricValue("sessiond_degraded_requests_total") == degraded + 6);
  // A store failure that is no outage (a 500) is not ridden out.
  down->busy = false;
  CHECK(serve("status", {"SESSION_ON_STORE_ERROR=degrade"}).status() == 500);
}

TEST_CASE("degrade: with the store back, the route is served its session", "[handler][status]") {
  ModeFixture f;
  f.Page("status", kStatusPage);
  // The store back by the time the page is done: its change is still
  // refused, never committed as a new visitor's session (whose cookie would
  // replace the visitor's own).
  f.seam->loads_fail = true;
  MemoryRequest refused = f.Run("", "set", {"SESSION_ON_STORE_ERROR=degrade", "QUERY_STRING=k=lost"});
  CHECK(refused.status() == 503);
  CHECK(refused.out().find("Set-Cookie") == std::string::npos);
  CHECK(f.seam->commits == 0);
  f.seam->loads_fail = false;
  MemoryRequest r = f.Run("", "status", {"SESSION_ON_STORE_ERROR=degrade"});
  CHECK(r.body() == "status=ok new=0 session=k=v");
  CHECK(f.Run("", "set", {"SESSION_ON_STORE_ERROR=degrade", "QUERY_STRING=k=w"}).status() == 200);
  CHECK(f.Stored() == "k=w");
}

TEST_CASE("a site's route reads and writes its own cookie, and another site's id is unknown there",
          "[handler][sites]") {
  Fixture f;
  const std::string shop_route[] = {"SESSION_SITE=shop", "SESSION_COOKIE=shop_sid"};
  MemoryRequest set = f.Serve({"SCRIPT_FILENAME=set", "QUERY_STRING=cart=3", shop_route[0], shop_route[1]});
  REQUIRE(set.status() == 200);
  auto at = set.out().find("Set-Cookie: shop_sid=");
  REQUIRE(at != std::string::npos);
  const std::string shop_id = set.out().substr(at + 21, 43);
  MemoryRequest shown = f.Serve({"SCRIPT_FILENAME=show", "HTTP_COOKIE=sid=other; shop_sid=" + shop_id,
                                 shop_route[0], shop_route[1]});
  CHECK(shown.body() == "cart=3");
  // The same value under the default site's cookie, or another site's: nothing.
  CHECK(f.Serve({"SCRIPT_FILENAME=show", "HTTP_COOKIE=sid=" + shop_id}).body().empty());
  CHECK(f.Serve({"SCRIPT_FILENAME=show", "HTTP_COOKIE=shop_sid=" + shop_id, "SESSION_SITE=blog",
                 "SESSION_COOKIE=shop_sid"}).body().empty());
  // A page may not set the site's cookie itself.
  f.Page("setcookie", "printf 'Set-Cookie: shop_sid=x\\r\\n\\r\\n'");
  CHECK(f.Serve({"SCRIPT_FILENAME=setcookie", shop_route[0], shop_route[1]}).status() == 502);
}

// Limits on session floods (new_sessions.h): asked only by a request that
// would create a session, after its page ran and before the commit.
TEST_CASE("past the new-session limits a new visitor's write is a 503 and stores nothing while sessions go on",
          "[handler][new_sessions]") {
  Fixture f;
  NewSessionLimits limits({2, 0});
  auto* seam = new SeamStore(OpenStore(f.config.store));
  Handler h(f.config, std::unique_ptr<SessionStore>(seam), NoApps(), f.live, &limits);
  auto from = [&h](const std::string& address, std::vector<std::string> env) {
    env.push_back("REMOTE_ADDR=" + address);
    return Get(h, std::move(env));
  };
  const std::string id = CookieOf(from("192.0.2.1", {"SCRIPT_FILENAME=set", "QUERY_STRING=k=1"}));
  CHECK(from("192.0.2.1", {"SCRIPT_FILENAME=set", "QUERY_STRING=k=1"}).status() == 200);
  const int commits = seam->commits;
  MemoryRequest refused = from("192.0.2.1", {"SCRIPT_FILENAME=set", "QUERY_STRING=k=1"});
  CHECK(refused.has("Status: 503 Service Unavailable"));
  CHECK(refused.has("Retry-After: 30"));
  CHECK(refused.out().find("Set-Cookie") == std::string::npos);
  CHECK(seam->commits == commits);  // nothing reached the store
  // A visitor with a session writes, reads, regenerates: never asked.
  for (int i = 2; i <= 5; ++i)
    CHECK(from("192.0.2.1", {"SCRIPT_FILENAME=set", "QUERY_STRING=k=" + std::to_string(i), "HTTP_COOKIE=sid=" + id})
              .status() == 200);
  CHECK(from("192.0.2.1", {"SCRIPT_FILENAME=show", "HTTP_COOKIE=sid=" + id}).body() == "k=5");
  // A new visitor who stores nothing creates nothing, and is not asked either.
  CHECK(from("192.0.2.1", {"SCRIPT_FILENAME=show"}).status() == 200);
  // Another address has an allowance of its own.
  CHECK(from("192.0.2.2", {"SCRIPT_FILENAME=set", "QUERY_STRING=k=1"}).status() == 200);
}
