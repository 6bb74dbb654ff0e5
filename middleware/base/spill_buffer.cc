#include "middleware/base/spill_buffer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

namespace sessiond {
namespace {

[[noreturn]] void Throw(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

void WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t w = ::write(fd, bytes.data(), bytes.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      Throw("temporary file");
    }
    bytes.remove_prefix(static_cast<std::size_t>(w));
  }
}

}  // namespace

SpillBuffer::SpillBuffer(std::size_t memory_limit, std::string dir)
    : memory_limit_(memory_limit), dir_(std::move(dir)) {}

SpillBuffer::~SpillBuffer() {
  if (fd_ >= 0) ::close(fd_);
}

SpillBuffer::SpillBuffer(SpillBuffer&& o) noexcept
    : memory_limit_(o.memory_limit_),
      dir_(std::move(o.dir_)),
      head_(std::move(o.head_)),
      size_(std::exchange(o.size_, 0)),
      fd_(std::exchange(o.fd_, -1)) {}

SpillBuffer& SpillBuffer::operator=(SpillBuffer&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    memory_limit_ = o.memory_limit_;
    dir_ = std::move(o.dir_);
    head_ = std::move(o.head_);
    size_ = std::exchange(o.size_, 0);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

void SpillBuffer::Append(std::string_view bytes) {
  if (bytes.empty()) return;
  if (fd_ < 0 && size_ + bytes.size() <= memory_limit_) {
    head_.append(bytes);
    size_ += bytes.size();
    return;
  }
  if (fd_ < 0) {
    // Spill: the file gets every byte, from the first; head_ keeps its copy.
    int fd = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) Throw(("temporary file in " + dir_).c_str());
    try {
      WriteAll(fd, head_);
    } catch (...) {
      ::close(fd);
      throw;
    }
    fd_ = fd;
  }
  std::size_t room = memory_limit_ - std::min(memory_limit_, head_.size());
  if (::lseek(fd_, static_cast<off_t>(size_), SEEK_SET) < 0) Throw("temporary file");
  WriteAll(fd_, bytes);  // on failure size_ stays: a partial write past it is never read
  head_.append(bytes.substr(0, room));
  size_ += bytes.size();
}

std::size_t SpillBuffer::ReadAt(std::size_t offset, char* buf, std::size_t n) const {
  if (offset >= size_) return 0;
  n = std::min(n, size_ - offset);
  if (fd_ < 0) {
    head_.copy(buf, n, offset);
    return n;
  }
  for (;;) {
    ssize_t r = ::pread(fd_, buf, n, static_cast<off_t>(offset));
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno != EINTR) Throw("temporary file");
  }
}

std::string SpillBuffer::str() const {
  std::string all(size_, '\0');
  std::size_t done = 0;
  while (done < size_) {
    std::size_t n = ReadAt(done, all.data() + done, size_ - done);
    if (n == 0) break;
    done += n;
  }
  all.resize(done);
  return all;
}

}  // namespace sessiond
