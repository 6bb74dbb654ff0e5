#include "middleware/server/event_loop.h"

#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "log/log.h"
#include "middleware/base/http.h"
#include "middleware/base/metrics.h"
#include "middleware/fastcgi/fcgi_record.h"

namespace sessiond {
namespace {
std::atomic<EpollCtl> epoll_ctl_fn{nullptr};
}  // namespace

void SetEpollCtl(EpollCtl fn) { epoll_ctl_fn = fn; }

EventLoop::EventLoop(const ServerOptions& options, Listener& l, WorkQueue& q, int wake, const std::atomic<bool>& stop_flag,
                     const std::function<void()>& task)
    : opts(options), listener(l), queue(q), wake_fd(wake), stop(stop_flag), housekeeping(task) {
  epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) ThrowSystemError("epoll_create1");
  if (!Watch(wake_fd, EPOLL_CTL_ADD)) ThrowSystemError("epoll_ctl");
  SetListening(true);
}

EventLoop::~EventLoop() { ::close(epoll_fd); }


bool EventLoop::Watch(int fd, int op, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  EpollCtl ctl = epoll_ctl_fn.load();
  if ((ctl ? ctl : ::epoll_ctl)(epoll_fd, op, fd, &ev) == 0) {
    watch_failing = false;
    return true;
  }
  // One line per spell of failures, not one per connection of a flood.
  if (!watch_failing)
    LogLine(std::string("epoll_ctl failed: ") + std::strerror(errno) +
            (errno == ENOSPC ? " (past fs.epoll.max_user_watches)" : "") +
            ": such connections are closed until it works again");
  watch_failing = true;
  return false;
}

// A descriptor about to be closed or handed to a worker: a failure is
// harmless (closing removes it from epoll anyway) and not logged.
void EventLoop::Unwatch(int fd) {
  epoll_event ev{};
  EpollCtl ctl = epoll_ctl_fn.load();
  (ctl ? ctl : ::epoll_ctl)(epoll_fd, EPOLL_CTL_DEL, fd, &ev);
}

// A connection's descriptor is watched only while the loop waits for its
// request: not while a worker has it, nor after accept while the request
// that came with the connection is read at once (Accept). False: the kernel
// refused to watch it (logged), and the caller closes it.
bool EventLoop::StartWatching(Connection& c) {
  if (c.watched) return true;
  if (!Watch(c.fd, EPOLL_CTL_ADD)) return false;
  c.watched = true;
  return true;
}

void EventLoop::StopWatching(Connection& c) {
  if (!c.watched) return;
  Unwatch(c.fd);
  c.watched = false;
}

// Listening on again that the kernel refuses is tried again at the next sweep.
void EventLoop::SetListening(bool on) {
  if (on == listening || listener.fd() < 0) return;
  if (on && !Watch(listener.fd(), EPOLL_CTL_ADD)) return;
  if (!on) Unwatch(listener.fd());
  listening = on;
}

// Called by a worker when it is done with `c`.
// Only the first connection given back since the loop last took them wakes
// it: the loop takes all that wait at once, so a busy server pays one wake
// for several.
void EventLoop::GiveBack(Connection* c) {
  bool first;
  {
    std::lock_guard lock(returned_mutex);
    first = returned.empty();
    returned.push_back(c);
  }
  if (!first) return;
  std::uint64_t one = 1;
  (void)!::write(wake_fd, &one, sizeof one);
}

