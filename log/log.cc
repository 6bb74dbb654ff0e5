#include "log/log.h"

#include "log/redact.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace sessiond {
namespace {

std::mutex reopen_mutex;  // serialises LogToFile and ReopenLog
std::string log_path;     // guarded by reopen_mutex; empty: stderr as inherited
// Set once the log goes to a file of its own: its lines carry the time, which
// on stderr the journal (or whatever reads it) adds.
std::atomic<bool> to_file{false};

// "2026-12-07T20:35:54.123Z " (UTC, milliseconds) when the log is a file;
// nothing on stderr.
std::string Stamp() {
  if (!to_file.load(std::memory_order_relaxed)) return {};
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t seconds = system_clock::to_time_t(now);
  const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc;
  ::gmtime_r(&seconds, &utc);
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ ", static_cast<int>(millis));
  return buf;
}

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

// What became of lines handed to WriteLines: how many bytes of them, whole
// lines only, are in the log, and the errno of the write that failed (0:
// all of them are).
struct Written {
  std::size_t bytes = 0;
  int error = 0;
};

// A write cut short inside a line (a full disk, a file size limit) leaves
// part of it in the log file; `torn` bytes of it end at the file's end.
// Takes them back, so the log holds whole lines only. Not when the file
// grew since (another process appends to it too): its bytes stay.
void TakeBack(int fd, std::size_t torn) {
  struct stat st;
  off_t end = ::lseek(fd, 0, SEEK_CUR);  // O_APPEND: just past our bytes
  if (end < static_cast<off_t>(torn) || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != end) return;
  while (::ftruncate(fd, end - static_cast<off_t>(torn)) != 0 && errno == EINTR) {
  }
}

// Writes `text`, whole lines, to `fd`, each line whole or not at all: a
// write that fails after part of a line was written takes that part back.
// A descriptor someone made non-blocking (a shared pipe) is waited for.
Written WriteLines(int fd, std::string_view text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    Written w;
    w.error = n < 0 ? errno : EIO;
    w.bytes = done == 0 ? 0 : text.rfind('\n', done - 1) + 1;  // npos + 1 == 0
    if (w.bytes < done) TakeBack(fd, done - w.bytes);
    return w;
  }
  return {done, 0};
}

// One thread does the writing, so a write that blocks holds up that thread
// only, never the event loop, a worker or the signal thread.
struct Writer {
  std::mutex m;
  std::condition_variable work, done;
  std::string pending;                     // lines not yet handed to write(2)
  std::uint64_t queued = 0, written = 0;   // lines, numbered as queued
  std::uint64_t dropped = 0;               // since the last notice: pending was full
  std::uint64_t lost = 0;                  // since the last notice: a write failed
  std::string lost_why;                    // how the last one failed
  bool failing = false;                    // the last write failed
  Clock::time_point retry;                 // when to try the notice again on its own
  bool writing = false;
  Clock::time_point since;                 // when the write under way began
  pid_t pid = 0;                           // the process the thread runs in

  static std::string Notice(std::uint64_t n, const std::string& why) {
    return Stamp() + "sessiond: " + std::to_string(n) + " log lines dropped: " + why + "\n";
  }

  void Run() {
    std::unique_lock lock(m);
    for (;;) {
      // Lines to write, or a notice to give. After a failed write the notice
      // waits for the next line, or is tried on its own now and then.
      for (;;) {
        const bool notices = dropped != 0 || lost != 0;
        if (!pending.empty() || (notices && (!failing || Clock::now() >= retry))) break;
        if (notices) work.wait_until(lock, retry);
        else work.wait(lock);
      }
      // In the order things happened: lines lost to a failed write came
      // before those waiting now; lines dropped for a full queue after them.
      std::string batch;
      const std::uint64_t noticed = lost;
      if (lost) batch = Notice(lost, lost_why);
      const std::size_t notice = batch.size();
      batch += pending;
      pending.clear();
      const std::size_t queue_notice = batch.size();
      const std::uint64_t full = dropped;
      if (dropped) {
        batch += Notice(dropped, "the log was not read");
        dropped = 0;
      }
      std::uint64_t upto = queued;
      writing = true;
      since = Clock::now();
      lock.unlock();
      // A copy of fd 2 for the whole batch, so a failed write is taken back
      // from the file it went to, even when SIGHUP put another behind fd 2.
      int fd = ::fcntl(2, F_DUPFD_CLOEXEC, 3);
      Written w = fd < 0 ? Written{0, errno} : WriteLines(fd, batch);
      if (fd >= 0) ::close(fd);
      lock.lock();
      writing = false;
      written = upto;
      if (w.bytes >= notice) lost -= noticed;  // the notice is out
      if (w.error) {
        std::string_view unwritten = std::string_view(batch).substr(std::max(w.bytes, notice));
        lost += static_cast<std::uint64_t>(std::count(unwritten.begin(), unwritten.end(), '\n'));
        if (full && w.bytes <= queue_notice) {  // that notice was no line of the log's: said again later
          dropped += full;
          --lost;
        }
        lost_why = std::string("the log could not be written (") + std::strerror(w.error) + ")";
        retry = Clock::now() + std::chrono::seconds(1);
      }
      failing = w.error != 0;
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
  std::string line = Stamp() + "sessiond: " + EscapeForLog(Redact(message)) + '\n';
  Writer* w = TheWriter();
  if (!w || w->pid != ::getpid()) {  // no writer thread, or a forked child
    WriteLines(2, line);
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
  to_file = true;
}

bool ReopenLog() {
  std::lock_guard lock(reopen_mutex);
  return log_path.empty() || OpenAsStderr(log_path);
}

}  // namespace sessiond
