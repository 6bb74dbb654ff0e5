#include "middleware/server/fcgi_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "log/log.h"
#include "middleware/base/address.h"
#include "middleware/base/http.h"
#include "middleware/base/metrics.h"
#include "middleware/fastcgi/fcgi_record.h"
#include "middleware/server/systemd.h"

namespace sessiond {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kBacklog = 1024;

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// ---------------------------------------------------------------------------
// The listening socket

// A path that holds nothing, or a socket nobody answers on (left by a
// sessiond that was killed), may be taken; anything else is refused.
void CheckUnixPath(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    Fail("cannot check " + path);
  }
  if (!S_ISSOCK(st.st_mode))
    throw std::runtime_error(path + " exists and is not a socket: refusing to replace it");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fail("socket");
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::close(fd);
  if (rc == 0) throw std::runtime_error("another server is listening on " + path);
  if (err != ECONNREFUSED) {
    errno = err;
    Fail("cannot check " + path);
  }
}

// Binds under a temporary name and renames into place once listening, so a
// client (or a test) that sees the path can connect at once.
int ListenUnix(const std::string& path, unsigned mode, dev_t& dev, ino_t& ino) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // A name of our own beside the path: bind() fails rather than replace
  // anything that is there.
  std::uint64_t nonce = 0;
  (void)!::getrandom(&nonce, sizeof nonce, 0);
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, ".%d.%016llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(nonce));
  std::string tmp = path + suffix;
  if (tmp.size() >= sizeof addr.sun_path) throw BadSetting("socket path too long: " + path);
  CheckUnixPath(path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) Fail("socket");
  std::memcpy(addr.sun_path, tmp.c_str(), tmp.size() + 1);
  struct stat st;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Fail("bind " + tmp);
  if (::chmod(tmp.c_str(), mode) != 0 || ::listen(fd, kBacklog) != 0 || ::stat(tmp.c_str(), &st) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    errno = err;
    Fail("cannot set up " + path);
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

// --listen as an Address; BadSetting when malformed.
Address ParseListen(const std::string& listen) {
  std::string why;
  std::optional<Address> a = ParseAddress(listen, why);
  if (!a) throw BadSetting("--listen " + listen + ": " + why);
  return *a;
}

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
  if (fd < 0) Fail("socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0) Fail("bind " + hostport);
  if (::listen(fd, kBacklog) != 0) Fail("listen " + hostport);
  if (!IsLoopback(res->ai_addr))
    LogLine("warning: listening on " + hostport +
            ", reachable from other machines; FastCGI has no authentication, so let only "
            "the web servers reach it (firewall), or listen on 127.0.0.1 or a unix socket");
  return fd;
}

// Sends all of `bytes` on a non-blocking socket, waiting for room until
// `deadline`. False when the peer is gone or too slow.
// Whether the web server has closed its end of `fd` (or it failed) while
// the request waited for a worker: nginx does when its client went away
// (fastcgi_ignore_client_abort off, the default). Running the page then
// would do its work, POSTs included, for nobody, and a client that sends and
// hangs up at once could keep every worker busy that way. (A web server that
// only half-closes after sending a request counts as gone too: neither
// nginx nor Apache does.)
bool WebServerLeft(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

bool SendAll(int fd, std::string_view bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) return false;
  }
  return true;
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
  // ListenUnix binds a temporary name beside the path first (".PID.NONCE").
  if (path.size() + 4 >= sizeof(sockaddr_un{}.sun_path)) throw BadSetting("socket path too long: " + path);
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, std::max<std::size_t>(path.rfind('/'), 1));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw BadSetting("--listen " + listen + ": no directory " + dir);
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw BadSetting("--listen " + listen + ": cannot create the socket in " + dir + ": " + std::strerror(errno));
  if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
    throw BadSetting("--listen " + listen + ": " + path + " exists and is not a socket; serve refuses to replace it");
}

