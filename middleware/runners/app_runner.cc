#include "middleware/runners/app_runner.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <system_error>

#include "log/log.h"
#include "middleware/base/address.h"
#include "middleware/fastcgi/fcgi_record.h"
#include "middleware/runners/app_params.h"

namespace sessiond {
namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline`, rounded up (a poll() that wakes a
// little early polls again); 0 once it has passed.
int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max() : static_cast<int>(left);
}

// An idle connection is usable when the application has sent nothing on it
// since: no end of file, no stray bytes, no error. Checked just before the
// first byte of a request is written: the only moment when a closed
// connection proves the application never saw the request.
bool StillOpen(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

const char* ProtocolStatusName(std::uint8_t status) {
  switch (status) {
    case fcgi::kCantMpxConn: return "FCGI_CANT_MPX_CONN";
    case fcgi::kOverloaded: return "FCGI_OVERLOADED";
    case fcgi::kUnknownRole: return "FCGI_UNKNOWN_ROLE";
    default: return "unknown";
  }
}

// How one exchange on a connection ended.
enum class End {
  kReusable,  // answered whole, the connection is clean
  kClose,     // answered (or failed) and the connection must be closed
};

constexpr std::uint16_t kRequestId = 1;

// Sends the request (`head`: BEGIN_REQUEST and PARAMS; then the body as
// STDIN) while reading the response, in one poll loop, so an application that
// answers before it has read the whole body cannot deadlock with us.
End Exchange(int fd, const std::string& head, const SpillBuffer& body, const PageLimits& limits,
             Clock::time_point deadline, RunResult& r) {
  std::string out = head;
  std::size_t out_at = 0, body_at = 0;
  bool stdin_done = false, write_failed = false;
  // A body held in memory goes with the head, in one write: an application
  // that does not read its stdin (libfcgi leaves it unread) then has the
  // whole request in its first read, and no end-of-stdin record lingers on a
  // kept connection to be mistaken for the next request's beginning.
  if (!body.spilled()) {
    if (!body.empty()) fcgi::AppendRecords(out, fcgi::kStdin, kRequestId, body.head());
    fcgi::AppendRecords(out, fcgi::kStdin, kRequestId, {});
    stdin_done = true;
  }
  std::string in;
  std::size_t in_at = 0;
  // Written without asking poll() first while the socket takes it: a fresh
  // connection has room for a whole small request.
  bool may_send = true;
  static thread_local char chunk[fcgi::kMaxContent];
  static thread_local char received[65536];
  auto malformed = [&r](std::string why) {
    r.outcome = RunResult::Outcome::Malformed;
    r.detail = std::move(why);
    return End::kClose;
  };
  for (;;) {
    if (out_at == out.size() && !stdin_done) {
      out.clear();
      out_at = 0;
      std::size_t n = body.ReadAt(body_at, chunk, sizeof chunk);
      body_at += n;
      fcgi::AppendRecords(out, fcgi::kStdin, kRequestId, std::string_view(chunk, n));
      if (n == 0) stdin_done = true;  // that was the empty record: the end of the body
    }
    const bool sending = out_at < out.size();
    if (sending && may_send) {
      ssize_t n = ::send(fd, out.data() + out_at, out.size() - out_at, MSG_NOSIGNAL);
      if (n > 0) {
        out_at += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        may_send = false;  // full: poll() says when there is room again
      } else if (n < 0 && errno != EINTR) {
        // The application stopped reading (it answered without the whole
        // body, or it is gone): what it sent says which.
        write_failed = stdin_done = true;
        out.clear();
        out_at = 0;
      }
      continue;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    int ms = MillisLeft(deadline);
    int rc = ms > 0 ? ::poll(&p, 1, ms) : 0;
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) throw std::system_error(errno, std::generic_category(), "poll");
    if (rc == 0) {
      r.outcome = RunResult::Outcome::TimedOut;
      return End::kClose;
    }
    if (sending && (p.revents & (POLLOUT | POLLERR))) may_send = true;  // sent at the top of the loop
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = ::recv(fd, received, sizeof received, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    // Closed or reset after the request was (partly) sent: it may have run,
    // so it is never sent again.
    if (n <= 0)
      return malformed(n == 0 ? "closed the connection before FCGI_END_REQUEST"
                              : std::string("connection failed before FCGI_END_REQUEST: ") + std::strerror(errno));
    in.append(received, static_cast<std::size_t>(n));
    for (;;) {
      fcgi::AppRecord record;
      std::size_t used = 0;
      std::string why;
      fcgi::Parse parsed = fcgi::ParseAppRecord(std::string_view(in).substr(in_at), kRequestId, record, used, why);
      if (parsed == fcgi::Parse::kBad) return malformed("sent a malformed response: " + why);
      if (parsed == fcgi::Parse::kNeedMore) break;
      in_at += used;
      switch (record.kind) {
        case fcgi::AppRecord::Kind::kStdout:
          if (record.content.size() > limits.max_output - r.output.size()) {
            r.outcome = RunResult::Outcome::OutputTooLarge;
            return End::kClose;
          }
          r.output.Append(record.content);
          break;
        case fcgi::AppRecord::Kind::kStderr:
          if (r.errors.size() < limits.max_stderr)
            r.errors.append(record.content.substr(0, limits.max_stderr - r.errors.size()));
          break;
        case fcgi::AppRecord::Kind::kEnd:
          if (record.protocol_status != fcgi::kRequestComplete)
            return malformed("refused the request: FCGI_END_REQUEST with protocol status " +
                             std::to_string(record.protocol_status) + " (" +
                             ProtocolStatusName(record.protocol_status) + ")");
          r.outcome = RunResult::Outcome::Exited;
          r.exit_code = static_cast<int>(record.app_status);
          // Reusable only when both sides are at a record boundary: the whole
          // request sent, nothing after the end.
          return stdin_done && !write_failed && out_at == out.size() && in_at == in.size() ? End::kReusable
                                                                                             : End::kClose;
      }
    }
    if (in_at > 0) {
      in.erase(0, in_at);
      in_at = 0;
    }
  }
}

}  // namespace

AppPool::AppPool(std::string name, const std::string& address, const AppOptions& options)
    : name_(std::move(name)), address_(address), options_(options) {
  std::string why;
  std::optional<Address> parsed = ParseAddress(address, why);
  if (!parsed) throw std::invalid_argument(address + ": " + why);
  if (parsed->is_unix) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, parsed->path.c_str(), parsed->path.size() + 1);
    std::memcpy(&unix_, &un, sizeof un);
    is_unix_ = true;
  }
  host_ = parsed->host;
  port_ = parsed->port;
}

AppPool::~AppPool() {
  for (const Idle& i : idle_) ::close(i.fd);
}

std::size_t AppPool::open() const {
  std::lock_guard lock(mu_);
  return open_;
}

std::size_t AppPool::idle() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

AppPool::Connection AppPool::Acquire(Clock::time_point deadline) {
  Connection c;
  if (!keeps()) {  // one connection per request, as many as there are requests
    c.fd = Connect(deadline, c);
    return c;
  }
  const Clock::time_point busy_until = std::min(deadline, Clock::now() + options_.wait);
  std::unique_lock lock(mu_);
  for (;;) {
    const Clock::time_point now = Clock::now();
    // Idle too long: php-fpm holds a worker for it, and a firewall or NAT on
    // the way may have forgotten it without a word.
    while (!idle_.empty() && now - idle_.front().since > options_.idle_limit) {
      ::close(idle_.front().fd);
      idle_.erase(idle_.begin());
      --open_;
    }
    while (!idle_.empty()) {
      int fd = idle_.back().fd;
      idle_.pop_back();
      if (StillOpen(fd)) {
        c.reused = true;
        c.fd = fd;
        return c;
      }
      ::close(fd);  // closed (or written to) by the application meanwhile: it never saw this request
      --open_;
    }
    if (open_ < options_.connections) break;
    if (freed_.wait_until(lock, busy_until) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.connections) {
      if (busy_until < deadline) {
        c.failure = Connection::Failure::kBusy;
        c.why = "all " + std::to_string(options_.connections) + " connections busy for " +
                std::to_string(options_.wait.count()) + "ms (connections=" + std::to_string(options_.connections) +
                ")";
      } else {
        c.failure = Connection::Failure::kTimedOut;
        c.why = "no connection to " + address_ + " within page_timeout";
      }
      return c;
    }
  }
  ++open_;
  lock.unlock();
  c.fd = Connect(deadline, c);
  if (c.fd < 0) {
    lock.lock();
    --open_;
    freed_.notify_one();
  }
  return c;
}

void AppPool::Release(int fd, bool reusable) {
  if (!keeps()) {
    ::close(fd);
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (reusable) {
      idle_.push_back({fd, Clock::now()});
    } else {
      ::close(fd);
      --open_;
    }
  }
  freed_.notify_one();
}

bool AppPool::Addresses(std::vector<sockaddr_storage>& out, std::vector<socklen_t>& lens, std::string& why) {
  if (is_unix_) {
    out = {unix_};
    lens = {static_cast<socklen_t>(sizeof(sockaddr_un))};
    return true;
  }
  std::lock_guard lock(resolve_mu_);  // one lookup at a time: the others take its answer
  if (!resolved_.empty() && Clock::now() - resolved_at_ < options_.resolve_cache) {
    out = resolved_;
    lens = resolved_len_;
    return true;
  }
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (int rc = ::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res)) {
    why = "cannot resolve " + host_ + ": " + gai_strerror(rc);
    resolved_.clear();
    return false;
  }
  resolved_.clear();
  resolved_len_.clear();
  for (addrinfo* a = res; a; a = a->ai_next) {
    sockaddr_storage ss{};
    std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
    resolved_.push_back(ss);
    resolved_len_.push_back(a->ai_addrlen);
  }
  ::freeaddrinfo(res);
  resolved_at_ = Clock::now();
  out = resolved_;
  lens = resolved_len_;
  return true;
}

void AppPool::Reachable(bool up, const std::string& why) {
  if (up && !down_) return;  // the common case, without the lock
  std::lock_guard lock(state_mu_);
  if (up == !down_) return;
  down_ = !up;
  if (up) LogLine("app " + name_ + " at " + address_ + " answers again");
  else LogLine("app " + name_ + " is unreachable: " + why + " (answering 502 until it is back; logged once)");
}

// A connect() bounded by the deadline, and for TCP also by connect_timeout
// (a vanished host costs one bounded wait), then non-blocking. A unix socket
// whose backlog is full waits up to the deadline (SO_SNDTIMEO bounds a
// blocking connect there on Linux): its pool is busy, not gone. A unix
// connect is tried non-blocking first: one that has room in the backlog (the
// common case) then costs no setsockopt() or fcntl().
int AppPool::Connect(Clock::time_point deadline, Connection& c) {
  std::vector<sockaddr_storage> addrs;
  std::vector<socklen_t> lens;
  std::string why;
  auto unreachable = [&](const std::string& reason) {
    c.failure = Connection::Failure::kUnreachable;
    c.why = "is unreachable: " + reason;
    Reachable(false, reason);
    c.logged = true;  // now, or when the outage began
    return -1;
  };
  if (!Addresses(addrs, lens, why)) return unreachable(why);
  for (std::size_t i = 0; i < addrs.size(); ++i) {
    int fd = ::socket(addrs[i].ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      why = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int rc, error = 0;
    bool deadline_passed = false;
    if (is_unix_) {
      do rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addrs[i]), lens[i]);
      while (rc < 0 && errno == EINTR);
      if (rc < 0) error = errno;
    }
    if (is_unix_ && error == EAGAIN) {  // the backlog is full: wait for room, blocking, up to the deadline
      error = 0;
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      int ms = MillisLeft(deadline);
      timeval tv{ms / 1000, (ms % 1000) * 1000};
      if (ms == 0) tv.tv_usec = 1000;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      do rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addrs[i]), lens[i]);
      while (rc < 0 && errno == EINTR);
      if (rc < 0) {
        error = errno;
        deadline_passed = error == EINPROGRESS || error == EAGAIN;
      }
      timeval none{};
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    } else if (!is_unix_) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // records are small, each waits for the other side
      // A peer that vanishes (a host down, a cable cut) fails the connection
      // in about kKeepIdle + kKeepCount * kKeepInterval when idle, and in
      // kUserTimeout when data stays unacknowledged.
      int idle = 10, interval = 5, count = 3;
      unsigned user_timeout = 25000;
      ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
      ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
      rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addrs[i]), lens[i]);
      if (rc < 0 && errno != EINPROGRESS) {
        error = errno;
      } else if (rc < 0) {
        const Clock::time_point until = std::min(deadline, Clock::now() + options_.connect_timeout);
        pollfd p{fd, POLLOUT, 0};
        int ready;
        do ready = ::poll(&p, 1, MillisLeft(until));
        while (ready < 0 && errno == EINTR);
        if (ready <= 0) {
          error = ETIMEDOUT;
          deadline_passed = until == deadline;
        } else {
          socklen_t len = sizeof error;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
        }
      }
    }
    if (error == 0) {
      ++opened_;
      Reachable(true, {});
      return fd;
    }
    ::close(fd);
    if (deadline_passed) {
      c.failure = Connection::Failure::kTimedOut;
      c.why = "no connection to " + address_ + " within page_timeout";
      return -1;
    }
    why = "connect to " + address_ + ": " + std::strerror(error);
  }
  return unreachable(why);
}

AppRunner::AppRunner(std::string name, const std::string& address, const AppOptions& options,
                     const PageLimits& limits)
    : name_(name), pool_(std::move(name), address, options), limits_(limits) {}

RunResult AppRunner::Run(const RunInput& input) const {
  const Clock::time_point deadline = Clock::now() + limits_.timeout;
  std::string head;
  head.reserve(4096);
  fcgi::AppendBeginRequest(head, kRequestId, fcgi::kResponder, pool_.keeps());
  // The loop token marks the request as forwarded by this process.
  AppendAppParams(head, kRequestId, input.env, input.session, {std::string(kLoopParam) + '=' + LoopToken()},
                  input.session_off);

  // One attempt: a kept connection found closed before anything was written
  // was replaced inside Acquire; past that, nothing is sent twice.
  RunResult r;
  r.output = SpillBuffer(limits_.output_memory, limits_.temp_dir);
  AppPool::Connection c = pool_.Acquire(deadline);
  using F = AppPool::Connection::Failure;
  if (c.fd < 0) {
    r.detail = c.why;
    r.outcome = c.failure == F::kTimedOut ? RunResult::Outcome::TimedOut
                : c.failure == F::kBusy   ? RunResult::Outcome::Busy
                                          : RunResult::Outcome::SpawnFailed;
    r.logged = c.logged;
    return r;
  }
  End end;
  try {
    end = Exchange(c.fd, head, *input.body, limits_, deadline, r);
  } catch (...) {
    pool_.Release(c.fd, false);
    throw;
  }
  pool_.Release(c.fd, end == End::kReusable && pool_.keeps());
  return r;
}

}  // namespace sessiond
