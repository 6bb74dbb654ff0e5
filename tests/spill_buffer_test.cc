#include "middleware/base/spill_buffer.h"

#include <unistd.h>

#include <catch2/catch.hpp>

using namespace sessiond;

TEST_CASE("a spill buffer stays in memory up to its limit", "[spill]") {
  SpillBuffer b(8);
  b.Append("1234");
  b.Append("5678");
  CHECK_FALSE(b.spilled());
  CHECK(b.head() == "12345678");
  CHECK(b.str() == "12345678");
}

TEST_CASE("past its limit every byte is in the file and the head stays", "[spill]") {
  SpillBuffer b(8);
  b.Append("12345");
  b.Append("67890abc");
  b.Append("def");
  REQUIRE(b.spilled());
  CHECK(b.size() == 16);
  CHECK(b.head() == "12345678");
  CHECK(b.str() == "1234567890abcdef");
  char buf[4];
  CHECK(b.ReadAt(10, buf, 4) == 4);
  CHECK(std::string(buf, 4) == "abcd");
  CHECK(b.ReadAt(14, buf, 4) == 2);
  CHECK(b.ReadAt(16, buf, 4) == 0);
  // The file holds everything from offset 0, for a page to read as stdin.
  char all[16];
  REQUIRE(::pread(b.fd(), all, 16, 0) == 16);
  CHECK(std::string(all, 16) == "1234567890abcdef");
}

TEST_CASE("a buffer that cannot spill says so and keeps what it had", "[spill]") {
  SpillBuffer b(4, "/nonexistent-dir");
  b.Append("abcd");
  CHECK_THROWS_AS(b.Append("e"), std::system_error);
  CHECK(b.str() == "abcd");
}
