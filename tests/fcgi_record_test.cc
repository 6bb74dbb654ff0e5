#include "middleware/fcgi_record.h"

#include <catch2/catch.hpp>

using namespace sessiond;
using namespace sessiond::fcgi;

TEST_CASE("records round-trip, split at 64 KiB", "[fcgi]") {
  std::string out;
  std::string big(70000, 'x');
  AppendRecords(out, kStdout, 7, big);
  Record r;
  std::size_t used = 0;
  REQUIRE(ParseRecord(out, r, used) == Parse::kRecord);
  CHECK(r.type == kStdout);
  CHECK(r.request_id == 7);
  CHECK(r.content.size() == kMaxContent);
  std::string_view rest = std::string_view(out).substr(used);
  REQUIRE(ParseRecord(rest, r, used) == Parse::kRecord);
  CHECK(r.content.size() == 70000 - kMaxContent);
  CHECK(used == rest.size());
}

TEST_CASE("an empty content is one empty record: the end of a stream", "[fcgi]") {
  std::string out;
  AppendRecords(out, kStdin, 1, {});
  CHECK(out.size() == 8);
  Record r;
  std::size_t used = 0;
  REQUIRE(ParseRecord(out, r, used) == Parse::kRecord);
  CHECK(r.content.empty());
}

TEST_CASE("partial records need more, other versions are bad, padding is skipped", "[fcgi]") {
  std::string out;
  AppendRecords(out, kParams, 1, "abc");
  Record r;
  std::size_t used = 0;
  CHECK(ParseRecord(std::string_view(out).substr(0, 5), r, used) == Parse::kNeedMore);
  CHECK(ParseRecord(std::string_view(out).substr(0, 10), r, used) == Parse::kNeedMore);
  std::string bad = out;
  bad[0] = 2;
  CHECK(ParseRecord(bad, r, used) == Parse::kBad);
  std::string padded = out;
  padded[6] = 5;  // padding length
  CHECK(ParseRecord(padded, r, used) == Parse::kNeedMore);
  padded += std::string(5, '\0');
  REQUIRE(ParseRecord(padded, r, used) == Parse::kRecord);
  CHECK(r.content == "abc");
  CHECK(used == padded.size());
}

TEST_CASE("name-value pairs: short and long lengths", "[fcgi]") {
  std::string pairs;
  std::string long_value(300, 'v');
  AppendNameValue(pairs, "SCRIPT_FILENAME", "/srv/pages/home");
  AppendNameValue(pairs, "HTTP_X", long_value);
  AppendNameValue(pairs, "EMPTY", "");
  std::vector<std::string> env;
  REQUIRE(ParseNameValues(pairs, env));
  REQUIRE(env.size() == 3);
  CHECK(env[0] == "SCRIPT_FILENAME=/srv/pages/home");
  CHECK(env[1] == "HTTP_X=" + long_value);
  CHECK(env[2] == "EMPTY=");
}

TEST_CASE("name-value pairs that run past their end are malformed", "[fcgi]") {
  std::string pairs;
  AppendNameValue(pairs, "NAME", "value");
  std::vector<std::string> env;
  CHECK_FALSE(ParseNameValues(std::string_view(pairs).substr(0, pairs.size() - 1), env));
  CHECK_FALSE(ParseNameValues("\x80\x00", env));             // a four-byte length cut short
  CHECK_FALSE(ParseNameValues("\xff\xff\xff\xff\x01", env));  // a length far past the end
}

TEST_CASE("a name with '=' or NUL is dropped: it could pose as another variable", "[fcgi]") {
  std::string pairs;
  AppendNameValue(pairs, "HTTP_SESSION=x&y", "1");
  AppendNameValue(pairs, std::string("A\0B", 3), "2");
  AppendNameValue(pairs, "", "3");
  AppendNameValue(pairs, "OK", "4");
  std::vector<std::string> env;
  REQUIRE(ParseNameValues(pairs, env));
  REQUIRE(env.size() == 1);
  CHECK(env[0] == "OK=4");
}

TEST_CASE("begin and end request bodies", "[fcgi]") {
  std::string out;
  AppendBeginRequest(out, 9, kResponder, true);
  Record r;
  std::size_t used = 0;
  REQUIRE(ParseRecord(out, r, used) == Parse::kRecord);
  BeginRequest b;
  REQUIRE(ParseBeginRequest(r.content, b));
  CHECK(b.role == kResponder);
  CHECK(b.keep_conn);
  CHECK_FALSE(ParseBeginRequest("short", b));
  out.clear();
  AppendEndRequest(out, 9, 0x01020304, kOverloaded);
  REQUIRE(ParseRecord(out, r, used) == Parse::kRecord);
  CHECK(r.type == kEndRequest);
  CHECK(r.content == std::string("\x01\x02\x03\x04\x02\0\0\0", 8));
}