namespace {

// ---------------------------------------------------------------------------
// Connections and the queue between the loop and the workers

// One connection from the web server. The loop owns it; while `busy` (queued
// or with a worker) only that worker touches it, and the loop does not watch
// its descriptor.
struct Conn {
  Conn(int f, Clock::time_point now, std::chrono::milliseconds io_timeout)
      : fd(f), deadline(now + io_timeout), idle_since(now) {}
  ~Conn() { ::close(fd); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int fd;
  Clock::time_point deadline;    // the request must have arrived whole by then
  Clock::time_point idle_since;  // accepted, or its last response sent
  Clock::time_point arriving_since;  // the first byte of the request being received came
  std::string in;              // received bytes not yet parsed (at most one partial record)
  bool served = false;         // it has served a request: now an idle keep-alive connection
  bool busy = false;

  // The request being received or served; id 0: none.
  std::uint16_t id = 0;
  bool keep = false;  // FCGI_KEEP_CONN: the web server reuses the connection
  bool params_done = false;
  std::string params;  // FCGI_PARAMS bytes, until their end
  std::vector<std::string> env;
  std::vector<std::string_view> env_views;
  std::optional<SpillBuffer> body;
  std::optional<std::size_t> declared_length;  // CONTENT_LENGTH, when sent
  Clock::time_point queued_at;
  bool close_after = false;  // set by the worker: the connection cannot be reused

  void ResetRequest() {
    id = 0;
    keep = params_done = close_after = false;
    params.clear();
    params.shrink_to_fit();
    env.clear();
    env_views.clear();
    body.reset();
    declared_length.reset();
  }
};

class JobQueue {
 public:
  // False when `limit` requests are waiting already.
  bool Push(Conn* c, std::size_t limit) {
    {
      std::lock_guard lock(m_);
      if (q_.size() >= limit) return false;
      q_.push_back(c);
    }
    ProcessMetrics().Add(Metrics::Gauge::QueueLength, 1);
    cv_.notify_one();
    return true;
  }
  // The next request, or nullptr once Close() was called and none is left.
  Conn* Pop() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return nullptr;
    Conn* c = q_.front();
    q_.pop_front();
    ProcessMetrics().Add(Metrics::Gauge::QueueLength, -1);
    return c;
  }
  void Close() {
    {
      std::lock_guard lock(m_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  // Takes out the requests queued before `cutoff` (the oldest are first).
  std::vector<Conn*> TakeQueuedBefore(Clock::time_point cutoff);

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Conn*> q_;
  bool closed_ = false;
};

std::vector<Conn*> JobQueue::TakeQueuedBefore(Clock::time_point cutoff) {
  std::vector<Conn*> late;
  std::lock_guard lock(m_);
  while (!q_.empty() && q_.front()->queued_at < cutoff) {
    late.push_back(q_.front());
    q_.pop_front();
  }
  return late;
}

// The request a worker serves: parameters and body as received; the response
// is framed as FCGI_STDOUT records and sent as it is written, 32 KiB at a time.
class FcgiRequest final : public Request {
 public:
  FcgiRequest(Conn& c, std::chrono::milliseconds io_timeout) : c_(c), io_timeout_(io_timeout) {
    static const SpillBuffer kEmpty;
    body_ = c.body ? &*c.body : &kEmpty;
  }
  const std::vector<std::string_view>& Environment() const override { return c_.env_views; }
  const SpillBuffer& Body() const override { return *body_; }
  void Write(std::string_view bytes) override {
    wrote_ = true;
    pending_.append(bytes);
    if (pending_.size() >= 32 * 1024) Flush();
  }

  bool wrote() const { return wrote_; }
  bool broken() const { return broken_; }

  // Ends the response: the rest of the output, the end of FCGI_STDOUT and
  // FCGI_END_REQUEST.
  void Finish() {
    Flush();
    std::string end;
    fcgi::AppendRecords(end, fcgi::kStdout, c_.id, {});
    fcgi::AppendEndRequest(end, c_.id, 0, fcgi::kRequestComplete);
    Send(end);
  }

 private:
  void Flush() {
    if (pending_.empty()) return;
    std::string framed;
    framed.reserve(pending_.size() + 16);
    fcgi::AppendRecords(framed, fcgi::kStdout, c_.id, pending_);
    pending_.clear();
    Send(framed);
  }
  // The web server gets io_timeout for the whole response, not per piece: a
  // peer that reads a trickle cannot hold a worker for long.
  void Send(std::string_view bytes) {
    if (!deadline_) deadline_ = Clock::now() + io_timeout_;
    if (!broken_ && !SendAll(c_.fd, bytes, *deadline_)) broken_ = true;
  }

  Conn& c_;
  std::chrono::milliseconds io_timeout_;
  const SpillBuffer* body_;
  std::string pending_;
  std::optional<Clock::time_point> deadline_;
  bool wrote_ = false;
  bool broken_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------
// The event loop: accepts, receives requests, queues them, takes connections
// back from the workers, closes idle and slow ones, and drains on Stop().

struct FcgiServer::Loop {
  FcgiServer& server;
  const ServerOptions& opts;
  JobQueue& queue;
  int epoll_fd = -1;
  std::unordered_map<int, std::unique_ptr<Conn>> conns;
  bool listening = false;  // the listening socket is watched
  bool draining = false;
  bool limit_logged = false;
  std::size_t in_flight = 0;  // queued or with a worker
  bool burst = false;         // requests were served since memory was last given back
  Clock::time_point drain_started;
  std::size_t drained = 0;    // requests finished since the drain started

  std::mutex returned_mutex;
  std::vector<Conn*> returned;  // finished by workers, for the loop to reuse or close

  Loop(FcgiServer& s, JobQueue& q) : server(s), opts(s.options_), queue(q) {
    epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) Fail("epoll_create1");
    Watch(server.wake_fd_, EPOLL_CTL_ADD);
    SetListening(true);
  }
  ~Loop() { ::close(epoll_fd); }

  void Watch(int fd, int op, std::uint32_t events = EPOLLIN) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd, op, fd, &ev) != 0 && op != EPOLL_CTL_DEL) Fail("epoll_ctl");
  }

