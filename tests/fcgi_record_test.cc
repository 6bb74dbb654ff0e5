#include "middleware/fastcgi/fcgi_record.h"

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

TEST_CASE("an application's records: stdout, stderr and the end of the request", "[fcgi]") {
  std::string in;
  AppendRecords(in, kStdout, 1, "Status: 200\r\n\r\nhi");
  AppendRecords(in, kStderr, 1, "warning");
  AppendRecords(in, kStdout, 1, {});
  AppendEndRequest(in, 1, 0x01020304, kOverloaded);
  std::string_view rest = in;
  AppRecord r;
  std::size_t used = 0;
  std::string why;
  REQUIRE(ParseAppRecord(rest, 1, r, used, why) == Parse::kRecord);
  CHECK(r.kind == AppRecord::Kind::kStdout);
  CHECK(r.content == "Status: 200\r\n\r\nhi");
  rest.remove_prefix(used);
  REQUIRE(ParseAppRecord(rest, 1, r, used, why) == Parse::kRecord);
  CHECK(r.kind == AppRecord::Kind::kStderr);
  CHECK(r.content == "warning");
  rest.remove_prefix(used);
  REQUIRE(ParseAppRecord(rest, 1, r, used, why) == Parse::kRecord);
  CHECK((r.kind == AppRecord::Kind::kStdout && r.content.empty()));
  rest.remove_prefix(used);
  CHECK(ParseAppRecord(rest.substr(0, 10), 1, r, used, why) == Parse::kNeedMore);
  REQUIRE(ParseAppRecord(rest, 1, r, used, why) == Parse::kRecord);
  CHECK(r.kind == AppRecord::Kind::kEnd);
  CHECK(r.app_status == 0x01020304);
  CHECK(r.protocol_status == kOverloaded);
  CHECK(used == rest.size());
}

TEST_CASE("an application's records of another request, of other types, or malformed are bad", "[fcgi]") {
  AppRecord r;
  std::size_t used = 0;
  std::string why;
  std::string other;
  AppendRecords(other, kStdout, 2, "x");
  CHECK(ParseAppRecord(other, 1, r, used, why) == Parse::kBad);
  CHECK(why.find("request 2") != std::string::npos);
  for (int type : {1, 4, 5, 10, 11, 42}) {
    std::string odd;
    AppendRecords(odd, static_cast<std::uint8_t>(type), 1, "12345678");
    why.clear();
    CHECK(ParseAppRecord(odd, 1, r, used, why) == Parse::kBad);
    CHECK(!why.empty());
  }
  std::string short_end;
  AppendRecords(short_end, kEndRequest, 1, "1234");
  CHECK(ParseAppRecord(short_end, 1, r, used, why) == Parse::kBad);
  CHECK(why.find("END_REQUEST") != std::string::npos);
  CHECK(ParseAppRecord(std::string_view("HTTP/1.1 200 OK\r\n"), 1, r, used, why) == Parse::kBad);
}
