#include "log/log.h"

#include <catch2/catch.hpp>

using namespace sessiond;

TEST_CASE("control bytes cannot forge or split a log line", "[log]") {
  CHECK(EscapeForLog("GET /x\nsessiond: 200 GET /admin") == "GET /x\\nsessiond: 200 GET /admin");
  CHECK(EscapeForLog(std::string("a\r\0b\x1b[31m\x7f", 10)) == "a\\r\\x00b\\x1b[31m\\x7f");
  CHECK(EscapeForLog("tab\there \\ back") == "tab\\there \\\\ back");
  CHECK(EscapeForLog("caf\xc3\xa9 stays") == "caf\xc3\xa9 stays");
}
