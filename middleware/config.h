// Every setting of `sessiond serve`, with its meaning and default. main.cc
// binds each to a command-line option of the same name (and config-file key).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "middleware/request_path/handler.h"
#include "middleware/server/fcgi_server.h"

namespace sessiond {

// Config extends what the request path needs (HandlerSettings: the pages,
// the store's options, the cookie, the page limits, the status path; their
// meanings and defaults are in middleware/request_path/handler.h) with what the
// process needs around it.
struct Config : HandlerSettings {
  // Listening socket, workers, queue, connections, I/O timeout, and the
  // limits on what the web server sends (parameters, body).
  ServerOptions server;

  // Who pages run as (--user, --group); resolved into page_user at start.
  // Started as root, sessiond needs --user unless allow_root is set.
  std::string user, group;
  bool allow_root = false;

  std::string log_file;  // empty: stderr; else appended to, reopened on SIGHUP

  // Persistent FastCGI applications, as --app NAME=unix:PATH or
  // NAME=HOST:PORT, either followed by ,connections=N: a request whose FastCGI parameter SESSIOND_APP (set by
  // the web server, never by a client) names one is forwarded to it instead
  // of running a page. Validate() parses them into app_targets.
  std::vector<std::string> apps;
  struct AppTarget {
    std::string name, address;
    long connections = -1;  // ,connections=N; -1: not given, app_connections
  };
  std::vector<AppTarget> app_targets;
  // Connections kept open to each application that gives no connections=N,
  // at most; 0 (the default): none kept, one per request, closed after it
  // (app_runner.h says why: a kept connection pins a php-fpm worker).
  std::size_t app_connections = 0;

  // Limits on session floods (request_path/new_sessions.h): new sessions a
  // client address may create a minute, and live sessions in the store.
  // Both 0 (off) by default: behind a proxy or CDN whose address the web
  // server does not replace with the client's, every visitor would share one
  // address's allowance; and the right cap depends on the store's size.
  NewSessionSettings new_sessions;

  std::int64_t gc_interval = 60;  // seconds between sweeps for expired sessions
  std::size_t gc_batch = 500;     // sessions deleted per transaction by a sweep
};

// Splits what follows NAME= in --app, "ADDRESS[,connections=N]": true with
// `address` and `connections` (-1 when not given) set, false with `why`.
bool ParseAppTarget(const std::string& text, std::string& address, long& connections, std::string& why);

// Checks the settings together and resolves --user/--group. Returns one
// message per problem (empty: all good). Does not touch the socket or the db.
std::vector<std::string> Validate(Config& config);

}  // namespace sessiond
