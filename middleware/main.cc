// sessiond's command line: `sessiond serve` runs the FastCGI server; list,
// show, rm, logout, gc, stats, check and backup are commands/commands.h.
// Serve() is where the parts are wired together: the store is checked, the
// applications' runners made, one Handler (request_path/) built per worker
// of the FcgiServer (server/), the Collector started, the signals taken
// (server/drain.h), and readiness told to systemd.
// Exit status: 0 after a clean stop, 1 when it could not start or failed,
// 2 for a usage or settings error.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "commands/commands.h"
#include "log/log.h"
#include "log/redact.h"
#include "middleware/collector.h"
#include "middleware/config.h"
#include "middleware/request_path/handler.h"
#include "middleware/runners/app_runner.h"
#include "middleware/runners/page_runner.h"
#include "middleware/server/drain.h"
#include "middleware/server/fcgi_server.h"
#include "middleware/server/systemd.h"
#include "middleware/settings_check.h"
#include "store/open.h"

namespace sessiond {
namespace {

constexpr int kUsage = 2;

// Set when the command line held a password (HideSecretsInArgv), which ps
// showed every local user until it was hidden.
bool password_on_command_line = false;
void WarnPasswordOnCommandLine() {
  if (password_on_command_line)
    LogLine("warning: a password on the command line is seen by every local user (ps) until sessiond hides "
            "it: give it in a passfile (passfile=, PGPASSFILE, ~/.pgpass) or PGPASSWORD from an "
            "EnvironmentFile= or LoadCredential= instead");
}

// Units for durations: plain numbers are seconds.
CLI::AsNumberWithUnit Seconds() {
  return CLI::AsNumberWithUnit(std::map<std::string, std::int64_t>{{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
                               CLI::AsNumberWithUnit::CASE_SENSITIVE, "s|m|h|d");
}
CLI::AsNumberWithUnit FractionalSeconds() {
  return CLI::AsNumberWithUnit(
      std::map<std::string, double>{{"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
      CLI::AsNumberWithUnit::CASE_SENSITIVE, "ms|s|m|h|d");
}

// Durations that take fractions (500ms), kept as seconds until parsed.
struct Durations {
  double page_timeout = 30, busy_timeout = 5, queue_timeout = 10, io_timeout = 30;
  double lock_wait = 10;  // SESSION_MODE exclusive
};

void AddServeOptions(CLI::App& serve, Config& c, Durations& d, std::string& socket_mode) {
  serve.add_option("--listen", c.server.listen, "unix:PATH or HOST:PORT (:PORT is 127.0.0.1); default: the socket on fd 0");
  serve.add_option("--socket-mode", socket_mode, "Permissions of the unix socket (octal)")->capture_default_str();
  serve.add_option("--socket-owner", c.server.socket_owner, "Owner of the unix socket (a user; needs root)");
  serve.add_option("--socket-group", c.server.socket_group,
                   "Group of the unix socket: the web server's (www-data), so it can connect with mode 0660");
  serve.add_option("--db", c.store.db, "SQLite database file (created 0600)")->required();
  serve.add_option("--pages", c.pages, "Directory of the page scripts")->required()->check(CLI::ExistingDirectory);
  serve.add_option("--user", c.user, "Run pages as this user (needs root)");
  serve.add_option("--group", c.group, "Run pages with this group (default: the user's)");
  serve.add_flag("--allow-root", c.allow_root, "Let pages run as root when sessiond runs as root without --user");
  serve.add_option("--log-file", c.log_file,
                   "Append the log here instead of stderr, each line after the time (UTC); SIGHUP reopens it");

  serve.add_option("--workers", c.server.workers, "Requests (pages) served at once")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  serve.add_option("--queue-size", c.server.queue_size, "Requests waiting for a worker; more get 503 at once")
      ->capture_default_str();
  serve.add_option("--queue-timeout", d.queue_timeout, "A request that waited longer for a worker gets 503")
      ->capture_default_str()->transform(FractionalSeconds())->check(CLI::PositiveNumber);
  serve.add_option("--max-connections", c.server.max_connections, "Open connections from the web server")
      ->capture_default_str();
  serve.add_option("--io-timeout", d.io_timeout, "Time for the web server to send a whole request or take a response")
      ->capture_default_str()->transform(FractionalSeconds())->check(CLI::PositiveNumber);
  serve.add_option("--max-params-bytes", c.server.max_params_bytes, "FastCGI parameters of one request; larger: 400")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--temp-dir", c.server.temp_dir, "Directory for bodies and outputs too large for memory")
      ->capture_default_str()->check(CLI::ExistingDirectory);

  serve.add_option("--idle-timeout", c.store.timeouts.idle, "Session ends after this long unused")
      ->capture_default_str()->transform(Seconds())->check(CLI::PositiveNumber);
  serve.add_option("--absolute-timeout", c.store.timeouts.absolute, "Session ends this long after creation")
      ->capture_default_str()->transform(Seconds())->check(CLI::PositiveNumber);
  serve.add_option("--regenerate-grace", c.store.timeouts.grace,
                   "After a regenerate the old id still leads to the session this long (at most 5m); 0: dies at once")
      ->capture_default_str()->transform(Seconds())->check(CLI::Range(0, 300));
  serve.add_option("--synchronous", c.store.synchronous,
                   "SQLite durability: FULL survives power loss, NORMAL survives a crash of sessiond")
      ->capture_default_str()->check(CLI::IsMember({"FULL", "NORMAL", "EXTRA"}));
  serve.add_option("--busy-timeout", d.busy_timeout, "Wait this long for another writer, then 503")
      ->capture_default_str()->transform(FractionalSeconds())->check(CLI::NonNegativeNumber);
  serve.add_option("--db-connections", c.store.db_connections,
                   "PostgreSQL: connections to the database, shared by the workers (each borrows one per query)")
      ->capture_default_str()->check(CLI::Range(1, 1024));

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
  serve.add_option("--max-body-bytes", c.server.max_body_bytes, "Largest request body; larger: 413")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--max-cookie-bytes", c.max_cookie_bytes, "Largest Cookie header; larger: 400")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--max-output-bytes", c.page.max_output, "Largest page output; larger: 502")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--page-stderr-bytes", c.page.max_stderr, "Page stderr logged per request")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  serve.add_option("--page-timeout", d.page_timeout, "Longest page run; then its process group is killed: 504")
      ->capture_default_str()->transform(FractionalSeconds())->check(CLI::PositiveNumber);
  serve.add_option("--lock-wait", d.lock_wait,
                   "SESSION_MODE exclusive: longest wait for a session's lock held by another request; then 503")
      ->capture_default_str()->transform(FractionalSeconds())->check(CLI::NonNegativeNumber);

  serve.add_option("--new-sessions-per-minute", c.new_sessions.per_minute,
                   "New sessions one client address (an IPv6 one by its /64) may create: this many at once, then "
                   "one every 60/N s; past it 503 with Retry-After; 0: no limit")
      ->capture_default_str()->check(CLI::Range(0, 1000000));
  serve.add_option("--max-sessions", c.new_sessions.max_sessions,
                   "Live sessions in the store (all farm members together); at it, a request that would create "
                   "one gets 503; 0: no cap")
      ->capture_default_str()->check(CLI::NonNegativeNumber);

  serve.add_option("--gc-interval", c.gc_interval, "Time between sweeps for expired sessions")
      ->capture_default_str()->transform(Seconds())->check(CLI::PositiveNumber);
  serve.add_option("--gc-batch", c.gc_batch, "Expired sessions deleted per transaction")
      ->capture_default_str()->check(CLI::PositiveNumber);

  serve.add_option("--app", c.apps,
                   "A persistent FastCGI application, NAME=unix:PATH or NAME=HOST:PORT, optionally ,connections=N "
                   "(repeatable): requests whose FastCGI parameter SESSIOND_APP is NAME go to it instead of a page")
      ->take_all()->delimiter('\n');
  serve.add_option("--app-connections", c.app_connections,
                   "Connections kept open to each --app without connections=N, at most (no more than its pool's "
                   "workers); 0: none kept, one per request")
      ->capture_default_str();

  serve.add_option("--status-path", c.status_path,
                   "Answer requests for this path (/sessiond-status) with metrics in Prometheus text format");
}

// Edits (insertions, deletions, substitutions, swaps of neighbours) from
// `a` to `b`: how far a typed name is from a real one.
std::size_t Distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// " (did you mean X?)" for the one of `names` closest to `typed` (a typo, or
// the start of a name), or nothing when none is close.
std::string Suggestion(const std::string& typed, const std::vector<std::string>& names) {
  auto bare = [](const std::string& s) { return s.substr(std::min(s.find_first_not_of('-'), s.size())); };
  const std::string t = bare(typed);
  std::string best;
  std::size_t best_distance = std::clamp<std::size_t>(t.size() / 3, 1, 2) + 1;
  for (const std::string& name : names) {
    const std::string n = bare(name);
    std::size_t d = t.size() >= 3 && n.rfind(t, 0) == 0 ? 1 : Distance(t, n);
    if (d < best_distance) best = name, best_distance = d;
  }
  return best.empty() ? std::string() : " (did you mean " + best + "?)";
}

// The long names of `app`'s own options, each after `prefix`.
std::vector<std::string> OptionNames(const CLI::App& app, const std::string& prefix) {
  std::vector<std::string> names;
  for (const CLI::Option* o : app.get_options())
    for (const std::string& l : o->get_lnames()) names.push_back(prefix + l);
  return names;
}

// What went wrong when CLI11 was left with arguments it could not place (its
// own message would name a required option instead, as it checks those
// first): an option no one has, or a word that is not a command, named, with
// the closest real name, as the line to print. Empty when every argument
// was understood.
std::string UnknownArgument(const CLI::App& app) {
  std::vector<std::string> left = app.remaining(true);
  if (left.empty()) return {};
  const CLI::App* command = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
  auto is_option = [](const std::string& a) { return a.size() > 1 && a[0] == '-'; };
  auto option = std::find_if(left.begin(), left.end(), is_option);
  // Without a command, a first word that is no option was meant as one.
  if (option != left.end() && (command || is_option(left.front()))) {
    std::string name = option->substr(0, option->find('='));
    std::vector<std::string> names = OptionNames(app, "--");
    if (command)
      for (std::string& n : OptionNames(*command, "--")) names.push_back(std::move(n));
    return "sessiond" + (command ? " " + command->get_name() : std::string()) + ": unknown option " + name +
           Suggestion(name, names);
  }
  if (command) return "sessiond " + command->get_name() + ": unexpected argument '" + left.front() + "'";
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    commands.push_back(sub->get_name());
  return "sessiond: '" + left.front() + "' is not a command" + Suggestion(left.front(), commands);
}

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

// `settings`: the effective settings on one line (SettingsLine), for the log.
// The --app runners, their connections opened when requests come (a name is
// resolved then, so an app not there yet is no settings error). Throws
// std::invalid_argument for a malformed address.
AppOptions AppSettings(const Config& config, const Config::AppTarget& t) {
  AppOptions options;
  options.connections = t.connections >= 0 ? static_cast<std::size_t>(t.connections) : config.app_connections;
  options.wait = config.server.queue_timeout;
  return options;
}

AppRunners MakeApps(const Config& config) {
  AppRunners apps;
  for (const Config::AppTarget& t : config.app_targets) {
    try {
      apps.emplace(t.name, std::make_unique<AppRunner>(t.name, t.address, AppSettings(config, t), config.page));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(t.name + "=" + e.what());
    }
  }
  return apps;
}

int Serve(Config& config, const AppRunners& apps, const std::string& settings) {
  // The signals are taken by one thread (SignalThread, middleware/server/drain.h).
  BlockOwnedSignals();
  ::signal(SIGPIPE, SIG_IGN);  // a web server that hangs up must not kill us

  // Descriptors: idle connections cost one each; take what the system allows.
  struct rlimit files;
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  // Allocations over 256 KiB are mapped and unmapped on their own, so a burst
  // of large outputs does not leave RSS behind (glibc would otherwise raise
  // this threshold as large blocks are freed, and keep them in its arenas).
  ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);

  try {
    if (!config.log_file.empty()) LogToFile(config.log_file);
    LogLine(std::string("starting sessiond ") + SESSIOND_VERSION + ", pid " + std::to_string(::getpid()) + ": " +
            settings);
    WarnPasswordOnCommandLine();
    try {
      CheckStore(config.store);  // file, pragmas and schema fail now, not per request
    } catch (const SchemaError& e) {
      throw BadSetting(std::string("--db: ") + e.what());  // this binary is too old for the store: no restart mends it
    } catch (const StoreError& e) {
      // PostgreSQL out of reach (the store logged it): serve anyway, 503
      // until it is back. Its settings wrong: no use starting, nor restarting.
      if (!IsPostgresUri(config.store.db)) throw;
      if (!e.busy()) throw BadSetting(std::string("--db: ") + e.what());
    }
    // Shared by every worker's handler and the collector, which counts the
    // store's live sessions for --max-sessions: made before both, so it
    // outlives them.
    NewSessionLimits new_sessions(config.new_sessions);
    NewSessionLimits* limits = new_sessions.any() ? &new_sessions : nullptr;
    FcgiServer server(config.server);
    AdoptOrphans();
    server.SetHousekeeping([] { ReapOrphans(); });
    Collector collector(config.store, config.gc_interval, config.gc_batch, ThisMember(SESSIOND_VERSION),
                        config.new_sessions.max_sessions > 0 ? limits : nullptr);
    SignalThread signals(server, [&config] {
      // The log file is what can be reloaded; other settings take a restart.
      if (config.log_file.empty()) LogLine("received SIGHUP: logging to stderr, nothing to reopen");
      else if (ReopenLog()) LogLine("received SIGHUP: reopened " + config.log_file);
      else LogLine("received SIGHUP: cannot reopen " + config.log_file + ", still writing to the old file");
    });
    LogLine("serving " + (config.server.listen.empty() ? server.inherited_from() : config.server.listen) +
            ", pages " + config.pages + (config.page_user.set ? " as " + config.user : std::string()) +
            ", db " + PrintableDb(config.store.db));
    for (const Config::AppTarget& t : config.app_targets) {
      std::size_t kept = AppSettings(config, t).connections;
      LogLine("app " + t.name + " at " + t.address +
              (kept == 0 ? std::string(", a connection per request (none kept)")
                         : ", up to " + std::to_string(kept) + " kept connections (each holds one of its workers)"));
    }
    NotifyReady();  // systemd's Type=notify: the socket is served from here on
    std::exception_ptr failed;
    try {
      server.Serve([&config, &apps, limits]() -> FcgiServer::RequestHandler {
        auto handler = std::make_shared<Handler>(config, OpenStore(config.store), apps, ProcessLiveCount(), limits);
        return [handler](Request& r) { handler->Handle(r); };
      });
    } catch (...) {
      failed = std::current_exception();
    }
    signals.Join();
    ReapOrphans();
    if (failed) std::rethrow_exception(failed);
    LogLine("stopped");
    return 0;
  } catch (const BadSetting& e) {
    LogLine(e.what());
    return kUsage;
  } catch (const std::exception& e) {
    LogLine(e.what());
    return 1;
  }
}

}  // namespace
}  // namespace sessiond

int main(int argc, char** argv) {
  using namespace sessiond;
  // Not dumpable: a process of the same user (a page, without --user) cannot
  // read sessiond's memory, environment (PGPASSWORD) or descriptors
  // (/proc/PID/environ, mem, fd/, ptrace, pidfd_getfd), and no core file
  // holds a session. A page's execve makes the page dumpable again.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  CLI::App app{"sessiond: session state for nginx/Apache page scripts, kept in SQLite, served over FastCGI"};
  app.set_version_flag("--version", SESSIOND_VERSION);
  app.require_subcommand(1);
  Config config;
  Durations durations;
  std::string socket_mode = "0660";
  CLI::App* serve = app.add_subcommand("serve", "Run the FastCGI server");
  // The config file belongs to the whole program (CLI11 reads it at the top
  // level); serve passes --config through to it.
  app.set_config("--config", "", "Read options from this file (INI or TOML; keys are option names)");
  app.allow_config_extras(false);
  serve->fallthrough();
  AddServeOptions(*serve, config, durations, socket_mode);
  bool test = false;
  serve->add_flag("-t,--test", test,
                  "Check the settings, the database and the listen address without serving; print the "
                  "effective settings; exit 0 (good) or 2")
      ->configurable(false);
  AdminCommands admin(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    // CLI11 reports a key of the config file it does not know as a failure to
    // parse it: say what it is.
    std::size_t at = what.find("not able to parse ");
    if (at != std::string::npos) {
      // [serve] pagse: "serve.pagse"; a key before any section: "pages";
      // the start of a section [serv]: "serv.++".
      std::string key = what.substr(at + 18);
      std::size_t dot = key.rfind('.');
      std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
      std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
      std::vector<std::string> serve_keys = OptionNames(*serve, "");
      const bool serve_key = std::find(serve_keys.begin(), serve_keys.end(), name) != serve_keys.end();
      if (!section.empty() && section != "serve")
        std::cerr << "sessiond: unknown section [" << section << "] in the config file"
                  << Suggestion(section, {"serve"}) << '\n';
      else if (section.empty() && serve_key)
        std::cerr << "sessiond: " << name << " in the config file belongs under [serve]\n";
      else
        std::cerr << "sessiond: unknown option in the config file: " << key << Suggestion(name, serve_keys)
                  << '\n';
    } else {
      std::string unknown = UnknownArgument(app);
      std::cerr << Redact(unknown.empty() ? "sessiond: " + what : unknown)
                << "\n(sessiond --help lists the commands, sessiond COMMAND --help their options)\n";
    }
    return kUsage;
  }
  // The password --db may carry is masked wherever sessiond prints it, and
  // in what ps shows.
  if (IsPostgresUri(config.store.db)) AddDatabaseSecrets(config.store.db);
  password_on_command_line = HideSecretsInArgv(argc, argv);
  if (admin.chosen()) return admin.Run(std::cout, std::cerr, std::time(nullptr));  // serve's checks are not theirs
  // Durations are bounded before they become integers: no overflow, and no
  // timeout that rounds to nothing.
  std::vector<std::string> errors;
  auto bounded = [&](const char* name, double seconds, double min) {
    if (!(seconds >= min && seconds <= 86400))
      errors.push_back(std::string(name) + " must be between " + (min > 0 ? "1ms" : "0") + " and 1d");
    return std::clamp(seconds, min, 86400.0);
  };
  config.page.timeout = Millis(bounded("--page-timeout", durations.page_timeout, 0.001));
  config.store.busy_timeout_ms = static_cast<int>(bounded("--busy-timeout", durations.busy_timeout, 0) * 1000);
  config.server.queue_timeout = Millis(bounded("--queue-timeout", durations.queue_timeout, 0.001));
  config.server.io_timeout = Millis(bounded("--io-timeout", durations.io_timeout, 0.001));
  config.lock_wait = Millis(bounded("--lock-wait", durations.lock_wait, 0));
  config.page.temp_dir = config.server.temp_dir;
  char* end = nullptr;
  unsigned long mode = std::strtoul(socket_mode.c_str(), &end, 8);
  for (std::string& e : Validate(config)) errors.push_back(std::move(e));
  if (socket_mode.empty() || *end != '\0' || mode > 0777)
    errors.push_back("--socket-mode must be octal permissions, like 0660");
  config.server.socket_mode = static_cast<unsigned>(mode);
  try {
    ResolveSocketOwnership(config.server);  // the Listener applies it; a name that is not there fails now
  } catch (const BadSetting& e) {
    errors.push_back(e.what());
  }
  AppRunners apps;
  try {
    apps = MakeApps(config);
  } catch (const std::invalid_argument& e) {
    errors.push_back(std::string("--app ") + e.what());
  }
  if (test) {
    WarnPasswordOnCommandLine();
    return TestSettings(*serve, config, errors);
  }
  if (!errors.empty()) {
    for (const std::string& e : errors) LogLine(e);
    return kUsage;
  }
  if (*serve) return Serve(config, apps, SettingsLine(EffectiveSettings(*serve)));
  return 0;
}
