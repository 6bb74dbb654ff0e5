#include "middleware/config.h"

#include "middleware/base/address.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sessiond {
namespace {

// Whether `user` can reach the pages directory: checked in a child that takes
// the page user's identity, since access() answers only for sessiond's own.
bool PagesReachable(const PageUser& user, const std::string& pages) {
  // At start; the log's writer thread may exist already, so the child makes
  // only async-signal-safe calls before it exits.
  pid_t pid = ::fork();
  if (pid < 0) return true;
  if (pid == 0) {
    bool ok = ::setgroups(user.groups.size(), user.groups.data()) == 0 && ::setgid(user.gid) == 0 &&
              ::setuid(user.uid) == 0 && ::access(pages.c_str(), R_OK | X_OK) == 0;
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

bool ParseAppTarget(const std::string& text, std::string& address, long& connections, std::string& why) {
  address = text;
  connections = -1;
  // An option follows the last comma; a comma in a unix path followed by
  // anything else stays part of the path.
  constexpr std::string_view kConnections = ",connections=";
  std::size_t comma = text.rfind(kConnections);
  if (comma != std::string::npos) {
    std::string n = text.substr(comma + kConnections.size());
    if (n.empty() || n.size() > 6 || n.find_first_not_of("0123456789") != std::string::npos) {
      why = "connections= must be a number of connections (0: none kept)";
      return false;
    }
    connections = std::stol(n);
    address = text.substr(0, comma);
  }
  // Any other ",word=..." after the address is a mistyped option (",connection=2"),
  // not a socket path anybody means: refused, rather than a 502 forever.
  if (std::size_t c = address.rfind(','); c != std::string::npos) {
    std::string_view opt = std::string_view(address).substr(c + 1);
    std::size_t eq = opt.find('=');
    if (eq != std::string_view::npos && eq > 0 &&
        opt.substr(0, eq).find_first_not_of("abcdefghijklmnopqrstuvwxyz_-") == std::string_view::npos) {
      why = "unknown option '" + std::string(opt.substr(0, eq)) + "' (the one option is connections=N)";
      return false;
    }
  }
  return ParseAddress(address, why).has_value();  // `why` says what is wrong, as for --listen
}

namespace {

// Whether an application's address is sessiond's own --listen address, as
// far as can be told without resolving names: the same unix socket path (or
// file), or the same port on the same host or both on this machine's
// loopback or wildcard addresses. (Forwarding to itself would hold a worker
// per pass until none are left; what this misses, the loop token answers
// with 508 at run time.)
bool IsOwnAddress(const std::string& app_text, const std::string& listen_text) {
  std::string why;
  std::optional<Address> app = ParseAddress(app_text, why), listen = ParseAddress(listen_text, why);
  if (!app || !listen) return false;  // an empty listen: a socket handed over, unknown here
  if (app->is_unix || listen->is_unix) {
    if (!app->is_unix || !listen->is_unix) return false;
    if (app->path == listen->path) return true;
    struct stat sa, sl;
    return ::stat(app->path.c_str(), &sa) == 0 && ::stat(listen->path.c_str(), &sl) == 0 &&
           sa.st_dev == sl.st_dev && sa.st_ino == sl.st_ino;
  }
  const std::string &app_host = app->host, &app_port = app->port, &listen_host = listen->host,
                    &listen_port = listen->port;
  if (app_port != listen_port) return false;
  auto local = [](const std::string& h) {
    return h == "localhost" || h == "::1" || h == "::" || h == "0.0.0.0" || h.compare(0, 4, "127.") == 0;
  };
  return app_host == listen_host || (local(app_host) && local(listen_host)) ||
         (local(app_host) && (listen_host == "0.0.0.0" || listen_host == "::"));
}

}  // namespace

std::vector<std::string> Validate(Config& c) {
  std::vector<std::string> errors;
  auto need = [&](bool ok, const std::string& why) {
    if (!ok) errors.push_back(why);
  };
  need(IsCookieName(c.cookie.name), "--cookie-name '" + c.cookie.name + "' is not a valid cookie name (letters, digits, !#$%&'*+-.^_`|~)");
  need(c.cookie.same_site != "None" || c.cookie_secure,
       "--cookie-samesite None needs --cookie-secure: browsers reject SameSite=None without Secure");
  if (std::string why = DbSettingProblem(c.store.db); !why.empty()) errors.push_back(why);
  need(c.server.max_body_bytes >= 1, "--max-body-bytes must be at least 1");
  need(c.server.max_params_bytes >= 1024, "--max-params-bytes must be at least 1KiB");
  need(c.server.queue_size >= 1, "--queue-size must be at least 1");
  need(c.server.max_connections >= 1, "--max-connections must be at least 1");
  need(c.page.max_output >= 1, "--max-output-bytes must be at least 1");
  need(c.store.limits.max_key_bytes >= 1 && c.store.limits.max_value_bytes >= 1 &&
           c.store.limits.max_items >= 1 && c.store.limits.max_session_bytes >= 1,
       "session limits must be at least 1");

  // Every session the store accepts must reach its pages: one SESSION_VAR_
  // variable must fit Linux's 128 KiB limit on one environment string, and the
  // whole environment (the web server's variables, every SESSION_VAR_, and
  // HTTP_SESSION up to 128 KiB, larger ones go to a file) the limit on
  // execve()'s arguments, a quarter of the stack limit.
  constexpr std::size_t kMaxEnvString = 128 * 1024 - 1;
  const SessionLimits& l = c.store.limits;
  need(13 + l.max_key_bytes + l.max_value_bytes <= kMaxEnvString,
       "--max-key-bytes plus --max-value-bytes must stay under 128KiB, Linux's limit on one "
       "environment variable (SESSION_VAR_<key>)");
  long arg_max = ::sysconf(_SC_ARG_MAX);
  std::size_t worst = c.server.max_params_bytes + l.max_session_bytes + l.max_items * (14 + sizeof(char*)) +
                      kMaxEnvString + 8192;
  need(arg_max <= 0 || worst <= static_cast<std::size_t>(arg_max),
       "a page's environment could exceed the system's limit of " + std::to_string(arg_max) +
           " bytes (a quarter of the stack limit): lower --max-session-bytes or --max-params-bytes, "
           "or raise the stack limit (ulimit -s)");

  // Bodies and outputs past 64 KiB go to unnamed files there: check now that
  // it can hold one, rather than answer 500 to the first large request.
  if (int fd = ::open(c.server.temp_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600); fd >= 0)
    ::close(fd);
  else
    errors.push_back("--temp-dir " + c.server.temp_dir + ": cannot make a temporary file there (" +
                     std::strerror(errno) + ")");
  need(c.status_path.empty() ||
           (c.status_path[0] == '/' && c.status_path.find_first_of(" \t\r\n?#") == std::string::npos),
       "--status-path '" + c.status_path + "' must be a URI path starting with /, like /sessiond-status");

  std::vector<std::string> names;
  c.app_targets.clear();
  for (const std::string& app : c.apps) {
    std::size_t eq = app.find('=');
    std::string name = app.substr(0, eq == std::string::npos ? 0 : eq);
    std::string address = eq == std::string::npos ? std::string() : app.substr(eq + 1);
    bool name_ok = !name.empty() && name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                           "0123456789_.-") == std::string::npos;
    if (!name_ok || address.empty()) {
      errors.push_back("--app '" + app +
                       "' must be NAME=unix:PATH or NAME=HOST:PORT, optionally ,connections=N (NAME of letters, "
                       "digits, _.-)");
      continue;
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      errors.push_back("--app " + name + " is given twice");
      continue;
    }
    std::string target, why;
    long connections = -1;
    if (!ParseAppTarget(address, target, connections, why)) {
      errors.push_back("--app " + name + "=" + address + ": " + why);
      continue;
    }
    if (IsOwnAddress(target, c.server.listen)) {
      errors.push_back("--app " + name + "=" + target + " is sessiond's own --listen address: it would forward "
                       "requests to itself (name the application's own socket, php-fpm's listen)");
      continue;
    }
    names.push_back(name);
    c.app_targets.push_back({name, target, connections});
  }

  if (!c.group.empty() && c.user.empty()) errors.push_back("--group needs --user");
  if (!c.user.empty()) {
    struct passwd* pw = ::getpwnam(c.user.c_str());
    if (!pw) {
      errors.push_back("--user " + c.user + ": no such user");
    } else {
      c.page_user.set = true;
      c.page_user.uid = pw->pw_uid;
      c.page_user.gid = pw->pw_gid;
      if (!c.group.empty()) {
        struct group* gr = ::getgrnam(c.group.c_str());
        if (!gr) errors.push_back("--group " + c.group + ": no such group");
        else c.page_user.gid = gr->gr_gid;
      }
      int n = 64;
      std::vector<gid_t> groups(static_cast<std::size_t>(n));
      if (::getgrouplist(pw->pw_name, c.page_user.gid, groups.data(), &n) < 0) {
        groups.resize(static_cast<std::size_t>(n));
        ::getgrouplist(pw->pw_name, c.page_user.gid, groups.data(), &n);
      }
      groups.resize(static_cast<std::size_t>(n));
      c.page_user.groups = groups;
      if (::geteuid() != 0 && (c.page_user.uid != ::geteuid() || c.page_user.gid != ::getegid()))
        errors.push_back("--user " + c.user + ": only root can run pages as another user");
      else if (::geteuid() == 0 && c.page_user.uid == 0 && !c.allow_root)
        errors.push_back("--user " + c.user + " is root: pages would run as root; add --allow-root if you mean it");
      else if (errors.empty() && !c.pages.empty() && !PagesReachable(c.page_user, c.pages))
        errors.push_back("--pages " + c.pages + " is not readable by --user " + c.user +
                         " (every directory on its path needs x, the pages directory r and x)");
    }
  } else if (::geteuid() == 0 && !c.allow_root) {
    errors.push_back(
        "refusing to run pages as root: give --user (and --group) for the pages, as php-fpm does, "
        "or --allow-root");
  }
  return errors;
}

}  // namespace sessiond
