#include "middleware/server/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "log/log.h"
#include "middleware/base/address.h"
#include "middleware/server/systemd.h"

namespace sessiond {
namespace {

constexpr int kBacklog = 1024;

// --listen as an Address; BadSetting when malformed.
Address ParseListen(const std::string& listen) {
  std::string why;
  std::optional<Address> a = ParseAddress(listen, why);
  if (!a) throw BadSetting("--listen " + listen + ": " + why);
  return *a;
}

// The temporary name ListenUnix binds beside the path: "." and 16 hex digits.
constexpr std::size_t kTempSuffix = 17;
// The longest unix PATH --listen takes: the temporary name beside it must
// fit a socket address too.
constexpr std::size_t kMaxListenPath = sizeof(sockaddr_un{}.sun_path) - 1 - kTempSuffix;

void CheckListenPathLength(const std::string& path) {
  if (path.size() > kMaxListenPath)
    throw BadSetting("--listen unix:" + path + ": socket path too long (at most " + std::to_string(kMaxListenPath) +
                     " bytes, so the temporary name sessiond binds beside it fits too)");
}

// Whether a server holds the unix socket at `path` now: it accepts, or its
// backlog is full (EAGAIN: a busy or stopped server is still a server).
// Never waits: the connect is non-blocking. False when nobody listens
// (ECONNREFUSED: a stale socket); `err` is the errno of a failure that tells
// neither (0 otherwise).
bool ServerListensOn(const std::string& path, int& err) {
  err = 0;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) ThrowSystemError("socket");
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int what = rc == 0 ? 0 : errno;
  ::close(fd);
  if (what == 0 || what == EAGAIN || what == EWOULDBLOCK) return true;
  if (what != ECONNREFUSED) err = what;
  return false;
}

// An exclusive lock on the directory that holds a unix socket, for as long
// as one sessiond checks the path, binds and renames into place: two
// started at once on one path take turns, so the second finds the first's
// live socket instead of replacing it. Bounded: a lock held longer than a
// start-up takes is an error, not a wait.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::string& path) {
    std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, std::max<std::size_t>(path.rfind('/'), 1));
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) ThrowSystemError("cannot open the directory of " + path);
    for (int i = 0; ::flock(fd_, LOCK_EX | LOCK_NB) != 0; ++i) {
      if ((errno != EWOULDBLOCK && errno != EINTR) || i == 500) {
        int err = errno;
        ::close(fd_);
        errno = err;
        ThrowSystemError("cannot lock the directory of " + path);
      }
      ::usleep(10000);  // another sessiond is starting there: its turn takes microseconds
    }
  }
  ~DirectoryLock() { ::close(fd_); }  // closing the last descriptor releases the lock
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

std::string InUse(const std::string& path) { return path + " is in use by a running server"; }

// A path that holds nothing, or a socket nobody answers on (left by a
// sessiond that was killed), may be taken; a live socket is a settings error
// (another sessiond serves there: replacing it would cut it off from its web
// server); anything else is refused.
void CheckUnixPath(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    ThrowSystemError("cannot check " + path);
  }
  if (!S_ISSOCK(st.st_mode))
    throw std::runtime_error(path + " exists and is not a socket: refusing to replace it");
  int err = 0;
  if (ServerListensOn(path, err))
    throw BadSetting(InUse(path) + " (another server is listening on it): left in place; stop that server first, "
                     "or give another --listen path");
  if (err != 0) {
    errno = err;
    ThrowSystemError("cannot check " + path);
  }
}

// Binds under a temporary name and renames into place once it has its owner
// and mode and listens, so a client (or a test) that sees the path can
// connect at once, and never with the wrong owner.
int ListenUnix(const std::string& path, unsigned mode, SocketOwnership owner, dev_t& dev, ino_t& ino) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  CheckListenPathLength(path);
  // A name of our own beside the path: bind() fails rather than replace
  // anything that is there.
  std::uint64_t nonce = 0;
  (void)!::getrandom(&nonce, sizeof nonce, 0);
  char suffix[kTempSuffix + 1];
  std::snprintf(suffix, sizeof suffix, ".%016llx", static_cast<unsigned long long>(nonce));
  std::string tmp = path + suffix;
  DirectoryLock lock(path);
  CheckUnixPath(path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) ThrowSystemError("socket");
  std::memcpy(addr.sun_path, tmp.c_str(), tmp.size() + 1);
  struct stat st;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    ThrowSystemError("bind " + tmp);
  }
  const bool chown_it = owner.uid != static_cast<uid_t>(-1) || owner.gid != static_cast<gid_t>(-1);
  if ((chown_it && ::lchown(tmp.c_str(), owner.uid, owner.gid) != 0) || ::chmod(tmp.c_str(), mode) != 0 ||
      ::listen(fd, kBacklog) != 0 || ::stat(tmp.c_str(), &st) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    ::close(fd);
    errno = err;
    ThrowSystemError("cannot set up " + path);
  }
  dev = st.st_dev;
  ino = st.st_ino;
  return fd;
}

