#include "log/log.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <string>

using namespace sessiond;

TEST_CASE("control bytes cannot forge or split a log line", "[log]") {
  CHECK(EscapeForLog("GET /x\nsessiond: 200 GET /admin") == "GET /x\\nsessiond: 200 GET /admin");
  CHECK(EscapeForLog(std::string("a\r\0b\x1b[31m\x7f", 10)) == "a\\r\\x00b\\x1b[31m\\x7f");
  CHECK(EscapeForLog("tab\there \\ back") == "tab\\there \\\\ back");
  CHECK(EscapeForLog("caf\xc3\xa9 stays") == "caf\xc3\xa9 stays");
}

// A terminal or log viewer acts on more than ASCII controls: C1 controls
// (U+0085 is a line break to some tools), the Unicode line and paragraph
// separators, and the bidirectional overrides that make a line read
// differently from what it holds. Bytes that are not UTF-8 reach no viewer
// as they are either.
TEST_CASE("Unicode controls and bytes that are not UTF-8 are escaped too", "[log]") {
  CHECK(EscapeForLog("a\xc2\x85" "b") == "a\\u{0085}b");                 // NEL
  CHECK(EscapeForLog("a\xc2\x9b" "31m") == "a\\u{009b}31m");              // CSI
  CHECK(EscapeForLog("x\xe2\x80\xa8y\xe2\x80\xa9z") == "x\\u{2028}y\\u{2029}z");
  CHECK(EscapeForLog("user \xe2\x80\xae" "nimda") == "user \\u{202e}nimda");  // RLO
  CHECK(EscapeForLog("\xe2\x81\xa6" "x\xe2\x81\xa9") == "\\u{2066}x\\u{2069}");
  CHECK(EscapeForLog("\xef\xbb\xbf" "bom") == "\\u{feff}bom");
  // Not UTF-8: a lone continuation byte, a truncated sequence, an overlong
  // encoding, a surrogate, past U+10FFFF.
  CHECK(EscapeForLog("a\x80z") == "a\\x80z");
  CHECK(EscapeForLog("a\xe2\x82") == "a\\xe2\\x82");
  CHECK(EscapeForLog("\xc0\xaf") == "\\xc0\\xaf");
  CHECK(EscapeForLog("\xed\xa0\x80") == "\\xed\\xa0\\x80");
  CHECK(EscapeForLog("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
  // Printable text of every length of sequence stays as it is.
  CHECK(EscapeForLog("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

// stderr a pipe nobody reads (a stuck journal, a paused supervisor): a caller
// of LogLine is not held up, what waits is bounded, and once the log is read
// again the lines come whole and in order, then how many were dropped.
TEST_CASE("a log nobody reads holds up no caller, and says what it dropped", "[log]") {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  int saved = ::dup(2);
  REQUIRE(saved >= 0);
  REQUIRE(::dup2(p[1], 2) == 2);
  ::close(p[1]);
  // Far more than the pipe and the waiting lines hold (40000 x 80 bytes).
  const int lines = 40000;
  auto logging = std::async(std::launch::async, [] {
    for (int i = 0; i < lines; ++i) LogLine("line " + std::to_string(i) + " " + std::string(64, 'x'));
  });
  // A hang guard, not a timing: the old behaviour never returns until read.
  bool returned = logging.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  // Now read it all: until the count of dropped lines, or nothing more comes
  // and the logging thread is done.
  std::string got;
  char buf[65536];
  for (;;) {
    pollfd pfd{p[0], POLLIN, 0};
    if (::poll(&pfd, 1, 2000) <= 0) {
      if (logging.wait_for(std::chrono::seconds(0)) == std::future_status::ready) break;
      continue;
    }
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
    if (got.find("log lines dropped") != std::string::npos && got.back() == '\n') break;
  }
  logging.wait();
  REQUIRE(::dup2(saved, 2) == 2);
  ::close(saved);
  ::close(p[0]);
  CHECK(returned);
  // Whole lines, numbered in order from 0, then the notice.
  std::size_t pos = 0;
  int next = 0;
  std::string notice;
  while (pos < got.size()) {
    std::size_t end = got.find('\n', pos);
    REQUIRE(end != std::string::npos);
    std::string line = got.substr(pos, end - pos);
    pos = end + 1;
    if (line.find("log lines dropped") != std::string::npos) {
      notice = line;
      break;
    }
    REQUIRE(line == "sessiond: line " + std::to_string(next) + " " + std::string(64, 'x'));
    ++next;
  }
  CHECK(next > 0);
  CHECK(next < lines);
  CHECK(notice == "sessiond: " + std::to_string(lines - next) + " log lines dropped: the log was not read");
}