  void SetListening(bool on) {
    if (on == listening || server.listen_fd_ < 0) return;
    Watch(server.listen_fd_, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL);
    listening = on;
  }

  // Called by a worker when it is done with `c`.
  void GiveBack(Conn* c) {
    {
      std::lock_guard lock(returned_mutex);
      returned.push_back(c);
    }
    std::uint64_t one = 1;
    (void)!::write(server.wake_fd_, &one, sizeof one);
  }

  void Run() {
    auto last_sweep = Clock::now();
    epoll_event events[64];
    for (;;) {
      if (server.stop_ && !draining) StartDrain();
      if (draining && conns.empty()) {
        LogDrained();
        return;
      }
      int n = ::epoll_wait(epoll_fd, events, 64, 250);
      if (n < 0 && errno != EINTR) Fail("epoll_wait");
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == server.wake_fd_) {
          std::uint64_t count;
          (void)!::read(fd, &count, sizeof count);
          TakeReturned();
        } else if (fd == server.listen_fd_) {
          Accept(false);
        } else if (auto it = conns.find(fd); it != conns.end() && !it->second->busy) {
          Receive(*it->second);
        }
      }
      if (Clock::now() - last_sweep >= std::chrono::milliseconds(250)) {
        Sweep();
        last_sweep = Clock::now();
      }
    }
  }

  void Accept(bool everything) {
    for (;;) {
      // At the limit: the connection that makes room, closed only once a
      // new one was accepted (the backlog may be empty by now).
      Conn* room = nullptr;
      bool idle = true;
      if (!everything && conns.size() >= opts.max_connections) {
        room = OldestIdle();
        if (!room) {
          room = SlowestArriving();
          idle = false;
        }
        if (!room) {
          // Every connection is busy with a request, or has been sending
          // one for less than a quarter of a second: further ones wait in
          // the backlog until one closes (the sweep tries again).
          if (!limit_logged) LogLine("max_connections (" + std::to_string(opts.max_connections) + ") reached");
          limit_logged = true;
          SetListening(false);
          return;
        }
      }
      int fd = ::accept4(server.listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0 && room) {
        if (idle) Close(*room);
        else CloseSlowest(*room);
      }
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          // Out of descriptors or memory: say so, and try again at the next sweep.
          LogLine(std::string("accept failed: ") + std::strerror(errno));
          SetListening(false);
        }
        return;
      }
      conns.emplace(fd, std::make_unique<Conn>(fd, Clock::now(), opts.io_timeout));
      Watch(fd, EPOLL_CTL_ADD);
    }
  }

  // At the connection limit, an idle connection makes room for a new one, as
  // nginx reuses idle keep-alive connections: the one idle the longest, among
  // those between two requests and those that have sent nothing at all for a
  // quarter of a second (not even into the kernel's buffer, which a peek
  // tells: a client may connect a moment before it writes). Null when there
  // is none.
  Conn* OldestIdle() {
    const auto fresh = Clock::now() - std::chrono::milliseconds(250);
    std::vector<Conn*> idle;
    for (auto& [fd, c] : conns)
      if (!c->busy && c->id == 0 && c->in.empty()) idle.push_back(c.get());
    std::sort(idle.begin(), idle.end(), [](Conn* a, Conn* b) { return a->idle_since < b->idle_since; });
    int peeks = 0;
    for (Conn* c : idle) {
      if (!c->served) {
        if (c->idle_since > fresh) break;  // sorted: the rest are younger still
        if (++peeks > 64) break;           // bounded work per accept under a flood
        char byte;
        if (::recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
          continue;  // data waiting (or EOF, an error): the loop reads it
      }
      return c;
    }
    return nullptr;
  }

  // At the connection limit with nothing idle to close: the connection that
  // has been sending its request the longest makes room, so that half-sent
  // requests (a flood of them, or a slowloris) cannot lock whole ones out
  // for io_timeout. A web server sends a request in one go, unless it
  // streams a client's body as it comes (nginx's fastcgi_request_buffering
  // off): such a request may be the one closed, and then only while
  // sessiond is at its limit. Requests that began within the last quarter
  // of a second are spared. Null when there is none.
  Conn* SlowestArriving() {
    const auto now = Clock::now();
    Conn* slowest = nullptr;
    for (auto& [fd, c] : conns)
      if (!c->busy && (c->id != 0 || !c->in.empty()) && now - c->arriving_since >= std::chrono::milliseconds(250) &&
          (!slowest || c->arriving_since < slowest->arriving_since))
        slowest = c.get();
    return slowest;
  }

  // Closes SlowestArriving()'s connection: a 503 for its request, and a log line.
  void CloseSlowest(Conn& c) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - c.arriving_since).count();
    std::string why = "max_connections (" + std::to_string(opts.max_connections) +
                      ") reached: closed the request that has been arriving longest (" + std::to_string(ms) +
                      " ms, not received whole) to make room";
    if (c.id != 0) {
      Reject(c, 503, why);
    } else {
      LogLine(why);  // not even a whole first record: nothing to answer
      Close(c);
    }
  }

  void Close(Conn& c) {
    if (!c.busy) Watch(c.fd, EPOLL_CTL_DEL);
    conns.erase(c.fd);  // closes the descriptor
    burst = true;       // its buffers are freed: memory to give back
  }

  // Answers the request at once with `status` (never a worker's time), logs
  // why, and closes the connection: the rest of the request may still be on
  // its way, and closing is the only clean end for it.
  void Reject(Conn& c, int status, const std::string& why) {
    std::vector<std::string_view> env(c.env.begin(), c.env.end());
    LogFailure(status, env, why);
    ProcessMetrics().CountRequest(status);
    std::string out;
    fcgi::AppendRecords(out, fcgi::kStdout, c.id, ErrorResponse(status));
    fcgi::AppendRecords(out, fcgi::kStdout, c.id, {});
    fcgi::AppendEndRequest(out, c.id, 0, fcgi::kRequestComplete);
    SendAll(c.fd, out, Clock::now());  // room for a few hundred bytes, or nothing
    Close(c);
  }

  // Sends a small reply record; a peer that has no room for it is not
  // reading, and half a record would corrupt its stream: it is closed.
  // Returns false when `c` was closed.
  bool Reply(Conn& c, std::string_view out) {
    if (SendAll(c.fd, out, Clock::now())) return true;
    Close(c);
    return false;
  }

  void ProtocolError(Conn& c, const std::string& why) {
    LogLine("FastCGI protocol error, connection closed: " + why);
    Close(c);
  }

  void Receive(Conn& c) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n > 0) {
        if (c.id == 0 && c.in.empty()) c.arriving_since = Clock::now();
        c.in.append(buf, static_cast<std::size_t>(n));
        if (!Parse(c)) return;  // closed
        if (c.busy) return;     // a whole request went to the workers
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      // The web server hung up (or the connection failed): a request not yet
      // received whole is dropped, as nginx has given up on it.
      Close(c);
      return;
    }
  }

  // Takes every whole record out of c.in. Returns false when `c` was closed.
  bool Parse(Conn& c) {
    std::size_t pos = 0;
    while (!c.busy) {
      fcgi::Record r;
      std::size_t used = 0;
      auto parsed = fcgi::ParseRecord(std::string_view(c.in).substr(pos), r, used);
      if (parsed == fcgi::Parse::kNeedMore) break;
      if (parsed == fcgi::Parse::kBad) {
        ProtocolError(c, "not a FastCGI 1.0 record");
        return false;
      }
      pos += used;
      if (!OnRecord(c, r)) return false;
    }
    c.in.erase(0, pos);
    if (c.in.empty()) std::string().swap(c.in);  // an idle connection keeps no buffer
    return true;
  }

  bool OnRecord(Conn& c, const fcgi::Record& r) {
    using namespace fcgi;
    if (r.request_id == 0) {
      std::string out;
      if (r.type == kGetValues) {
        std::vector<std::string> asked;
        ParseNameValues(r.content, asked);
        std::string pairs;
        for (const std::string& kv : asked) {
          std::string name = kv.substr(0, kv.find('='));
          if (name == "FCGI_MAX_CONNS") AppendNameValue(pairs, name, std::to_string(opts.max_connections));
          if (name == "FCGI_MAX_REQS") AppendNameValue(pairs, name, std::to_string(opts.max_connections));
          if (name == "FCGI_MPXS_CONNS") AppendNameValue(pairs, name, "0");
        }
        AppendRecords(out, kGetValuesResult, 0, pairs);
      } else {
        AppendUnknownType(out, r.type);
      }
      return Reply(c, out);
    }
    if (r.type == kBeginRequest) {
      BeginRequest begin;
      if (!ParseBeginRequest(r.content, begin)) {
        ProtocolError(c, "malformed FCGI_BEGIN_REQUEST");
        return false;
      }
      std::string out;
      if (c.id != 0) {
        AppendEndRequest(out, r.request_id, 0, kCantMpxConn);  // one request at a time per connection
      } else if (begin.role != kResponder) {
        AppendEndRequest(out, r.request_id, 0, kUnknownRole);
      } else {
        c.id = r.request_id;
        c.keep = begin.keep_conn;
        return true;
      }
      return Reply(c, out);
    }
    if (r.request_id != c.id) return true;  // records of requests that are not active are ignored
    switch (r.type) {
      case kAbortRequest: {
        std::string out;
        AppendEndRequest(out, c.id, 0, kRequestComplete);
        if (!Reply(c, out)) return false;
        if (!c.keep) {
          Close(c);
          return false;
        }
        c.ResetRequest();
        return true;
      }
      case kParams: return OnParams(c, r.content);
      case kStdin: return OnStdin(c, r.content);
      default: return true;  // FCGI_DATA (filters only) and anything else: ignored
    }
  }

  bool OnParams(Conn& c, std::string_view content) {
    if (c.params_done) {
      ProtocolError(c, "FCGI_PARAMS after their end");
      return false;
    }
    if (!content.empty()) {
      if (c.params.size() + content.size() > opts.max_params_bytes) {
        Reject(c, 400, "FastCGI parameters exceed max_params_bytes (" + std::to_string(opts.max_params_bytes) + ")");
        return false;
      }
      c.params.append(content);
      return true;
    }
    c.params_done = true;
    if (!fcgi::ParseNameValues(c.params, c.env)) {
      Reject(c, 400, "malformed FastCGI parameters");
      return false;
    }
    c.params.clear();
    c.params.shrink_to_fit();
    c.env_views.assign(c.env.begin(), c.env.end());
    std::string_view length;
    for (std::string_view kv : c.env_views)
      if (kv.substr(0, 15) == "CONTENT_LENGTH=") {
        length = kv.substr(15);
        break;
      }
    if (!length.empty()) {
      if (length.size() > 19 || length.find_first_not_of("0123456789") != std::string_view::npos) {
        Reject(c, 400, "bad CONTENT_LENGTH");
        return false;
      }
      c.declared_length = std::stoull(std::string(length));
      if (*c.declared_length > opts.max_body_bytes) {
        Reject(c, 413, "request body of " + std::string(length) + " bytes exceeds max_body_bytes");
        return false;
      }
    }
    c.body.emplace(opts.body_memory, opts.temp_dir);
    return true;
  }

  bool OnStdin(Conn& c, std::string_view content) {
    if (!c.params_done) {
      ProtocolError(c, "FCGI_STDIN before the end of FCGI_PARAMS");
      return false;
    }
    if (content.empty()) {
      if (c.declared_length && *c.declared_length != c.body->size()) {
        Reject(c, 400, "request body of " + std::to_string(c.body->size()) + " bytes, CONTENT_LENGTH said " +
                           std::to_string(*c.declared_length));
        return false;
      }
      return Dispatch(c);
    }
    if (c.body->size() + content.size() > opts.max_body_bytes) {
      Reject(c, 413, "request body exceeds max_body_bytes");
      return false;
    }
    try {
      c.body->Append(content);
    } catch (const std::exception& e) {
      Reject(c, 500, std::string("request body: ") + e.what());
      return false;
    }
    return true;
  }

  // The request arrived whole: to a worker, or 503 when too many wait already.
  // Returns false when `c` was closed.
  bool Dispatch(Conn& c) {
    Watch(c.fd, EPOLL_CTL_DEL);
    c.busy = true;  // from here on a worker may have it
    c.queued_at = Clock::now();
    if (!queue.Push(&c, opts.queue_size)) {
      c.busy = false;
      Watch(c.fd, EPOLL_CTL_ADD);
      Reject(c, 503, "all workers busy and " + std::to_string(opts.queue_size) +
                         " requests waiting (queue_size)");
      return false;
    }
    ++in_flight;
    burst = true;
    return true;
  }

  void TakeReturned() {
    std::vector<Conn*> done;
    {
      std::lock_guard lock(returned_mutex);
      done.swap(returned);
    }
    for (Conn* c : done) {
      --in_flight;
      if (draining) ++drained;
      c->busy = false;
      if (c->close_after || !c->keep || (draining && c->in.empty())) {
        conns.erase(c->fd);
        continue;
      }
      c->ResetRequest();
      c->served = true;
      c->idle_since = Clock::now();
      c->deadline = c->idle_since + opts.io_timeout;
      Watch(c->fd, EPOLL_CTL_ADD);
      c->arriving_since = c->idle_since;
      if (!c->in.empty()) Parse(*c);  // a request that arrived behind the last one
    }
    if (!listening && !draining && conns.size() < opts.max_connections) {
      limit_logged = false;
      SetListening(true);
    }
  }

  // Closes connections past their deadline, answers requests that waited past
  // queue_timeout, gives memory back after a burst.
  void Sweep() {
    auto now = Clock::now();
    for (Conn* c : queue.TakeQueuedBefore(now - opts.queue_timeout)) {
      --in_flight;
      c->busy = false;
      auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - c->queued_at).count();
      Reject(*c, 503, "waited " + std::to_string(waited) + " ms for a worker, more than queue_timeout");
    }
    std::vector<Conn*> late;
    for (auto& [fd, c] : conns)
      if (!c->busy && now >= c->deadline) late.push_back(c.get());
    for (Conn* c : late) {
      if (c->id != 0 || !c->in.empty()) {
        std::vector<std::string_view> env(c->env.begin(), c->env.end());
        LogFailure(408, env, "request not received whole within io_timeout; connection closed");
        ProcessMetrics().CountRequest(408);
      }
      Close(*c);
    }
    // Paused at the limit or after an accept error: try again (Accept pauses
    // once more if there is still no room and nothing idle to close).
    if (!listening && !draining) SetListening(true);
    if (in_flight == 0 && burst) {
      // glibc keeps freed memory in its arenas; after a burst of large bodies
      // and outputs, hand it back so RSS returns to its idle size.
      ::malloc_trim(0);
      burst = false;
    }
    if (server.housekeeping_) server.housekeeping_();
  }

  // Serves what the kernel accepted before the stop, and nothing after.
  void StartDrain() {
    draining = true;
    drain_started = Clock::now();
    if (server.listen_fd_ >= 0) {
      Accept(true);  // the backlog: connections the kernel accepted already
      SetListening(false);
      server.CloseListener();
    }
    std::vector<Conn*> idle;
    auto grace = Clock::now() + std::chrono::seconds(1);
    for (auto& [fd, c] : conns) {
      if (c->busy || c->id != 0 || !c->in.empty()) continue;
      if (c->served) idle.push_back(c.get());
      // Accepted but silent: its request, if any, is in the kernel already.
      else c->deadline = std::min(c->deadline, grace);
    }
    for (Conn* c : idle) Close(*c);
    LogLine("stopping: finishing " + std::to_string(conns.size()) + " connections");
  }

  // What the drain did, for an operator following a restart.
  void LogDrained() {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - drain_started).count();
    char took[32];
    std::snprintf(took, sizeof took, "%lld.%03lld s", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000));
    LogLine("drained: served " + std::to_string(drained) + (drained == 1 ? " request" : " requests") +
            " after the stop, in " + took);
  }
};

