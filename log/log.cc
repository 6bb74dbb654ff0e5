#include "log/log.h"

#include "log/redact.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace sessiond {
namespace {

std::mutex reopen_mutex;  // serialises LogToFile and ReopenLog
std::string log_path;     // guarded by reopen_mutex; empty: stderr as inherited

// Puts the file at `path` behind fd 2. dup2 swaps it atomically: a line being
// written at that moment lands in the old file or the new one, and no thread
// ever writes to a descriptor number that was closed and reused meanwhile.
bool OpenAsStderr(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return false;
  int rc = ::dup2(fd, 2);
  int saved = errno;
  ::close(fd);
  errno = saved;
  return rc == 2;
}

}  // namespace

namespace {

// The length of the UTF-8 sequence at the start of `s` and the code point it
// encodes, or 0 when it is not well-formed UTF-8 (stray continuation byte,
// truncated, overlong, a surrogate, past U+10FFFF).
std::size_t DecodeUtf8(std::string_view s, char32_t& cp) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char lead = b(0);
  std::size_t n;
  char32_t min;
  if (lead < 0x80) {
    cp = lead;
    return 1;
  } else if ((lead & 0xe0) == 0xc0) {
    n = 2, min = 0x80, cp = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    n = 3, min = 0x800, cp = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    n = 4, min = 0x10000, cp = lead & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Code points past ASCII that change how a line is shown rather than what it
// says: C1 controls, line and paragraph separators, the bidirectional marks,
// embeddings, overrides and isolates, and the byte order mark.
bool IsInvisibleControl(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

}  // namespace

std::string EscapeForLog(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    char32_t cp;
    std::size_t n = DecodeUtf8(text, cp);
    if (n == 0 || cp < 0x20 || cp == 0x7f) {
      auto c = static_cast<unsigned char>(text[0]);
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
      }
      text.remove_prefix(1);
      continue;
    }
    if (IsInvisibleControl(cp)) {
      out += "\\u{";
      for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 15];
      out += '}';
    } else if (cp == '\\') {
      out += "\\\\";
    } else {
      out.append(text.substr(0, n));
    }
    text.remove_prefix(n);
  }
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;
// How long a caller waits behind a write(2) that does not return (stderr a
// pipe nobody reads: a stuck journal, a paused supervisor) before it goes on
// without its line; from then on callers do not wait until the write returns.
constexpr auto kStall = std::chrono::milliseconds(100);
// What may wait meanwhile; lines past it are dropped, and counted in a line
// of their own once the log is read again.
constexpr std::size_t kMaxPending = 1 << 20;

void WriteAll(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(2, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr closed or broken: nothing better to do
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// One thread does the writing, so a write that blocks holds up that thread
// only, never the event loop, a worker or the signal thread.
struct Writer {
  std::mutex m;
  std::condition_variable work, done;
  std::string pending;                     // lines not yet handed to write(2)
  std::uint64_t queued = 0, written = 0;   // lines, numbered as queued
  std::uint64_t dropped = 0;               // since the last notice
  bool writing = false;
  Clock::time_point since;                 // when the write under way began
  pid_t pid = 0;                           // the process the thread runs in

  void Run() {
    std::unique_lock lock(m);
    for (;;) {
      work.wait(lock, [&] { return !pending.empty() || dropped != 0; });
      std::string batch;
      batch.swap(pending);
      if (dropped) {
        batch += "sessiond: " + std::to_string(dropped) + " log lines dropped: the log was not read\n";
        dropped = 0;
      }
      std::uint64_t upto = queued;
      writing = true;
      since = Clock::now();
      lock.unlock();
      WriteAll(batch);
      lock.lock();
      writing = false;
      written = upto;
      done.notify_all();
    }
  }
};

// The writer, started at the first line; never destroyed (its thread may be
// blocked in write(2) when the process exits). Null when no thread could be
// had: lines are then written directly.
Writer* TheWriter() {
  static Writer* const writer = []() -> Writer* {
    auto* w = new Writer;
    w->pid = ::getpid();
    // Created with every signal blocked (a thread inherits the mask): a
    // signal is sessiond's signal thread's to take, and a broken stderr is
    // EPIPE here, not SIGPIPE.
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      std::thread([w] { w->Run(); }).detach();
    } catch (const std::system_error&) {
      delete w;
      w = nullptr;
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return w;
  }();
  return writer;
}

}  // namespace

void LogLine(std::string_view message) {
  std::string line = "sessiond: " + EscapeForLog(Redact(message)) + '\n';
  Writer* w = TheWriter();
  if (!w || w->pid != ::getpid()) {  // no writer thread, or a forked child
    WriteAll(line);
    return;
  }
  std::unique_lock lock(w->m);
  if (w->pending.size() + line.size() > kMaxPending) {
    ++w->dropped;
    return;
  }
  w->pending += line;
  const std::uint64_t mine = ++w->queued;
  w->work.notify_one();
  // Back once the line is written, as with a write(2) of its own (a test or
  // an operator reading the log after a response finds its line there),
  // unless the writer is stuck: the line is then written when it can be.
  while (w->written < mine) {
    if (w->writing && Clock::now() - w->since > kStall) return;
    w->done.wait_for(lock, kStall);
  }
}

void LogToFile(const std::string& path) {
  std::lock_guard lock(reopen_mutex);
  if (!OpenAsStderr(path))
    throw std::runtime_error("cannot open log file " + path + ": " + std::strerror(errno));
  log_path = path;
}

bool ReopenLog() {
  std::lock_guard lock(reopen_mutex);
  return log_path.empty() || OpenAsStderr(log_path);
}

}  // namespace sessiond
