// What the code under test writes to stderr (where LogLine writes) while a
// CapturedLog lives, for tests that check a log line.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

namespace sessiond::testing {

class CapturedLog {
 public:
  CapturedLog() {
    std::fflush(stderr);
    char name[] = "/tmp/sessiond-test-log.XXXXXX";
    fd_ = mkstemp(name);
    REQUIRE(fd_ >= 0);
    ::unlink(name);
    saved_ = ::dup(2);
    ::dup2(fd_, 2);
  }
  ~CapturedLog() {
    Restore();
    ::close(fd_);
  }
  // Everything logged so far; stderr is itself again from here on.
  std::string text() {
    Restore();
    std::string out;
    char buf[4096];
    ssize_t n;
    ::lseek(fd_, 0, SEEK_SET);
    while ((n = ::read(fd_, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }

 private:
  void Restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  int fd_ = -1, saved_ = -1;
};

}  // namespace sessiond::testing