// ---------------------------------------------------------------------------

FcgiServer::FcgiServer(const ServerOptions& options) : options_(options) {
  // Always asked, so the variables are cleared and the descriptors closed at exec.
  const int passed = SystemdSockets();
  if (!options_.listen.empty() && passed > 0)
    LogLine("warning: --listen " + options_.listen + " given: the socket systemd passed (LISTEN_FDS) is not used");
  if (options_.listen.empty()) {
    // systemd's socket activation passes the socket from fd 3 on (and
    // systemd-socket-activate); spawn-fcgi on fd 0.
    if (passed > 1)
      throw BadSetting("systemd passed " + std::to_string(passed) +
                       " sockets (LISTEN_FDS); sessiond serves exactly one: one ListenStream= in the socket unit");
    const int fd = passed == 1 ? kSystemdFirstFd : 0;
    inherited_from_ = passed == 1 ? "the socket from systemd (fd 3)" : "the socket on fd 0";
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting)
      throw BadSetting(passed == 1 ? "the descriptor systemd passed (fd 3) is not a listening socket"
                                   : "no --listen given, no socket from systemd (LISTEN_FDS), and fd 0 is not a "
                                     "listening socket");
    // The descriptor is shared with whoever made it (spawn-fcgi, systemd):
    // it is never shut down or unlinked, only closed here.
    if (fd == kSystemdFirstFd) {
      listen_fd_ = fd;  // close-on-exec already (SystemdSockets)
    } else {
      listen_fd_ = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
      if (listen_fd_ < 0) Fail("dup of fd 0");
      int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (null >= 0) {
        ::dup2(null, 0);  // fd 0 no longer holds the socket: nothing can hand it on
        ::close(null);
      }
    }
    ::fcntl(listen_fd_, F_SETFL, ::fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
    inherited_ = true;
  } else if (Address a = ParseListen(options_.listen); a.is_unix) {
    unix_path_ = a.path;
    listen_fd_ = ListenUnix(unix_path_, options_.socket_mode, unix_dev_, unix_ino_);
  } else {
    listen_fd_ = ListenTcp(options_.listen);
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) Fail("eventfd");
}