bool IsLoopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr) >> 24) == 127;
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&a);
  }
  return false;
}

using AddrInfo = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;

// HOST:PORT (or :PORT) as the address to bind; BadSetting when malformed.
AddrInfo ResolveTcp(const std::string& hostport) {
  Address a = ParseListen(hostport);
  if (a.is_unix) throw BadSetting("--listen " + hostport + ": not HOST:PORT");
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  if (int rc = ::getaddrinfo(a.host.c_str(), a.port.c_str(), &hints, &res))
    throw BadSetting("--listen " + hostport + ": " + gai_strerror(rc));
  return AddrInfo(res, freeaddrinfo);
}

int ListenTcp(const std::string& hostport) {
  AddrInfo guard = ResolveTcp(hostport);
  addrinfo* res = guard.get();
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) ThrowSystemError("socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, kBacklog) != 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    ThrowSystemError("cannot listen on " + hostport);
  }
  if (!IsLoopback(res->ai_addr))
    LogLine("warning: listening on " + hostport +
            ", reachable from other machines; FastCGI has no authentication, so let only "
            "the web servers reach it (firewall), or listen on 127.0.0.1 or a unix socket");
  return fd;
}

// Why --socket-owner/--socket-group do not apply to `options`' socket;
// empty when they do (or are not given).
std::string OwnershipIgnored(const ServerOptions& options) {
  if (options.socket_owner.empty() && options.socket_group.empty()) return {};
  if (options.listen.empty())
    return "--socket-owner and --socket-group are ignored: the socket is inherited, and whoever made it set its "
           "owner (systemd's SocketUser= and SocketGroup=)";
  std::string why;
  std::optional<Address> a = ParseAddress(options.listen, why);
  if (a && !a->is_unix) return "--socket-owner and --socket-group are ignored: --listen " + options.listen + " is TCP";
  return {};
}

// The socket on fd 0 (spawn-fcgi) or systemd's fd 3, checked to be a
// listening socket; `from` says which.
int Inherit(std::string& from) {
  // Always asked, so the variables are cleared and the descriptors closed at exec.
  const int passed = SystemdSockets();
  // systemd's socket activation passes the socket from fd 3 on (and
  // systemd-socket-activate); spawn-fcgi on fd 0.
  if (passed > 1)
    throw BadSetting("systemd passed " + std::to_string(passed) +
                     " sockets (LISTEN_FDS); sessiond serves exactly one: one ListenStream= in the socket unit");
  const int fd = passed == 1 ? kSystemdFirstFd : 0;
  from = passed == 1 ? "the socket from systemd (fd 3)" : "the socket on fd 0";
  int accepting = 0;
  socklen_t len = sizeof accepting;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting)
    throw BadSetting(passed == 1 ? "the descriptor systemd passed (fd 3) is not a listening socket"
                                 : "no --listen given, no socket from systemd (LISTEN_FDS), and fd 0 is not a "
                                   "listening socket");
  // The descriptor is shared with whoever made it (spawn-fcgi, systemd):
  // it is never shut down or unlinked, only closed here.
  int listen_fd = fd;  // systemd's: close-on-exec already (SystemdSockets)
  if (fd == 0) {
    listen_fd = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    if (listen_fd < 0) ThrowSystemError("dup of fd 0");
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 0);  // fd 0 no longer holds the socket: nothing can hand it on
      ::close(null);
    }
  }
  ::fcntl(listen_fd, F_SETFL, ::fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
  return listen_fd;
}

}  // namespace

void CheckListenAddress(const std::string& listen) {
  if (listen.empty()) return;
  Address a = ParseListen(listen);
  if (!a.is_unix) {
    ResolveTcp(listen);
    return;
  }
  const std::string& path = a.path;
  CheckListenPathLength(path);
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, std::max<std::size_t>(path.rfind('/'), 1));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw BadSetting("--listen " + listen + ": no directory " + dir);
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw BadSetting("--listen " + listen + ": cannot create the socket in " + dir + ": " + std::strerror(errno));
  if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
    throw BadSetting("--listen " + listen + ": " + path + " exists and is not a socket; serve refuses to replace it");
}

