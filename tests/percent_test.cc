#include "middleware/base/percent.h"

#include <catch2/catch.hpp>

using namespace sessiond;

TEST_CASE("percent-encoding keeps only unreserved characters", "[percent]") {
  CHECK(PercentEncode("abcXYZ019-._~") == "abcXYZ019-._~");
  CHECK(PercentEncode("a b&c=d%") == "a%20b%26c%3Dd%25");
  CHECK(PercentEncode(std::string("\0\xff\n", 3)) == "%00%FF%0A");
  CHECK(PercentEncode("") == "");
}

TEST_CASE("percent-decoding", "[percent]") {
  CHECK(PercentDecode("a%20b+c%3d%3D") == "a b c==");
  CHECK(PercentDecode("%00") == std::string("\0", 1));
  CHECK(PercentDecode("") == "");
  CHECK_FALSE(PercentDecode("%"));
  CHECK_FALSE(PercentDecode("%4"));
  CHECK_FALSE(PercentDecode("abc%"));
  CHECK_FALSE(PercentDecode("%zz"));
  CHECK_FALSE(PercentDecode("%4g"));
}

TEST_CASE("items round-trip through the mod_session encoding", "[percent]") {
  Items items{{"UserName", "Ann & Bob"}, {"k=1", "v&2"}, {"bin", std::string("\0\x01", 2)}, {"e", ""}};
  std::string text = EncodeItems(items);
  CHECK(text == "UserName=Ann%20%26%20Bob&bin=%00%01&e=&k%3D1=v%262");
  CHECK(DecodeItems(text) == items);
  CHECK(EncodeItems({}) == "");
}

TEST_CASE("decoding items", "[percent]") {
  CHECK(DecodeItems("") == Items{});
  CHECK(DecodeItems("a=1&&b=2&") == Items{{"a", "1"}, {"b", "2"}});
  CHECK(DecodeItems("a=1&a=2") == Items{{"a", "2"}});
  CHECK(DecodeItems("a==b") == Items{{"a", "=b"}});
  CHECK_FALSE(DecodeItems("novalue"));
  CHECK_FALSE(DecodeItems("=value"));
  CHECK_FALSE(DecodeItems("a=%zz"));
}
