// Bytes kept in memory up to a limit, and past it in an unnamed temporary
// file, as nginx buffers bodies: a worker's memory stays bounded however
// large a request body or a page's output is.
//
// Thread-safety: one owner at a time.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sessiond {

class SpillBuffer {
 public:
  // Keeps up to `memory_limit` bytes in memory; past that, every byte is in
  // an O_TMPFILE file in `dir` (never linked, gone when closed).
  explicit SpillBuffer(std::size_t memory_limit = 64 * 1024, std::string dir = "/tmp");
  ~SpillBuffer();
  SpillBuffer(SpillBuffer&& other) noexcept;
  SpillBuffer& operator=(SpillBuffer&& other) noexcept;
  SpillBuffer(const SpillBuffer&) = delete;
  SpillBuffer& operator=(const SpillBuffer&) = delete;

  // Adds bytes at the end. Throws std::system_error when the file cannot be
  // created or written (a full disk): the buffer then holds what it had.
  void Append(std::string_view bytes);

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // The first min(size(), memory_limit) bytes, always in memory (a response's
  // header block is parsed from here).
  std::string_view head() const { return head_; }
  // Whether the bytes are in a file (then fd() holds all of them, from offset 0).
  bool spilled() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // Copies up to `n` bytes starting at `offset` into `buf`; returns how many
  // (0 at the end). Throws std::system_error on a read error.
  std::size_t ReadAt(std::size_t offset, char* buf, std::size_t n) const;
  // All the bytes as one string (for small buffers and tests).
  std::string str() const;

 private:
  std::size_t memory_limit_;
  std::string dir_;
  std::string head_;
  std::size_t size_ = 0;
  int fd_ = -1;
};

}  // namespace sessiond