SocketOwnership ResolveSocketOwnership(const ServerOptions& options) {
  SocketOwnership o;
  if (!OwnershipIgnored(options).empty()) return o;  // not a socket sessiond creates: nothing to check
  const bool root = ::geteuid() == 0;
  if (!options.socket_owner.empty()) {
    struct passwd* pw = ::getpwnam(options.socket_owner.c_str());
    if (!pw) throw BadSetting("--socket-owner " + options.socket_owner + ": no such user");
    o.uid = pw->pw_uid;
    if (!root && o.uid != ::geteuid())
      throw BadSetting("--socket-owner " + options.socket_owner +
                       ": only root can give the socket another owner (sessiond runs as uid " +
                       std::to_string(::geteuid()) + "); --socket-group lets that user's group connect instead");
  }
  if (!options.socket_group.empty()) {
    struct group* gr = ::getgrnam(options.socket_group.c_str());
    if (!gr) throw BadSetting("--socket-group " + options.socket_group + ": no such group");
    o.gid = gr->gr_gid;
    if (!root && o.gid != ::getegid()) {
      int n = ::getgroups(0, nullptr);
      std::vector<gid_t> mine(static_cast<std::size_t>(std::max(n, 0)));
      n = ::getgroups(n, mine.data());
      if (std::find(mine.begin(), mine.begin() + std::max(n, 0), o.gid) == mine.begin() + std::max(n, 0))
        throw BadSetting("--socket-group " + options.socket_group +
                         ": sessiond is not root and not in that group, so it cannot give it the socket");
    }
  }
  return o;
}

std::vector<std::string> ListenNotes(const ServerOptions& options) {
  std::vector<std::string> notes;
  if (std::string ignored = OwnershipIgnored(options); !ignored.empty()) notes.push_back(ignored);
  std::string why;
  std::optional<Address> a = ParseAddress(options.listen, why);
  int err = 0;
  struct stat st;
  if (a && a->is_unix && ::lstat(a->path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && ServerListensOn(a->path, err))
    notes.push_back(InUse(a->path) + ": serve would exit 2 while it runs (stop it first, as a restart does)");
  return notes;
}

std::string WhoCanConnect(const ServerOptions& options) {
  std::string why;
  std::optional<Address> a = ParseAddress(options.listen, why);
  if (!a || !a->is_unix) return {};
  SocketOwnership o = ResolveSocketOwnership(options);
  const uid_t uid = o.uid != static_cast<uid_t>(-1) ? o.uid : ::geteuid();
  const gid_t gid = o.gid != static_cast<gid_t>(-1) ? o.gid : ::getegid();
  const struct passwd* pw = ::getpwuid(uid);
  const std::string user = pw ? pw->pw_name : std::to_string(uid);
  const struct group* gr = ::getgrgid(gid);
  const std::string group = gr ? gr->gr_name : std::to_string(gid);
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", options.socket_mode & 07777);
  std::string note = "the socket " + a->path + " will be " + user + ":" + group + ", mode " + mode;
  const bool others = (options.socket_mode & 0002) != 0;
  if (!others && user != "www-data" && group != "www-data")
    note += ": nginx's and Apache's workers run as www-data on Debian and could not connect (--socket-group "
            "www-data lets them)";
  return note;
}

Listener::Listener(const ServerOptions& options) {
  const bool inherit = options.listen.empty();
  if (!inherit) {
    // Always asked, so the variables are cleared and the descriptors closed at exec.
    if (SystemdSockets() > 0)
      LogLine("warning: --listen " + options.listen + " given: the socket systemd passed (LISTEN_FDS) is not used");
  }
  if (std::string ignored = OwnershipIgnored(options); !ignored.empty()) LogLine("note: " + ignored);
  if (inherit) {
    fd_ = Inherit(inherited_from_);
  } else if (Address a = ParseListen(options.listen); a.is_unix) {
    SocketOwnership owner = ResolveSocketOwnership(options);
    fd_ = ListenUnix(a.path, options.socket_mode, owner, unix_dev_, unix_ino_);
    unix_path_ = a.path;
  } else {
    fd_ = ListenTcp(options.listen);
  }
}

void Listener::Close() {
  if (fd_ >= 0) ::close(fd_);  // never shutdown(): others may share it
  fd_ = -1;
  if (unix_path_.empty()) return;
  // Only our own socket: a successor may have bound the path meanwhile.
  struct stat st;
  if (::lstat(unix_path_.c_str(), &st) == 0 && st.st_dev == unix_dev_ && st.st_ino == unix_ino_)
    ::unlink(unix_path_.c_str());
  unix_path_.clear();
}

}  // namespace sessiond
