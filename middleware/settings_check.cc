#include "middleware/settings_check.h"

#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <regex>
#include <algorithm>

#include "log/log.h"
#include "log/redact.h"
#include "middleware/base/address.h"
#include "middleware/server/fcgi_server.h"
#include "store/admin.h"
#include "store/open.h"

namespace sessiond {
namespace {

bool IsNumber(const std::string& v) { return std::regex_match(v, std::regex(R"(-?[0-9]+(\.[0-9]+)?)")); }

std::string Quoted(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

// Seconds, in the largest unit that is exact (--page-timeout 0.5 as 500ms).
// The options' units are CLI11's AsNumberWithUnit in main.cc, which its type
// name lists ("[s|m|h|d]", "[ms|s|m|h|d]").
std::string Duration(const std::string& seconds) {
  double d = std::stod(seconds);
  long long ms = std::llround(d * 1000);
  if (std::fabs(d * 1000 - static_cast<double>(ms)) > 1e-6) return seconds;
  if (ms == 0) return "0";
  if (ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// Bytes, in KiB or MiB when exact (CLI11's AsSizeValue, "SIZE [...]").
std::string Size(const std::string& bytes) {
  unsigned long long n = std::stoull(bytes);
  if (n == 0) return "0";
  if (n % (1024 * 1024) == 0) return std::to_string(n / (1024 * 1024)) + "MiB";
  if (n % 1024 == 0) return std::to_string(n / 1024) + "KiB";
  return bytes;
}

// What the CLI11 option will hand the program, as config-file syntax.
Setting Describe(const CLI::Option& option) {
  Setting s;
  s.key = option.get_lnames().front();
  const bool flag = option.get_expected_min() == 0;
  std::string value;
  if (option.count() > 0 && !flag && option.results().size() > 1) {
    // A repeated option (--app): an array, which the config file reads back.
    for (const std::string& r : option.results()) value += (value.empty() ? "[" : ", ") + Quoted(RedactSetting(s.key, r));
    s.set = true;
    s.value = value + "]";
    return s;
  }
  if (option.count() > 0) {
    for (const std::string& r : option.results()) value += (value.empty() ? "" : ",") + r;
    if (flag) value = option.as<bool>() ? "true" : "false";
  } else {
    value = flag ? "false" : option.get_default_str();
  }
  if (value.empty()) return s;
  s.set = true;
  value = RedactSetting(s.key, value);
  const std::string type = option.get_type_name();
  if (type.find("s|m|h|d]") != std::string::npos && IsNumber(value)) value = Duration(value);
  else if (type.find("SIZE [") != std::string::npos && IsNumber(value)) value = Size(value);
  s.value = flag || IsNumber(value) ? value : Quoted(value);
  return s;
}

// A file serve can open for appending: it exists and is writable, or its
// directory lets serve create it.
std::string AppendProblem(const std::string& what, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) return what + " " + path + " is not a regular file";
    if (::access(path.c_str(), W_OK) != 0) return what + " " + path + " is not writable: " + std::strerror(errno);
    return {};
  }
  if (errno != ENOENT) return what + " " + path + ": " + std::strerror(errno);
  std::size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    return what + " " + path + " cannot be created in " + dir + ": " + std::strerror(errno);
  return {};
}

// The database reachable, the login accepted, and room on the server for
// this machine's connections: a database out of reach is a note (serve
// starts without it), a refused login a problem, too little room a warning.
void CheckPostgres(const Config& config, std::vector<std::string>& problems, std::vector<std::string>& notes) {
  const std::string db = "--db " + PrintableDb(config.store.db);
  DbConnectionLimits limits;
  try {
    limits = ReadDbConnectionLimits(config.store);
  } catch (const StoreError& e) {
    if (e.busy())
      notes.push_back(db + ": out of reach now (" + e.what() +
                      "); serve starts anyway and answers 503 to requests that need it until it is back");
    else
      problems.push_back(db + ": " + e.what());
    return;
  }
  // A process opens at most one connection per worker, and one for the collector.
  std::size_t wanted = std::min(config.store.db_connections, static_cast<std::size_t>(config.server.workers) + 1);
  auto warn = [&](int limit, const std::string& what) {
    if (limit >= 0 && wanted > static_cast<std::size_t>(limit))
      notes.push_back("warning: --db-connections " + std::to_string(config.store.db_connections) + " (at most " +
                      std::to_string(wanted) + " with --workers " + std::to_string(config.server.workers) +
                      ") is more than " + what + " takes (" + std::to_string(limit) +
                      "): sessiond uses what it gets, and requests wait for those; machines x connections must "
                      "stay within it");
  };
  warn(limits.server, "the server (max_connections less superuser_reserved_connections)");
  warn(limits.role, "the role's CONNECTION LIMIT");
  warn(limits.database, "the database's CONNECTION LIMIT");
  notes.push_back(db + ": reachable; this machine opens up to " + std::to_string(wanted) +
                  " connections; the server takes " + std::to_string(limits.server) +
                  (limits.role >= 0 ? ", the role " + std::to_string(limits.role) : std::string()) +
                  (limits.database >= 0 ? ", the database " + std::to_string(limits.database) : std::string()));
}

// The limits on session floods: what the rate means, and whether the store
// holds --max-sessions already (every new visitor refused from the start).
// The count is `sessiond stats`'s, on a read-only connection, and only when
// the store is there to count (`reachable`).
void NewSessionNotes(const Config& config, bool reachable, std::vector<std::string>& notes) {
  const NewSessionSettings& n = config.new_sessions;
  if (n.per_minute > 0) {
    char every[32];
    std::snprintf(every, sizeof every, "%.3g s", 60.0 / n.per_minute);
    const std::string rate = std::to_string(n.per_minute);
    notes.push_back("--new-sessions-per-minute " + rate +
                    ": each client address (REMOTE_ADDR, or SESSION_CLIENT_ADDRESS where the web server sets it; "
                    "IPv6 by its /64) may create " + rate + " sessions at once, then one every " + every +
                    ", counted by this sessiond alone; behind a proxy, set the web server's real-IP handling first, "
                    "or every visitor shares the proxy's allowance");
  }
  if (n.max_sessions <= 0 || !reachable) return;
  try {
    const StoreStats stats = OpenAdmin(config.store, true)->Stats(static_cast<std::int64_t>(std::time(nullptr)));
    const std::string cap = "--max-sessions " + std::to_string(n.max_sessions) + ": the store holds " +
                            std::to_string(stats.live) + " live sessions";
    if (static_cast<std::int64_t>(stats.live) >= n.max_sessions)
      notes.push_back("warning: " + cap + " already: every new session is refused until fewer remain");
    else
      notes.push_back(cap + " now");
  } catch (const std::exception&) {
    // Not there yet, or out of reach: the store's own checks say so.
  }
}

}  // namespace

std::vector<Setting> EffectiveSettings(const CLI::App& serve) {
  std::vector<Setting> settings;
  for (const CLI::Option* option : serve.get_options()) {
    if (!option->get_configurable() || option->get_lnames().empty()) continue;  // --help, --test
    settings.push_back(Describe(*option));
  }
  return settings;
}

std::string SettingsFile(const std::vector<Setting>& settings) {
  std::string out = "[serve]\n";
  for (const Setting& s : settings)
    out += s.set ? s.key + " = " + s.value + "\n" : "# " + s.key + " is not set\n";
  return out;
}

std::string SettingsLine(const std::vector<Setting>& settings) {
  std::string out;
  for (const Setting& s : settings)
    if (s.set) out += (out.empty() ? "" : " ") + s.key + "=" + s.value;
  return out;
}

std::vector<std::string> CheckBeforeServe(const Config& config, std::vector<std::string>& notes) {
  std::vector<std::string> problems;
  try {
    CheckListenAddress(config.server.listen);
  } catch (const BadSetting& e) {
    problems.push_back(e.what());
  }
  if (config.server.listen.empty())
    notes.push_back("no --listen: serve takes the listening socket on fd 0 (spawn-fcgi, systemd socket activation)");
  for (std::string& n : ListenNotes(config.server)) notes.push_back(std::move(n));
  try {
    if (std::string who = WhoCanConnect(config.server); !who.empty()) notes.push_back(who);
  } catch (const BadSetting&) {
    // an owner or group that cannot be had: already a problem of its own
  }
  const std::size_t store_problems = problems.size(), store_notes = notes.size();
  if (IsPostgresUri(config.store.db))
    CheckPostgres(config, problems, notes);
  else
    CheckSqliteFile(config.store, problems, notes);
  // Reachable: no problem with it, and no note that it is out of reach or
  // not there yet (which a count would only wait for, or fail on).
  const bool reachable =
      problems.size() == store_problems &&
      std::none_of(notes.begin() + static_cast<std::ptrdiff_t>(store_notes), notes.end(), [](const std::string& n) {
        return n.find("out of reach") != std::string::npos || n.find("creat") != std::string::npos;
      });
  NewSessionNotes(config, reachable, notes);
  if (::access(config.pages.c_str(), R_OK | X_OK) != 0)
    problems.push_back("--pages " + config.pages + " cannot be read by sessiond: " + std::strerror(errno));
  if (!config.log_file.empty()) {
    std::string why = AppendProblem("--log-file", config.log_file);
    if (!why.empty()) problems.push_back(why);
  }
  if (::access(config.server.temp_dir.c_str(), W_OK | X_OK) != 0)
    problems.push_back("--temp-dir " + config.server.temp_dir + " is not writable: " + std::strerror(errno));
  // An application that is not there yet is no problem (sessiond answers 502
  // until it is), but worth a word.
  for (const Config::AppTarget& t : config.app_targets) {
    std::string why;
    std::optional<Address> a = ParseAddress(t.address, why);
    if (!a) continue;  // Validate() said why
    if (a->is_unix) {
      if (::access(a->path.c_str(), F_OK) != 0)
        notes.push_back("--app " + t.name + ": " + a->path +
                        " does not exist yet (502 until the application listens there)");
      continue;
    }
    const std::string &host = a->host, &port = a->port;
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res))
      notes.push_back("--app " + t.name + ": " + host + " does not resolve now (" + gai_strerror(rc) +
                      "); it is looked up again for each new connection, 502 until it resolves");
    else
      ::freeaddrinfo(res);
  }
  return problems;
}

int TestSettings(const CLI::App& serve, const Config& config, std::vector<std::string> problems) {
  std::vector<std::string> notes;
  for (std::string& p : CheckBeforeServe(config, notes)) problems.push_back(std::move(p));
  std::cout << "# the effective settings of sessiond serve (sessiond serve --test)\n"
            << Redact(SettingsFile(EffectiveSettings(serve))) << std::flush;
  // A message may quote a setting (the --db of a failed check): LogLine
  // masks its password.
  for (const std::string& n : notes) LogLine((n.rfind("warning: ", 0) == 0 ? "" : "note: ") + n);
  for (const std::string& p : problems) LogLine(p);
  if (problems.empty()) {
    LogLine("serve --test: the settings are good");
    return 0;
  }
  LogLine("serve --test: " + std::to_string(problems.size()) + (problems.size() == 1 ? " problem" : " problems"));
  return 2;
}

}  // namespace sessiond