FcgiServer::~FcgiServer() {
  CloseListener();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void FcgiServer::CloseListener() {
  if (listen_fd_ >= 0) ::close(listen_fd_);  // never shutdown(): others may share it
  listen_fd_ = -1;
  if (unix_path_.empty()) return;
  // Only our own socket: a successor may have bound the path meanwhile.
  struct stat st;
  if (::lstat(unix_path_.c_str(), &st) == 0 && st.st_dev == unix_dev_ && st.st_ino == unix_ino_)
    ::unlink(unix_path_.c_str());
  unix_path_.clear();
}

void FcgiServer::Stop() {
  stop_ = true;
  std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void FcgiServer::Serve(const std::function<RequestHandler()>& make_handler) {
  ProcessMetrics().SetLimits(options_.workers, options_.queue_size);
  JobQueue queue;
  Loop loop(*this, queue);
  std::vector<std::thread> threads;
  auto worker = [&] {
    // The server is serving already: a handler that cannot be made now (its
    // store out of reach for a moment) is made again at the next request,
    // which meanwhile get 503, rather than taking the server down with it.
    RequestHandler handle;
    std::string why_not;
    auto make = [&] {
      try {
        handle = make_handler();
      } catch (const std::exception& e) {
        why_not = e.what();
      } catch (...) {
        why_not = "unexpected exception";
      }
    };
    auto ready = [&] {
      if (!handle) make();
      return static_cast<bool>(handle);
    };
    if (!ready()) LogLine("a worker could not start: " + why_not + "; it tries again at its next request");
    while (Conn* c = queue.Pop()) {
      GaugeScope busy(Metrics::Gauge::WorkersBusy);
      FcgiRequest request(*c, options_.io_timeout);
      auto waited = Clock::now() - c->queued_at;
      if (WebServerLeft(c->fd)) {
        LogFailure(499, c->env_views, "the web server closed the connection before a worker took the request "
                                      "(its client went away): not run");
        ProcessMetrics().CountRequest(499);
        c->close_after = true;
      } else if (waited > options_.queue_timeout) {
        LogFailure(503, c->env_views,
                   "waited " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) +
                       " ms for a worker, more than queue_timeout");
        ProcessMetrics().CountRequest(503);
        request.Write(ErrorResponse(503));
      } else if (!ready()) {
        LogFailure(503, c->env_views, "worker not ready: " + why_not);
        ProcessMetrics().CountRequest(503);
        request.Write(ErrorResponse(503));
      } else {
        // One request's failure stays with that request: the handler
        // answers its own errors, and anything it did not catch ends here.
        try {
          handle(request);
        } catch (const std::exception& e) {
          LogFailure(500, c->env_views, std::string("unexpected: ") + e.what());
          if (!request.wrote()) {
            ProcessMetrics().CountRequest(500);
            request.Write(ErrorResponse(500));
          } else {
            c->close_after = true;  // half a response: only closing ends it
          }
        } catch (...) {
          LogFailure(500, c->env_views, "unexpected exception");
          if (!request.wrote()) {
            ProcessMetrics().CountRequest(500);
            request.Write(ErrorResponse(500));
          } else {
            c->close_after = true;
          }
        }
      }
      if (!c->close_after) request.Finish();
      if (request.broken()) {
        // nginx closes the connection as soon as it has a HEAD response's
        // head: the rest was never going to be read, and nothing was lost.
        const bool head = std::find(c->env_views.begin(), c->env_views.end(), "REQUEST_METHOD=HEAD") !=
                          c->env_views.end();
        if (!head)
          LogLine("response to " + Describe(c->env_views) +
                  " not delivered: the web server closed the connection or did not take it within io_timeout");
        c->close_after = true;
      }
      loop.GiveBack(c);
    }
  };
  try {
    for (int i = 0; i < options_.workers; ++i) threads.emplace_back(worker);
  } catch (const std::system_error& e) {
    // No thread to be had (RLIMIT_NPROC, a cgroup's pids.max): a start-up
    // error with its reason, after the workers started so far are ended.
    queue.Close();
    for (auto& t : threads) t.join();
    throw std::runtime_error("cannot start worker " + std::to_string(threads.size() + 1) + " of " +
                             std::to_string(options_.workers) + ": " + e.what());
  }
  std::exception_ptr failed;
  try {
    loop.Run();
  } catch (...) {
    failed = std::current_exception();
  }
  queue.Close();
  for (auto& t : threads) t.join();
  if (failed) std::rethrow_exception(failed);
}

}  // namespace sessiond
