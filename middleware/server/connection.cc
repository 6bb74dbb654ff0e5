#include "middleware/server/connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "middleware/fastcgi/fcgi_record.h"

namespace sessiond {

Connection::~Connection() { ::close(fd); }

void Connection::ResetRequest() {
  id = 0;
  keep = params_done = close_after = false;
  params.clear();
  params.shrink_to_fit();
  env.clear();
  env_views.clear();
  body.reset();
  declared_length.reset();
}

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

FcgiRequest::FcgiRequest(Connection& c, std::chrono::milliseconds io_timeout) : c_(c), io_timeout_(io_timeout) {
  static const SpillBuffer kEmpty;
  body_ = c.body ? &*c.body : &kEmpty;
}

void FcgiRequest::Write(std::string_view bytes) {
  wrote_ = true;
  pending_.append(bytes);
  if (pending_.size() >= 32 * 1024) Flush();
}

// The rest of the output and the end records go in one write: a small
// response (most are) costs the web server one read, and both of us one
// system call, instead of two.
void FcgiRequest::Finish() {
  std::string framed;
  framed.reserve(pending_.size() + 40);
  if (!pending_.empty()) fcgi::AppendRecords(framed, fcgi::kStdout, c_.id, pending_);
  pending_.clear();
  fcgi::AppendRecords(framed, fcgi::kStdout, c_.id, {});
  fcgi::AppendEndRequest(framed, c_.id, 0, fcgi::kRequestComplete);
  Send(framed);
}

void FcgiRequest::Flush() {
  if (pending_.empty()) return;
  std::string framed;
  framed.reserve(pending_.size() + 16);
  fcgi::AppendRecords(framed, fcgi::kStdout, c_.id, pending_);
  pending_.clear();
  Send(framed);
}

// The web server gets io_timeout for the whole response, not per piece: a
// peer that reads a trickle cannot hold a worker for long.
void FcgiRequest::Send(std::string_view bytes) {
  if (!deadline_) deadline_ = Clock::now() + io_timeout_;
  if (!broken_ && !SendAll(c_.fd, bytes, *deadline_)) broken_ = true;
}

}  // namespace sessiond
