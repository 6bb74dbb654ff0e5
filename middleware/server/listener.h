// The listening socket: where connections from the web server come in.
//
// A Listener opens one of three kinds (ServerOptions::listen):
// - unix:PATH: created under a temporary name beside PATH, given its owner,
//   group (--socket-owner, --socket-group) and mode (--socket-mode), and
//   renamed into place only once it listens, so the path never shows a socket
//   with the wrong owner or one that refuses connections. A path holding a
//   stale socket (nobody accepts on it: a sessiond killed -9) is replaced; a
//   socket a running server holds (it accepts, or its backlog is full) is
//   never touched, also when two sessionds start on one path at once (they
//   take turns under a lock on the socket's directory). The PATH is at most
//   90 bytes, so the temporary name beside it fits a socket address too.
// - HOST:PORT: a TCP socket (a warning when it is not loopback).
// - empty: inherited, from systemd's socket activation (LISTEN_FDS, fd 3)
//   or spawn-fcgi (fd 0); never unlinked or shut down, and its owner and mode
//   are whoever made it's (SocketUser=, SocketGroup=, SocketMode=).
// The event loop accepts on fd(); nothing here accepts.
//
// Thread-safety: a Listener is used by one thread at a time (built before
// the loop runs, closed by the loop when it drains). The free functions are
// safe anywhere: they bind nothing.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "middleware/server/options.h"

namespace sessiond {

// Checks `listen` as a Listener would take it, without binding anything: a
// well-formed address (a host that resolves, a port in range), or a unix
// socket path that fits (90 bytes), in a directory that exists and can be written to,
// and that holds nothing or a socket. A path where a server listens now is
// no settings error (ListenNotes says so). Empty (inherited) is fine too.
// Throws BadSetting with the reason.
void CheckListenAddress(const std::string& listen);

// The owner and group --socket-owner and --socket-group name; -1: unchanged.
struct SocketOwnership {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

// Resolves options.socket_owner and socket_group, where they apply (a unix
// socket sessiond creates; for an inherited or TCP socket nothing is
// resolved: ListenNotes says they are ignored). Throws BadSetting for a
// user or group that does not exist, and, when sessiond is not root, for an
// owner other than itself or a group it is not in (chown would be refused).
SocketOwnership ResolveSocketOwnership(const ServerOptions& options);

// What serve would say at start about the listening socket that is no
// settings error, for `serve --test`: --socket-owner/--socket-group ignored
// (inherited socket, TCP); a unix PATH a running server holds now (serve
// would exit 2 while it runs).
std::vector<std::string> ListenNotes(const ServerOptions& options);

// For serve --test: who will be able to connect to the unix socket serve
// creates ("the socket PATH will be USER:GROUP, mode 0660: ..."), with a
// hint when the web server's usual user (www-data) could not. Empty for an
// inherited or TCP socket. Throws BadSetting as ResolveSocketOwnership.
std::string WhoCanConnect(const ServerOptions& options);

class Listener {
 public:
  // Opens (or takes over) the listening socket, non-blocking and
  // close-on-exec. Throws BadSetting for a malformed address, a unix path a
  // running server holds ("PATH is in use by a running server"), an owner
  // or group that cannot be had, more than one socket from systemd, or an
  // inherited descriptor that is not a listening socket;
  // std::runtime_error when the socket cannot be had otherwise (a path that
  // is not a socket, a port in use, no permission).
  explicit Listener(const ServerOptions& options);
  ~Listener() { Close(); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int fd() const { return fd_; }  // -1 once closed

  // For the log: where an inherited socket came from ("the socket from
  // systemd (fd 3)", "the socket on fd 0"); empty with --listen.
  const std::string& inherited_from() const { return inherited_from_; }

  // Stops taking connections: closes the descriptor (never shutdown():
  // an inherited one is shared) and removes the unix socket it created, if
  // the path still holds that one (a successor may have bound it meanwhile).
  void Close();

 private:
  int fd_ = -1;
  std::string inherited_from_;
  std::string unix_path_;  // the unix socket this listener created
  dev_t unix_dev_ = 0;
  ino_t unix_ino_ = 0;
};

}  // namespace sessiond
