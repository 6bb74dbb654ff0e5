#include "log/log.h"

#include <catch2/catch.hpp>

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
