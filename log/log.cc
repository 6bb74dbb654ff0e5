#include "log/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

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

std::string EscapeForLog(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  return out;
}

void LogLine(std::string_view message) {
  std::string line = "sessiond: " + EscapeForLog(message) + '\n';
  (void)!::write(2, line.data(), line.size());
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
