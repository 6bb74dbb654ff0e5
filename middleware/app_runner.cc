#include "middleware/app_runner.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <system_error>

#include "middleware/app_params.h"
#include "middleware/fcgi_record.h"

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
// since: no end of file, no stray bytes, no error.
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
  kStale,     // closed or reset by the application before it sent a byte
};

constexpr std::uint16_t kRequestId = 1;

// Sends the request (`head`: BEGIN_REQUEST and PARAMS; then the body as
// STDIN) while reading the response, in one poll loop, so an application that
// answers before it has read the whole body cannot deadlock with us.
End Exchange(int fd, const std::string& head, const SpillBuffer& body, const PageLimits& limits,
             Clock::time_point deadline, RunResult& r) {
  std::string out = head;
  std::size_t out_at = 0, body_at = 0;
  bool stdin_done = false, write_failed = false, got_any = false;
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
    pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    int ms = MillisLeft(deadline);
    int rc = ms > 0 ? ::poll(&p, 1, ms) : 0;
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) throw std::system_error(errno, std::generic_category(), "poll");
    if (rc == 0) {
      r.outcome = RunResult::Outcome::TimedOut;
      return End::kClose;
    }
    if (sending && (p.revents & (POLLOUT | POLLERR))) {
      ssize_t n = ::send(fd, out.data() + out_at, out.size() - out_at, MSG_NOSIGNAL);
      if (n > 0) {
        out_at += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        // The application stopped reading (it answered without the whole
        // body, or it is gone): what it sent says which.
        write_failed = stdin_done = true;
        out.clear();
        out_at = 0;
      }
    }
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = ::recv(fd, received, sizeof received, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      if (!got_any) return End::kStale;
      return malformed(n == 0 ? "closed the connection before FCGI_END_REQUEST"
                              : std::string("connection failed before FCGI_END_REQUEST: ") + std::strerror(errno));
    }
    got_any = true;
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

AppPool::AppPool(const std::string& address, std::size_t max_connections)
    : address_(address), max_(max_connections == 0 ? 1 : max_connections) {
  if (address.compare(0, 5, "unix:") == 0) {
    std::string path = address.substr(5);
    sockaddr_un un{};
    if (path.empty() || path.size() >= sizeof un.sun_path)
      throw std::invalid_argument(address + ": a unix socket path of 1 to " + std::to_string(sizeof un.sun_path - 1) +
                                  " bytes");
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
    std::memcpy(&addr_, &un, sizeof un);
    addr_len_ = sizeof un;
    return;
  }
  std::size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw std::invalid_argument(address + ": not unix:PATH or HOST:PORT");
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535)
    throw std::invalid_argument(address + ": the port must be a number from 1 to 65535");
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res))
    throw std::invalid_argument(address + ": " + gai_strerror(rc));
  std::memcpy(&addr_, res->ai_addr, res->ai_addrlen);
  addr_len_ = res->ai_addrlen;
  ::freeaddrinfo(res);
}

AppPool::~AppPool() {
  for (int fd : idle_) ::close(fd);
}

std::size_t AppPool::open() const {
  std::lock_guard lock(mu_);
  return open_;
}

std::size_t AppPool::idle() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

int AppPool::Acquire(Clock::time_point deadline, bool& reused, int& error, bool fresh) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (fresh && !idle_.empty() && open_ >= max_) {
      // Room for a new one: close the least recently used idle one.
      ::close(idle_.front());
      idle_.erase(idle_.begin());
      --open_;
    }
    while (!fresh && !idle_.empty()) {
      int fd = idle_.back();
      idle_.pop_back();
      if (StillOpen(fd)) {
        reused = true;
        return fd;
      }
      ::close(fd);  // closed (or written to) by the application meanwhile
      --open_;
    }
    if (open_ < max_) break;
    if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= max_) {
      error = ETIMEDOUT;
      return -1;
    }
  }
  ++open_;
  lock.unlock();
  reused = false;
  int fd = Connect(deadline, error);
  if (fd < 0) {
    lock.lock();
    --open_;
    freed_.notify_one();
    return -1;
  }
  ++opened_;
  return fd;
}

void AppPool::Release(int fd, bool reusable) {
  {
    std::lock_guard lock(mu_);
    if (reusable) {
      idle_.push_back(fd);
    } else {
      ::close(fd);
      --open_;
    }
  }
  freed_.notify_one();
}

// A blocking connect() bounded by the deadline (SO_SNDTIMEO bounds it on
// Linux, for a full backlog of a unix socket too), then non-blocking.
int AppPool::Connect(Clock::time_point deadline, int& error) const {
  int fd = ::socket(addr_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = errno;
    return -1;
  }
  int ms = MillisLeft(deadline);
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  if (ms == 0) tv.tv_usec = 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int rc;
  do rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    error = (errno == EINPROGRESS || errno == EAGAIN) ? ETIMEDOUT : errno;
    ::close(fd);
    return -1;
  }
  timeval none{};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (addr_.ss_family != AF_UNIX) {
    int one = 1;  // records are small and each one waits for the other side
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

AppRunner::AppRunner(std::string name, const std::string& address, std::size_t max_connections,
                     const PageLimits& limits)
    : name_(std::move(name)), pool_(address, max_connections), limits_(limits) {}

RunResult AppRunner::Run(const RunInput& input) const {
  const Clock::time_point deadline = Clock::now() + limits_.timeout;
  std::string head;
  fcgi::AppendBeginRequest(head, kRequestId, fcgi::kResponder, true);
  AppendAppParams(head, kRequestId, input.env, input.session);

  for (int attempt = 0;; ++attempt) {
    RunResult r;
    r.output = SpillBuffer(limits_.output_memory, limits_.temp_dir);
    bool reused = false;
    int error = 0;
    int fd = pool_.Acquire(deadline, reused, error, attempt > 0);
    if (fd < 0) {
      r.exit_code = error;
      if (error == ETIMEDOUT) {
        r.outcome = RunResult::Outcome::TimedOut;
        r.detail = "no connection to " + pool_.address() + " within page_timeout";
      } else {
        r.outcome = RunResult::Outcome::SpawnFailed;
        r.detail = "is unreachable: connect to " + pool_.address() + ": " + std::strerror(error);
      }
      return r;
    }
    End end;
    try {
      end = Exchange(fd, head, *input.body, limits_, deadline, r);
    } catch (...) {
      pool_.Release(fd, false);
      throw;
    }
    pool_.Release(fd, end == End::kReusable);
    // It had closed that one (or found it unusable): once more, on a new one.
    if (end == End::kStale && reused && attempt == 0) continue;
    if (end == End::kStale) {
      r.outcome = RunResult::Outcome::Malformed;
      r.detail = "closed the connection without answering";
    }
    return r;
  }
}

}  // namespace sessiond
