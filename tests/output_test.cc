#include "commands/output.h"

#include <catch2/catch.hpp>

using namespace sessiond;

TEST_CASE("times are ISO 8601 in UTC", "[output]") {
  CHECK(IsoTime(0) == "1970-01-01T00:00:00Z");
  CHECK(IsoTime(1'800'000'000) == "2027-01-15T08:00:00Z");
}

TEST_CASE("quoted bytes cannot steer a terminal, and read back unambiguously", "[output]") {
  CHECK(Quoted("ann") == "\"ann\"");
  CHECK(Quoted("") == "\"\"");
  CHECK(Quoted("héllo wörld") == "\"héllo wörld\"");
  CHECK(Quoted("say \"hi\"\\") == R"("say \"hi\"\\")");
  CHECK(Quoted("a\nb\r\tc") == R"("a\nb\r\tc")");
  CHECK(Quoted(std::string("\x00\x1b[31m\x7f", 7)) == R"("\x00\x1b[31m\x7f")");
  CHECK(Quoted("\xff\xc3") == R"("\xff\xc3")");           // not UTF-8
  CHECK(Quoted("\xc0\xaf") == R"("\xc0\xaf")");           // overlong '/'
  CHECK(Quoted("\xed\xa0\x80") == R"("\xed\xa0\x80")");   // a surrogate
  CHECK(Quoted("\xc2\x9b" "2J") == R"("\u{009b}2J")");    // C1 CSI
  CHECK(Quoted("abc\xe2\x80\xae" "fed") == R"("abc\u{202e}fed")");  // right-to-left override
  CHECK(Escaped("a\"b") == R"(a\"b)");
}

TEST_CASE("keys are shown bare only when plain", "[output]") {
  CHECK(KeyText("UserName") == "UserName");
  CHECK(KeyText("cart.item-1:x") == "cart.item-1:x");
  CHECK(KeyText("a b") == "\"a b\"");
  CHECK(KeyText("a=b") == "\"a=b\"");
  CHECK(KeyText("") == "\"\"");
}

TEST_CASE("JSON strings and bytes", "[output]") {
  CHECK(IsUtf8("héllo"));
  CHECK(IsUtf8(std::string("a\0b", 3)));
  CHECK_FALSE(IsUtf8("\xff"));
  CHECK(JsonString("a\"b\\c\n\x01") == R"("a\"b\\c\n\u0001")");
  CHECK(JsonString("h\xc3\xa9") == "\"h\xc3\xa9\"");
  CHECK(JsonString("\xe2\x80\xae") == R"("\u202e")");
  CHECK(JsonBytes("value", "ann") == R"("value": "ann")");
  CHECK(JsonBytes("value", std::string("\x00\xff", 2)) == R"("value_hex": "00ff")");
  CHECK(HexBytes("\x01\xab") == "01ab");
}