void EventLoop::Run() {
  auto last_sweep = Clock::now();
  epoll_event events[64];
  for (;;) {
    if (stop && !draining) StartDrain();
    if (draining && conns.empty()) {
      LogDrained();
      return;
    }
    int n = ::epoll_wait(epoll_fd, events, 64, 250);
    if (n < 0 && errno != EINTR) ThrowSystemError("epoll_wait");
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd) {
        std::uint64_t count;
        (void)!::read(fd, &count, sizeof count);
        TakeReturned();
      } else if (fd == listener.fd()) {
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

void EventLoop::Accept(bool everything) {
  for (;;) {
    // At the limit: the connection that makes room, closed only once a
    // new one was accepted (the backlog may be empty by now).
    Connection* room = nullptr;
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
    int fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
    Connection& c = *conns.emplace(fd, std::make_unique<Connection>(fd, Clock::now(), opts.io_timeout)).first->second;
    // A web server writes its request as soon as it has connected: it is
    // most often here already, and read now it costs no wait in epoll (nor
    // watching a descriptor that goes to a worker at once). Watched only
    // when it is not (all of it) here yet; one the kernel will not watch is
    // closed: the client sees its connection end.
    Receive(c);
    if (auto it = conns.find(fd); it != conns.end() && !it->second->busy && !StartWatching(*it->second))
      conns.erase(it);
  }
}

// At the connection limit, an idle connection makes room for a new one, as
// nginx reuses idle keep-alive connections: the one idle the longest, among
// those between two requests and those that have sent nothing at all for a
// quarter of a second (not even into the kernel's buffer, which a peek
// tells: a client may connect a moment before it writes). Null when there
// is none.
Connection* EventLoop::OldestIdle() {
  const auto fresh = Clock::now() - std::chrono::milliseconds(250);
  std::vector<Connection*> idle;
  for (auto& [fd, c] : conns)
    if (!c->busy && c->id == 0 && c->in.empty()) idle.push_back(c.get());
  std::sort(idle.begin(), idle.end(), [](Connection* a, Connection* b) { return a->idle_since < b->idle_since; });
  int peeks = 0;
  for (Connection* c : idle) {
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
Connection* EventLoop::SlowestArriving() {
  const auto now = Clock::now();
  Connection* slowest = nullptr;
  for (auto& [fd, c] : conns)
    if (!c->busy && (c->id != 0 || !c->in.empty()) && now - c->arriving_since >= std::chrono::milliseconds(250) &&
        (!slowest || c->arriving_since < slowest->arriving_since))
      slowest = c.get();
  return slowest;
}

// Closes SlowestArriving()'s connection: a 503 for its request, and a log line.
void EventLoop::CloseSlowest(Connection& c) {
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

void EventLoop::Close(Connection& c) {
  StopWatching(c);
  conns.erase(c.fd);  // closes the descriptor
  burst = true;       // its buffers are freed: memory to give back
}

// Answers the request at once with `status` (never a worker's time), logs
// why, and closes the connection: the rest of the request may still be on
// its way, and closing is the only clean end for it.
void EventLoop::Reject(Connection& c, int status, const std::string& why) {
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
bool EventLoop::Reply(Connection& c, std::string_view out) {
  if (SendAll(c.fd, out, Clock::now())) return true;
  Close(c);
  return false;
}

void EventLoop::ProtocolError(Connection& c, const std::string& why) {
  LogLine("FastCGI protocol error, connection closed: " + why);
  Close(c);
}

void EventLoop::Receive(Connection& c) {
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
bool EventLoop::Parse(Connection& c) {
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

bool EventLoop::OnRecord(Connection& c, const fcgi::Record& r) {
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

bool EventLoop::OnParams(Connection& c, std::string_view content) {
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

bool EventLoop::OnStdin(Connection& c, std::string_view content) {
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
bool EventLoop::Dispatch(Connection& c) {
  StopWatching(c);
  c.busy = true;  // from here on a worker may have it
  c.queued_at = Clock::now();
  if (!queue.Push(&c, opts.queue_size)) {
    c.busy = false;
    Reject(c, 503, "all workers busy and " + std::to_string(opts.queue_size) +
                       " requests waiting (queue_size)");
    return false;
  }
  ++in_flight;
  burst = true;
  return true;
}

void EventLoop::TakeReturned() {
  std::vector<Connection*> done;
  {
    std::lock_guard lock(returned_mutex);
    done.swap(returned);
  }
  for (Connection* c : done) {
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
    if (!StartWatching(*c)) {
      conns.erase(c->fd);  // the answer went out; the next request gets a new connection
      continue;
    }
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
void EventLoop::Sweep() {
  auto now = Clock::now();
  for (Connection* c : queue.TakeQueuedBefore(now - opts.queue_timeout)) {
    --in_flight;
    c->busy = false;
    auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - c->queued_at).count();
    Reject(*c, 503, "waited " + std::to_string(waited) + " ms for a worker, more than queue_timeout");
  }
  std::vector<Connection*> late;
  for (auto& [fd, c] : conns)
    if (!c->busy && now >= c->deadline) late.push_back(c.get());
  for (Connection* c : late) {
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
  if (housekeeping) housekeeping();
}
}  // namespace sessiond
