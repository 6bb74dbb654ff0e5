// What the FastCGI server is given (ServerOptions, from serve's options) and
// the errors every part of it throws: BadSetting for a setting that cannot
// work (serve exits 2), std::runtime_error (ThrowSystemError) for a system
// call that failed (serve exits 1).
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace sessiond {

struct ServerOptions {
  // "unix:/path/to.sock", "HOST:PORT" (":PORT" means 127.0.0.1:PORT), or
  // empty: the listening socket systemd passed (LISTEN_FDS, fd 3), else the
  // one inherited on fd 0 (spawn-fcgi).
  std::string listen;
  unsigned socket_mode = 0660;  // permissions of a unix socket sessiond creates
  // Owner and group (names) of a unix socket sessiond creates; empty:
  // sessiond's own. Not applied to an inherited socket (systemd's
  // SocketUser=/SocketGroup= are) nor to TCP.
  std::string socket_owner, socket_group;
  int workers = 16;             // requests handled at once
  std::size_t queue_size = 64;  // complete requests waiting for a worker; more: 503 at once
  std::chrono::milliseconds queue_timeout{10000};  // a request that waited longer for a worker: 503
  // Open connections. Past it a new one closes the longest-idle one, else the
  // one whose request has been arriving longest (over 250 ms: answered 503),
  // else it waits in the backlog while every request is with a worker.
  std::size_t max_connections = 1024;
  std::chrono::milliseconds io_timeout{30000};     // to receive a whole request, or send a response
  std::size_t max_params_bytes = 64 * 1024;        // the FastCGI parameters of one request; more: 400
  std::size_t max_body_bytes = 1024 * 1024;        // request body; more: 413
  std::size_t body_memory = 64 * 1024;             // body bytes kept in memory; past it, a temp file
  std::string temp_dir = "/tmp";                   // where such files are made (O_TMPFILE)
};

// A setting that cannot work (a malformed --listen, a port out of range, a
// socket path a running server holds).
class BadSetting : public std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Throws std::runtime_error "`what`: strerror(errno)".
[[noreturn]] void ThrowSystemError(const std::string& what);

}  // namespace sessiond
