// sessiond's command line: `sessiond serve` runs the FastCGI server.
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <map>
#include <memory>
#include <thread>

#include "middleware/collector.h"
#include "middleware/config.h"
#include "middleware/fcgi_server.h"
#include "middleware/handler.h"
#include "store/sqlite_store.h"

namespace sessiond {
namespace {

// Units for durations: plain numbers are seconds.
CLI::AsNumberWithUnit Seconds() {
  return CLI::AsNumberWithUnit(std::map<std::string, std::int64_t>{{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
                               CLI::AsNumberWithUnit::CASE_SENSITIVE, "s|m|h|d");
}
CLI::AsNumberWithUnit FractionalSeconds() {
  return CLI::AsNumberWithUnit(std::map<std::string, double>{{"ms", 0.001}, {"s", 1}, {"m", 60}},
                               CLI::AsNumberWithUnit::CASE_SENSITIVE, "ms|s|m");
}

void AddServeOptions(CLI::App& serve, Config& c, double& page_timeout, double& busy_timeout) {
  serve.add_option("--listen", c.listen, "unix:PATH or HOST:PORT; default: the socket on fd 0");
  serve.add_option("--socket-mode", c.socket_mode, "Permissions of the unix socket (octal)")
      ->capture_default_str();
  serve.add_option("--db", c.store.path, "SQLite database file (created 0600)")->required();
  serve.add_option("--pages", c.pages, "Directory of the page scripts")->required()->check(CLI::ExistingDirectory);
  serve.add_option("--workers", c.workers, "Requests (pages) served at once")
      ->capture_default_str()->check(CLI::Range(1, 1024));

  serve.add_option("--idle-timeout", c.store.idle_timeout, "Session ends after this long unused")
      ->capture_default_str()->transform(Seconds())->check(CLI::PositiveNumber);
  serve.add_option("--absolute-timeout", c.store.absolute_timeout, "Session ends this long after creation")
      ->capture_default_str()->transform(Seconds())->check(CLI::PositiveNumber);
  serve.add_option("--synchronous", c.store.synchronous,
                   "SQLite durability: FULL survives power loss, NORMAL survives a crash of sessiond")
      ->capture_default_str()->check(CLI::IsMember({"FULL", "NORMAL", "EXTRA"}));
  serve.add_option("--busy-timeout", busy_timeout, "Wait this long for another writer, then 503")
      ->capture_default_str()->transform(FractionalSeconds());

  serve.add_option("--cookie-name", c.cookie.name, "Name of the session cookie")->capture_default_str();
  serve.add_option("--cookie-samesite", c.cookie.same_site, "SameSite attribute of the cookie")
      ->capture_default_str()->check(CLI::IsMember({"Strict", "Lax", "None"}));
  serve.add_option("--cookie-max-age", c.cookie.max_age, "Max-Age of the cookie; 0: until the browser closes")
      ->capture_default_str()->transform(Seconds())->check(CLI::NonNegativeNumber);
  serve.add_flag("--cookie-secure", c.cookie_secure, "Secure on every cookie, not only over HTTPS");

  serve.add_option("--max-key-bytes", c.store.limits.max_key_bytes, "Longest session key")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--max-value-bytes", c.store.limits.max_value_bytes, "Largest session value")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--max-items", c.store.limits.max_items, "Most items in one session")->capture_default_str();
  serve.add_option("--max-session-bytes", c.store.limits.max_session_bytes, "Largest session (keys + values)")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--max-body-bytes", c.max_body_bytes, "Largest request body; larger: 413")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--max-cookie-bytes", c.max_cookie_bytes, "Largest Cookie header; larger: 400")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--max-output-bytes", c.page.max_output, "Largest page output; larger: 502")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--page-stderr-bytes", c.page.max_stderr, "Page stderr logged per request")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--page-timeout", page_timeout, "Longest page run; then its process group is killed: 504")
      ->capture_default_str()->transform(FractionalSeconds())->check(CLI::PositiveNumber);

  serve.add_option("--gc-interval", c.gc_interval, "Time between sweeps for expired sessions")
      ->capture_default_str()->transform(Seconds())->check(CLI::PositiveNumber);
  serve.add_option("--gc-batch", c.gc_batch, "Expired sessions deleted per transaction")
      ->capture_default_str()->check(CLI::PositiveNumber);
}

int Serve(const Config& config) {
  char* end = nullptr;
  unsigned long mode = std::strtoul(config.socket_mode.c_str(), &end, 8);
  if (*end != '\0' || mode > 0777) {
    LogLine("--socket-mode must be octal permissions, like 0660");
    return 2;
  }
  // SIGTERM/SIGINT are taken by one thread with sigwait(); every other thread
  // (created below, inheriting this mask) never sees them.
  // A shell starts background commands with SIGINT ignored, and an ignored
  // signal never reaches sigwait(): take both back first.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a web server that hangs up must not kill us
  try {
    { SqliteStore check(config.store); }  // file, pragmas and schema fail now, not per request
    FcgiServer server(config.listen, static_cast<unsigned>(mode));
    Collector collector(config.store, config.gc_interval, config.gc_batch);
    std::thread waiter([&] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      server.Stop();
      LogLine("stopping: finishing the requests in flight");
    });
    LogLine("serving " + (config.listen.empty() ? std::string("fd 0") : config.listen) + ", pages " +
            config.pages + ", db " + config.store.path);
    std::exception_ptr failed;
    try {
      server.Serve(config.workers, [&config]() -> FcgiServer::RequestHandler {
        auto handler = std::make_shared<Handler>(config, std::make_unique<SqliteStore>(config.store));
        return [handler](Request& r) { handler->Handle(r); };
      });
    } catch (...) {
      failed = std::current_exception();
    }
    ::kill(::getpid(), SIGTERM);  // release the waiter if no signal came
    waiter.join();
    if (failed) std::rethrow_exception(failed);
    LogLine("stopped");
    return 0;
  } catch (const std::exception& e) {
    LogLine(e.what());
    return 1;
  }
}

}  // namespace
}  // namespace sessiond

int main(int argc, char** argv) {
  using namespace sessiond;
  CLI::App app{"sessiond: session state for nginx/Apache page scripts, kept in SQLite, served over FastCGI"};
  app.set_version_flag("--version", SESSIOND_VERSION);
  app.require_subcommand(1);
  Config config;
  double page_timeout = 30, busy_timeout = 5;
  CLI::App* serve = app.add_subcommand("serve", "Run the FastCGI server");
  // The config file belongs to the whole program (CLI11 reads it at the top
  // level); serve passes --config through to it.
  app.set_config("--config", "", "Read options from this file (INI or TOML; keys are option names)");
  app.allow_config_extras(false);
  serve->fallthrough();
  AddServeOptions(*serve, config, page_timeout, busy_timeout);
  CLI11_PARSE(app, argc, argv);
  config.page.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(page_timeout * 1000));
  config.store.busy_timeout_ms = static_cast<int>(busy_timeout * 1000);
  if (*serve) return Serve(config);
  return 0;
}
