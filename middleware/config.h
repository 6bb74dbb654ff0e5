// Every setting of `sessiond serve`, with its meaning and default. main.cc
// binds each to a command-line option of the same name (and config-file key).
#pragma once

#include <cstdint>
#include <string>

#include "middleware/cookie.h"
#include "middleware/page_runner.h"
#include "store/sqlite_store.h"

namespace sessiond {

struct Config {
  // Where FastCGI requests arrive: "unix:/path/to.sock" or "host:port"; empty:
  // the listening socket inherited on fd 0 (spawn-fcgi, systemd).
  std::string listen;
  // Permissions of a unix socket sessiond creates (octal). The web server's
  // worker user needs write access to connect.
  std::string socket_mode = "0660";
  // Directory of the page scripts. Pages outside it are never run.
  std::string pages;
  // Worker threads: how many requests, and so pages, run at once. Further
  // requests wait in the socket's backlog.
  int workers = 16;

  SqliteOptions store;  // db file, timeouts, durability, session limits

  CookieAttributes cookie;     // name (default sid), SameSite, Max-Age
  bool cookie_secure = false;  // Secure on every cookie, not only over HTTPS

  std::size_t max_body_bytes = 1024 * 1024;  // request body; larger: 413
  std::size_t max_cookie_bytes = 8192;       // Cookie request header; larger: 400
  PageLimits page;                           // run time, output size, stderr kept

  std::int64_t gc_interval = 60;  // seconds between sweeps for expired sessions
  std::size_t gc_batch = 500;     // sessions deleted per transaction by a sweep
};

}  // namespace sessiond
